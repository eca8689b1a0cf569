"""The int8 accuracy guard: quantize, check held-out accuracy, return the worst layers to float, repeat."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from fnx.calibration.data import CalibrationSet
from fnx.calibration.quantizer import Quantizer
from fnx.errors import FnxError
from fnx.formats import artifact_files
from fnx.manifest import FallbackCost, GuardBounds, Int8Report, LayerError
from fnx.parity import bounds_for, check
from fnx.progress import Steps

GUARD_STEP = 4  # layers returned to float per step
GUARD_MAX_STEPS = 3


class GuardFailed(FnxError):
    """The int8 model stayed outside the bound on the held-out images, even with layers returned to float; failures:
    the bounds it missed, in words."""

    def __init__(self, message: str, failures: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.failures = list(failures)


@contextmanager
def explained_for_weights(kind: str):
    """Add the likely cause to a guard failure of random weights (`--weights random`): their logits are ~1e-4 and
    near-uniform, so int8 rounding alone moves them past any useful bound, where trained weights' would not."""
    try:
        yield
    except GuardFailed as e:
        if kind != "random":
            raise
        raise GuardFailed(f"{e}. These are random weights (--weights random): their logits are near zero and "
                          f"near-uniform, so int8 rounding alone moves them; judge int8 on trained weights "
                          f"(--weights official, a checkpoint or hf-hub:)", e.failures) from e


def guard_bounds(min_cosine: float | None, max_top1_drop: float | None) -> GuardBounds:
    """Return the guard's bounds: the user's, else the int8 defaults of fnx.parity."""
    return GuardBounds(bounds_for("int8", min_cosine)["min_cosine"], max_top1_drop)


def held_out_report(outs: list[np.ndarray], refs: list[np.ndarray], data: CalibrationSet, bounds: GuardBounds,
                    names: list[str] | None = None) -> Int8Report:
    """Return int8-vs-fp32 figures on the held-out images, with the guard's failures (empty when it holds).

    With several outputs (a backbone's feature maps) every one is held to the bound and the report's headline
    figures are the weakest output's; `per_output` keeps each one's.
    """
    if not names:
        names = ["logits"] if len(refs) == 1 else [f"output_{i}" for i in range(len(refs))]
    rep = check(refs, outs, "int8", names, bounds={"min_cosine": bounds.min_cosine}, reference="fp32 (held-out)")
    weakest = min(rep.outputs, key=lambda o: o.cosine)
    logits = next((o for o in rep.outputs if o.top1_agreement is not None), None)
    report = Int8Report(held_out=weakest.n, cosine_min=weakest.cosine,
                        top1_agreement=logits.top1_agreement if logits else None,
                        max_abs=max(o.max_abs for o in rep.outputs), failures=list(rep.failures),
                        per_output=rep.outputs if len(rep.outputs) > 1 else [])
    labels = data.held_out_labels
    if logits is not None and labels and all(label is not None for label in labels):
        y, ref, out = np.array(labels), refs[rep.outputs.index(logits)], outs[rep.outputs.index(logits)]
        report.fp32_top1, report.int8_top1 = float((ref.argmax(1) == y).mean()), float((out.argmax(1) == y).mean())
        report.top1_drop_points = 100 * (report.fp32_top1 - report.int8_top1)
        if bounds.max_top1_drop is not None and report.top1_drop_points > bounds.max_top1_drop:
            report.failures.append(f"top-1 drop {report.top1_drop_points:.2f} points exceeds {bounds.max_top1_drop}")
    elif bounds.max_top1_drop is not None:
        report.failures.append("--max-top1-drop needs labelled calibration data (class subfolders) and a model with "
                               "class logits (not a --features backbone)")
    report.passed = not report.failures
    return report


def run_guarded(quantizer: Quantizer, artifact: Path, outputs: Callable[[], list[np.ndarray]], refs: list[np.ndarray],
                data: CalibrationSet, bounds: GuardBounds, steps: Steps, label: str,
                names: list[str] | None = None, first: Path | None = None) -> tuple[Int8Report, list[str], list[LayerError]]:
    """Return (report, layers kept in float, layer ranking) once the guard holds; FnxError if it never does.

    outputs() runs the artifact on the held-out images (every output, in refs' order and layout). Each failed step returns the next
    GUARD_STEP worst layers (by the quantizer's own per-layer errors) to float; a RestoringQuantizer's own lever
    (restore: ops ranked by their effect on the held-out cosine) replaces those steps. first: the all-int8 artifact
    already written by this quantizer (`--int8-form auto` measured it): moved into place instead of quantizing it again.
    """
    keep: list[str] = []
    ranking: list[LayerError] | None = None
    restore = getattr(quantizer, "restore", None)  # fnx.calibration.quantizer.RestoringQuantizer
    first_copy = artifact.with_name(artifact.stem + ".allint8" + artifact.suffix)
    try:
        for attempt in range(GUARD_MAX_STEPS + 1):
            if attempt == 0 and first is not None:
                for src, dst in zip(artifact_files(first), artifact_files(artifact)):
                    src.replace(dst)
            elif attempt > 0 and restore is not None:
                with steps.step(f"{quantizer.restorer}: int8 ops back to float until the bound holds"):
                    keep = restore(artifact, data.held_out, refs, bounds.min_cosine, GUARD_STEP * GUARD_MAX_STEPS)
            else:
                with steps.step(f"quantize to int8 {label}" + (f" ({len(keep)} layers float)" if keep else "")):
                    quantizer.quantize(artifact, keep)
            with steps.step("held-out report (int8 vs fp32)"):
                report = held_out_report(outputs(), refs, data, bounds, names)
            if ranking is None:
                with steps.step("rank layers by int8 error"):
                    ranking = quantizer.layer_errors(artifact, data.held_out[:8])
            if report.passed or attempt == GUARD_MAX_STEPS or (attempt > 0 and restore is not None):
                break
            if attempt == 0:
                for src, dst in zip(artifact_files(artifact), artifact_files(first_copy)):
                    shutil.copyfile(src, dst)
            if restore is not None:
                steps.info(f"[yellow]guard:[/] {'; '.join(report.failures)} -> {quantizer.restorer}")
                continue
            more = [r.layer for r in ranking if r.layer not in keep][:GUARD_STEP]
            if not more:
                break
            keep += more
            steps.info(f"[yellow]guard:[/] {'; '.join(report.failures)} -> keeping {', '.join(more)} in float")
        report.guard_steps = attempt
        if not report.passed:
            how = f"{quantizer.restorer} returned {len(keep)} ops" if restore is not None and attempt else \
                f"{len(keep)} layers were returned"
            raise GuardFailed(f"int8 accuracy guard failed after {how} to float: "
                           f"{'; '.join(report.failures)}. Use more or more representative --calib-data, another "
                           f"--calib-method, a lower --min-cosine, or fp16", report.failures)
        if keep:
            report.float_fallback_cost = _speed_cost(first_copy, artifact)
        return report, keep, ranking or []
    finally:
        for path in artifact_files(first_copy):
            path.unlink(missing_ok=True)


def _speed_cost(all_int8: Path, final: Path) -> FallbackCost:
    """Return the latency (1 thread, ms) of the all-int8 model and of the guarded one."""
    from fnx.runtime import load
    from fnx.runtime.bench import bench_session

    a = bench_session(load(all_int8, device="cpu", threads=1), warmup=3, runs=20)["mean_ms"]
    b = bench_session(load(final, device="cpu", threads=1), warmup=3, runs=20)["mean_ms"]
    return FallbackCost(a, b, b / a)
