"""int8 forms: the ways a target can write int8 (graph types, presets, the GELU form), and the choice among them.

A target declares its forms (`ArtifactFormat.int8_forms`); `--int8-form auto` measures each candidate on this
machine (fnx.calibration.form_search) and `choose_form` picks, from the figures alone, the fastest that holds the
guard's bound. Pure and torch-free: the tests drive it with made-up figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fnx.calibration.options import AUTO_FORM
from fnx.errors import FnxError
from fnx.manifest_forms import Int8FormTrial

# A candidate is slower than the fastest only if it was slower by more than TIE (median of the per-round ratios) and
# in at least SURE of the rounds; otherwise they tie and the more accurate wins. A shared CPU's noise must not decide
# between forms that run alike (ONNX's u8s8 and u8s8r with VNNI): measured under load 8 on 2 cores, per-round
# medians of one candidate varied by 20-40%, while paired rounds still told a 1.5x difference apart.
TIE = 0.03
SURE = 0.8
SIGMOID_GELU = "+sigmoid-gelu"  # a candidate's name suffix: GELU written as x * sigmoid(1.702 x) (fnx.exporter.gelu_form)


@dataclass(frozen=True)
class Int8Form:
    """One way a target writes int8: its name (what `--int8-form` takes), the int8 graph in one line, and whether
    `auto` measures it (a form measured never to win here is kept out of auto, with why, and can still be forced)."""

    name: str
    description: str
    auto: bool = True
    not_auto: str = ""  # why auto leaves it out (when auto is False)


DEFAULT_FORMS = (Int8Form("default", "the target's own int8 quantization"),)


@dataclass(frozen=True)
class Decision:
    """What choose_form decided: the form to ship (None: no candidate held the bound) and why; with no winner,
    `fallback` is the most accurate candidate, for the guard's usual layer fallback."""

    chosen: str | None
    reason: str
    fallback: str | None = None


def _ms(t: Int8FormTrial) -> float:
    return t.latency_ms if t.latency_ms is not None else float("inf")


def _tied(t: Int8FormTrial, fastest: Int8FormTrial, tie: float) -> bool:
    """Whether t's latency is indistinguishable from the fastest's: within tie, or (timed in the same rounds) not
    slower in at least SURE of the rounds."""
    if _ms(t) <= _ms(fastest) * (1 + tie):
        return True
    if len(t.round_ms) != len(fastest.round_ms) or not t.round_ms:
        return False
    slower = sum(a > b * (1 + tie) for a, b in zip(t.round_ms, fastest.round_ms))
    return slower < SURE * len(t.round_ms)


def choose_form(trials: Sequence[Int8FormTrial], tie: float = TIE) -> Decision:
    """Return the fastest trial within the bound (`passed`); a trial not surely slower than the fastest (`_tied`)
    counts as equal and the most accurate of those wins (then the earlier declared). No trial passed: chosen None,
    fallback the most accurate one that was quantized (None if none was)."""
    if not trials:
        raise FnxError("internal error: no int8 form to choose from; please report this fnx bug")
    held = [t for t in trials if t.passed and t.latency_ms is not None]
    if not held:
        quantized = [t for t in trials if t.cosine_min is not None]
        best = max(quantized, key=lambda t: t.cosine_min, default=None)
        why = "; ".join(f"{t.form}: {t.why_not or 'not measured'}" for t in trials)
        return Decision(None, f"no form held the bound all-int8 ({why})", best.form if best else None)
    fastest = min(held, key=_ms)
    tied = [t for t in held if _tied(t, fastest, tie)]
    winner = max(tied, key=lambda t: (t.cosine_min, -trials.index(t)))
    others = [t for t in trials if t is not winner]
    if winner is not fastest:
        reason = (f"as fast as {fastest.form} ({_ms(winner):.2f} vs {_ms(fastest):.2f} ms: within the timing noise) "
                  f"and more accurate (cosine {winner.cosine_min:.5f} vs {fastest.cosine_min:.5f})")
    elif len(held) == 1 and len(trials) == 1:
        reason = "the only candidate, and it held the bound"
    else:
        reason = f"the fastest that held the bound ({_ms(winner):.2f} ms)"
    if others:
        reason += "; " + "; ".join(_versus(winner, t, t in tied) for t in others)
    return Decision(winner.form, reason)


def _versus(winner: Int8FormTrial, other: Int8FormTrial, tied: bool) -> str:
    """One candidate beside the winner, in words: its speed ratio, and whether it tied or broke the bound."""
    if other.latency_ms is None:
        return f"{other.form}: {other.why_not or 'not measured'}"
    speed = f"{other.form} {other.latency_ms:.2f} ms ({other.latency_ms / winner.latency_ms:.2f}x"
    if not other.passed:
        return f"{speed}), broke the bound: {other.why_not}"
    return f"{speed}, within the timing noise; cosine {other.cosine_min:.5f})" if tied else f"{speed})"


def check_form(name: str, known: Sequence[str], where: str) -> None:
    """FnxError, listing the known forms, unless name is auto or one of known (a target's forms)."""
    if name != AUTO_FORM and name not in known:
        raise FnxError(f"{where} has no int8 form {name!r}: use --int8-form auto or one of {', '.join(known)}")
