"""The int8 accuracy guard: quantize, check held-out accuracy, return the worst layers to float, repeat."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from fnx.calibration.data import CalibrationSet
from fnx.errors import FnxError
from fnx.parity import check
from fnx.progress import Steps

GUARD_STEP = 4  # layers returned to float per step
GUARD_MAX_STEPS = 3


def held_out_report(outs: np.ndarray, refs: np.ndarray, data: CalibrationSet, min_cosine: float,
                    max_drop: float | None) -> dict:
    """Return int8-vs-fp32 figures on the held-out images, with the guard's failures (empty when it holds)."""
    rep = check([refs], [outs], "int8", ["logits"], bounds={"min_cosine": min_cosine}, reference="fp32 (held-out)")
    o = rep.outputs[0]
    result = {"held_out": o.n, "cosine_min": o.cosine, "top1_agreement": o.top1_agreement, "max_abs": o.max_abs,
              "failures": list(rep.failures)}
    labels = data.held_out_labels
    if labels and all(l is not None for l in labels):
        y = np.array(labels)
        fp32_acc, int8_acc = float((refs.argmax(1) == y).mean()), float((outs.argmax(1) == y).mean())
        drop = 100 * (fp32_acc - int8_acc)
        result.update(fp32_top1=fp32_acc, int8_top1=int8_acc, top1_drop_points=drop)
        if max_drop is not None and drop > max_drop:
            result["failures"].append(f"top-1 drop {drop:.2f} points exceeds {max_drop}")
    elif max_drop is not None:
        result["failures"].append("--max-top1-drop needs labelled calibration data (class subfolders)")
    result["passed"] = not result["failures"]
    return result


def run_guarded(quantize: Callable[[list[str]], None], outputs: Callable[[], np.ndarray], rank: Callable[[], list[dict]],
                artifact: Path, refs: np.ndarray, data: CalibrationSet, min_cosine: float, max_drop: float | None,
                steps: Steps, label: str) -> tuple[dict, list[str], list[dict]]:
    """Return (report, layers kept in float, layer ranking) once the guard holds; FnxError if it never does.

    quantize(keep_float) writes the artifact; outputs() runs it on the held-out images; rank() lists
    layers by int8 error, worst first. Each failed step returns the next GUARD_STEP layers to float.
    """
    keep: list[str] = []
    ranking: list[dict] | None = None
    first_copy = artifact.with_name(artifact.stem + ".allint8" + artifact.suffix)
    try:
        for attempt in range(GUARD_MAX_STEPS + 1):
            with steps.step(f"quantize to int8 {label}" + (f" ({len(keep)} layers float)" if keep else "")):
                quantize(keep)
            with steps.step("held-out report (int8 vs fp32)"):
                report = held_out_report(outputs(), refs, data, min_cosine, max_drop)
            if ranking is None:
                with steps.step("rank layers by int8 error"):
                    ranking = rank()
            if report["passed"] or attempt == GUARD_MAX_STEPS:
                break
            if attempt == 0:
                shutil.copyfile(artifact, first_copy)
            more = [r["layer"] for r in ranking if r["layer"] not in keep][:GUARD_STEP]
            if not more:
                break
            keep += more
            steps.info(f"[yellow]guard:[/] {'; '.join(report['failures'])} -> keeping {', '.join(more)} in float")
        report["guard_steps"] = attempt
        if not report["passed"]:
            raise FnxError(f"int8 accuracy guard failed after {len(keep)} layers were returned to float: "
                           f"{'; '.join(report['failures'])}. Use more or more representative --calib-data, another "
                           f"--calib-method, or fp16")
        if keep:
            report["float_fallback_cost"] = _speed_cost(first_copy, artifact)
        return report, keep, ranking or []
    finally:
        first_copy.unlink(missing_ok=True)


def _speed_cost(all_int8: Path, final: Path) -> dict:
    """Return the latency (1 thread, ms) of the all-int8 model and of the guarded one."""
    from fnx.runtime import load
    from fnx.runtime.bench import bench_session

    a = bench_session(load(all_int8, device="cpu", threads=1), warmup=3, runs=20)["mean_ms"]
    b = bench_session(load(final, device="cpu", threads=1), warmup=3, runs=20)["mean_ms"]
    return {"all_int8_ms": a, "guarded_ms": b, "slowdown": b / a}
