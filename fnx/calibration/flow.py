"""The guarded int8 flow both entry points share (`fnx export --precision int8` and `fnx quantize`): read the
calibration images once with progress, then quantize under the guard and write the record. Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fnx.calibration.data import CalibrationSet, load_calibration
from fnx.calibration.guard import run_guarded
from fnx.calibration.options import Int8Options
from fnx.calibration.quantizer import Quantizer
from fnx.calibration.report import calibration_record
from fnx.manifest import Calibration, GuardBounds, Preprocessing
from fnx.progress import Steps


def read_calibration(options: Int8Options, preprocessing: Preprocessing, labels: list[str] | None,
                     class_ids: list[str] | None, steps: Steps) -> CalibrationSet:
    """Return the calibration set of options.data (its seeded sample and held-out images), read with a progress bar
    and said in one line."""
    bar, task = steps.progress("reading calibration images", None)
    with bar:
        data = load_calibration(options.data, preprocessing, size=options.size, progress=(bar, task), labels=labels,
                                class_ids=class_ids, needs_labels=options.max_top1_drop is not None)
    steps.info(f"calibration: {len(data.calib)} images from {data.source}, {len(data.held_out)} held out"
               + (f", {len(data.skipped)} unreadable files skipped" if data.skipped else ""))
    return data


def guarded_int8(quantizer: Quantizer, artifact: Path, outputs: Callable[[], list[np.ndarray]], refs: list[np.ndarray],
                 data: CalibrationSet, bounds: GuardBounds, steps: Steps, label: str, names: Sequence[str],
                 notes: Sequence[str] = (), qat: bool = False, first: Path | None = None) -> Calibration:
    """Quantize to artifact under the guard (layers back to float until the bound holds, FnxError if it never does)
    and return the calibration record. qat: the record's scheme is "qat" and the graph's own types go to the notes.
    first: the all-int8 file `--int8-form auto` already wrote in the quantizer's form (the guard's first attempt)."""
    report, keep, ranking = run_guarded(quantizer, artifact, outputs, refs, data, bounds, steps, label, list(names),
                                        first)
    scheme, notes = quantizer.description, list(notes)
    if qat:
        notes.append(f"int8 graph: {scheme}")
        scheme = "qat"
    return calibration_record(data, quantizer.scheme, quantizer.io, keep, report, ranking, bounds,
                              quantizer.float_ops(artifact), [*notes, *quantizer.notes], scheme)
