"""`--int8-form auto`: quantize every candidate form all-int8, judge each on the held-out images with the guard's
bound, time each on this machine through fnx's runtime Session, and keep the fastest that holds (choose_form).

The candidates' files live beside the artifact until the choice is made; the winner's file is the guard's first
attempt (it is not quantized twice). Format-free: each candidate brings its own Quantizer, set to its form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fnx.calibration.data import CalibrationSet
from fnx.calibration.flow import guarded_int8
from fnx.calibration.forms import Decision, choose_form
from fnx.calibration.guard import held_out_report
from fnx.calibration.quantizer import Quantizer
from fnx.errors import FnxError
from fnx.formats import artifact_files
from fnx.manifest import Calibration, GuardBounds
from fnx.manifest_forms import Int8FormChoice, Int8FormTrial
from fnx.progress import Steps

TIMING_THREADS = 1  # candidates are compared per core: the deployment's thread count is not known at export
WARMUP, ROUNDS, BLOCK = 3, 10, 5  # interleaved blocks: drift and other processes' load hit every candidate alike


@dataclass
class Candidate:
    """One form to measure: its name and description (the manifest's), the quantizer that writes it, the form that
    quantizer is set to before it writes, and the notes that go with it."""

    name: str
    description: str
    quantizer: Quantizer
    form: str
    notes: tuple[str, ...] = ()  # what the manifest's calibration notes say when it is chosen


@dataclass
class Search:
    """What measure_forms found: every candidate's figures, the decision, each candidate's all-int8 file and the
    seconds it took."""

    trials: list[Int8FormTrial]
    decision: Decision
    files: dict[str, Path]
    seconds: float

    def discard(self, keep: str | None = None) -> None:
        """Delete the candidates' files (all but keep's)."""
        for name, path in self.files.items():
            if name != keep:
                for f in artifact_files(path):
                    f.unlink(missing_ok=True)


def measure_forms(candidates: Sequence[Candidate], artifact: Path, outputs_of: Callable[[Path], list[np.ndarray]],
                  feed: np.ndarray, refs: list[np.ndarray], data: CalibrationSet, bounds: GuardBounds, steps: Steps,
                  names: list[str] | None = None) -> Search:
    """Return the Search over candidates: each quantized all-int8 beside artifact, its held-out report, its latency
    (median over interleaved blocks of Session.run on feed, one thread) and the choice. A candidate that fails to
    quantize or run is a trial saying why; the files of every candidate stay until Search.discard."""
    start = time.perf_counter()
    trials, files = [], {}
    for i, c in enumerate(candidates):
        path = artifact.with_name(f"{artifact.stem}.form{i}{artifact.suffix}")
        trial = Int8FormTrial(c.name, c.description)
        with steps.step(f"int8 form {c.name}: quantize and check held-out"):
            try:
                c.quantizer.form = c.form
                c.quantizer.quantize(path, [])
                report = held_out_report(outputs_of(path), refs, data, bounds, names)
            except Exception as e:  # noqa: BLE001 - one form failing leaves the others in the running, said in its trial
                trial.why_not = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                for f in artifact_files(path):
                    f.unlink(missing_ok=True)
            else:
                files[c.name] = path
                trial.cosine_min, trial.top1_agreement = report.cosine_min, report.top1_agreement
                trial.top1_drop_points, trial.passed = report.top1_drop_points, report.passed
                trial.why_not = "; ".join(report.failures) or None
        trials.append(trial)
    with steps.step(f"time {len(files)} int8 form(s) on this machine ({TIMING_THREADS} thread)"):
        for name, (ms, rounds) in time_artifacts(files, feed).items():
            trial = next(t for t in trials if t.form == name)
            trial.latency_ms, trial.round_ms = round(ms, 4), [round(r, 4) for r in rounds]
    return Search(trials, choose_form(trials), files, time.perf_counter() - start)


def time_artifacts(files: dict[str, Path], feed: np.ndarray,
                   threads: int = TIMING_THREADS) -> dict[str, tuple[float, list[float]]]:
    """Return {name: (median ms of Session.run(feed), its median in each round)} for each artifact, timed in rounds
    of one block per artifact, the order reversed every round."""
    from fnx.runtime import Session

    sessions = {name: Session(path, device="cpu", threads=threads, check_manifest=False) for name, path in files.items()}
    for s in sessions.values():
        for _ in range(WARMUP):
            s.run(feed)
    times = {name: np.empty((ROUNDS, BLOCK)) for name in sessions}
    order = list(sessions)
    for r in range(ROUNDS):
        for name in order if r % 2 == 0 else order[::-1]:
            for i in range(BLOCK):
                t0 = time.perf_counter()
                sessions[name].run(feed)
                times[name][r, i] = (time.perf_counter() - t0) * 1e3
    return {name: (float(np.median(t)), np.median(t, axis=1).tolist()) for name, t in times.items()}


@dataclass
class FormPlan:
    """What an int8 conversion does about forms: the candidates (the first is used when nothing is measured), what
    was asked, how the choice is made ("measured" among several candidates; else "rule", "asked" or "only") and why,
    the forms auto leaves out (recorded, with why) and whether the manifest records the choice at all (a target with
    one form has nothing to say)."""

    candidates: list[Candidate]
    asked: str
    how: str
    reason: str = ""
    left_out: list[Int8FormTrial] = field(default_factory=list)
    record: bool = True


def guarded_forms(plan: FormPlan, artifact: Path, outputs_of: Callable[[Path], list[np.ndarray]], feed: np.ndarray,
                  refs: list[np.ndarray], data: CalibrationSet, bounds: GuardBounds, steps: Steps, label: str,
                  names: Sequence[str], notes: Sequence[str] = (), qat: bool = False) -> Calibration:
    """Write the guarded int8 artifact in the plan's form and return its calibration record, `forms` included.

    Measured: every candidate all-int8 (measure_forms), then the guard on the fastest within the bound, whose file is
    its first attempt; none within the bound: the guard's usual layer fallback on the most accurate candidate (and
    its usual failure if that does not hold either). Otherwise the guard on the plan's one form. qat: from a QAT
    checkpoint (the record's scheme is "qat", fnx.calibration.flow.guarded_int8)."""
    search = None
    if plan.how == "measured":
        search = measure_forms(plan.candidates, artifact, outputs_of, feed, refs, data, bounds, steps, list(names))
        name = search.decision.chosen or search.decision.fallback
        if name is None:
            search.discard()
            raise FnxError(f"no int8 form of {label} could be written: {search.decision.reason}")
        steps.info(f"int8 form: {name} ({search.decision.reason})")
    else:
        name = plan.candidates[0].name
    chosen = next(c for c in plan.candidates if c.name == name)
    if plan.record:  # a target with one form may have a quantizer that knows no forms
        chosen.quantizer.form = chosen.form
    try:
        record = guarded_int8(chosen.quantizer, artifact, lambda: outputs_of(artifact), refs, data, bounds, steps, label,
                              names, [*notes, *chosen.notes], qat=qat, first=search.files.get(name) if search else None)
    finally:
        if search is not None:
            search.discard()
    if not plan.record:
        return record
    if search is None:
        record.forms = Int8FormChoice(plan.asked, name, plan.how, plan.reason, candidates=list(plan.left_out))
    else:
        how = "measured" if search.decision.chosen else "fallback"
        reason = search.decision.reason if search.decision.chosen else (
            f"{search.decision.reason}; the most accurate went through the guard's fallback")
        record.forms = Int8FormChoice(plan.asked, name, how, reason, TIMING_THREADS, round(search.seconds, 2),
                                      [*search.trials, *plan.left_out])
    return record
