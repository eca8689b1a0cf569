"""int8 artifacts for `fnx export`: one calibration sample per model, the format's Quantizer, the guard, the record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fnx.calibration.data import CalibrationSet
from fnx.calibration.flow import guarded_int8, read_calibration
from fnx.calibration.guard import guard_bounds
from fnx.calibration.report import record_io_quantization
from fnx.exporter.build import BuiltModel
from fnx.exporter.checks import as_nchw, reference_outputs, run_artifact
from fnx.exporter.formats import ArtifactFormat
from fnx.exporter.from_qat import reference_of
from fnx.exporter.gelu_form import gelu_form_note
from fnx.exporter.options import ExportOptions
from fnx.manifest import Manifest
from fnx.models import get_variant
from fnx.progress import Steps


def calibration_data(built: BuiltModel, opts: ExportOptions, steps: Steps,
                     fmt: ArtifactFormat) -> tuple[CalibrationSet, list[np.ndarray]]:
    """Return the calibration set (read once per model) and the outputs of its held-out images by the PyTorch module
    fmt's artifact must reproduce (fp32, or a QAT graph: fnx.exporter.from_qat)."""
    if built.cache.calibration is None:
        built.cache.calibration = read_calibration(opts.int8, built.preprocessing, built.labels, built.class_ids, steps)
    data = built.cache.calibration
    reference, name = reference_of(built, fmt, opts.from_qat)
    refs = built.cache.held_out_refs
    if name not in refs:
        refs[name] = reference_outputs(reference, data.held_out)
    return data, refs[name]


def export_int8(fmt: ArtifactFormat, built: BuiltModel, deployed: torch.nn.Module, opts: ExportOptions, tmp: Path,
                steps: Steps, manifest: Manifest) -> None:
    """Write a guarded int8 artifact of deployed to tmp; record its calibration and I/O quantization in manifest.

    A --features backbone is guarded on its weakest feature map (every output held to the bound)."""
    data, refs = calibration_data(built, opts, steps, fmt)
    notes = []
    if opts.gelu_form != "exact":
        notes.append(gelu_form_note(opts.gelu_form))
    elif get_variant(built.name).act == "gelu" and fmt.gelu_note:
        notes.append(fmt.gelu_note)  # the GELU policy (docs/BENCHMARKS.md): same guard, but say where int8 pays
        steps.info(f"[yellow]note:[/] {fmt.gelu_note}")
    bounds = guard_bounds(opts.int8.min_cosine, opts.int8.max_top1_drop)
    make = fmt.int8_quantizer
    if opts.from_qat is not None:
        make = fmt.qat_quantizer or fmt.int8_quantizer
        notes.append(qat_note(opts.from_qat, fmt.name, learned_ranges=fmt.qat_quantizer is not None))
    with make(deployed, built, opts, data, tmp) as quantizer:
        outputs = lambda: as_nchw(run_artifact(tmp, data.held_out, fmt.file.layout), manifest.outputs)  # noqa: E731
        manifest.calibration = guarded_int8(quantizer, tmp, outputs, refs, data, bounds, steps, fmt.name,
                                            [o.name for o in manifest.outputs], notes, qat=opts.from_qat is not None)
    record_io_quantization(manifest, tmp)


def qat_note(ckpt: Path, fmt: str, learned_ranges: bool) -> str:
    """Return the manifest note of an int8 artifact made from a `fnx train --qat` checkpoint."""
    from fnx.models.sidecar import read_sidecar

    side = read_sidecar(ckpt)
    qat = (side.extra or {}).get("qat", {}) if side else {}
    accuracy = (f"; QAT val top-1 {100 * side.val_acc:.2f}% (fake-quant) from fp32 {100 * qat['fp32_val_acc']:.2f}%"
                if side and side.val_acc is not None and "fp32_val_acc" in qat else "")
    how = ("weights and activation ranges learned in QAT" if learned_ranges else
           f"weights from QAT; activation ranges calibrated by the {fmt} quantizer (it does not take PT2E ranges)")
    return f"QAT checkpoint {Path(ckpt).name} (from {qat.get('base_weights', '?')}): {how}{accuracy}"
