"""One artifact: convert to its format and precision under a temp name, verify, embed, keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fnx.errors import FnxError
from fnx.exporter import onnx_export, tflite_export
from fnx.exporter.pipeline import (FEATURE_NAMES, BuiltModel, ExportOptions, ExportResult, ParityError, base_manifest,
                                   finish_manifest, run_artifact)
from fnx.fileio import atomic_path
from fnx.manifest import embed_in_onnx, write_manifest
from fnx.parity import bounds_for, check
from fnx.progress import Steps


def convert(built: BuiltModel, deployed: torch.nn.Module, fmt: str, opts: ExportOptions, tmp: Path, steps: Steps,
            manifest: dict) -> None:
    """Write the deployed model to tmp in fmt at opts.precision (int8 goes through fnx.calibration)."""
    size, chans = built.img_size, built.model.in_chans
    out_names = FEATURE_NAMES if built.features else ["logits"]
    if opts.precision == "int8":
        from fnx.calibration.int8 import convert_int8

        convert_int8(built, deployed, fmt, opts, tmp, steps, manifest)
        return
    if fmt == "onnx":
        with steps.step(f"trace to ONNX (opset {opts.opset}{', dynamic batch' if opts.dynamic_batch else ''})"):
            onnx_export.export_onnx(deployed, tmp, torch.zeros(opts.batch, chans, size, size), out_names,
                                    opts.dynamic_batch, opts.opset)
        with steps.step("simplify (onnxslim) + onnx.checker"):
            onnx_export.simplify_onnx(tmp)
        if opts.precision == "fp16":
            with steps.step("convert to fp16"):
                onnx_export.to_fp16(tmp)
    else:
        if opts.dynamic_batch:
            raise FnxError("--dynamic-batch applies to ONNX only; TFLite inputs are resized at run time by the runtime")
        with steps.step("trace + convert to TFLite (litert-torch, NHWC I/O)"):
            tflite_export.export_tflite(deployed, tmp, torch.zeros(opts.batch, size, size, chans), features=built.features)
        if opts.precision == "fp16":
            with steps.step("convert weights to fp16 (ai-edge-quantizer)"):
                tflite_export.to_fp16(tmp, tmp)


def export_one(built: BuiltModel, deployed: torch.nn.Module, fmt: str, opts: ExportOptions, final: Path, steps: Steps,
               batch_nhwc: np.ndarray | None, refs: list[np.ndarray] | None, source: str | None) -> ExportResult:
    """Return the verified artifact at final (nothing is left under that name if any step fails)."""
    manifest = base_manifest(built, fmt, opts.precision, opts)
    with atomic_path(final) as tmp:
        convert(built, deployed, fmt, opts, tmp, steps, manifest)
        report = None
        if refs is not None:
            with steps.step(f"verify {fmt} {opts.precision} against PyTorch fp32"):
                outs = run_artifact(tmp, batch_nhwc, manifest["input"]["layout"])
                if built.features and manifest["input"]["layout"] == "NHWC":
                    outs = [o.transpose(0, 3, 1, 2) for o in outs]
                names = FEATURE_NAMES if built.features else ["logits"]
                bounds = bounds_for(opts.precision, opts.calibration.get("min_cosine"))
                report = check(refs, outs, opts.precision, names, logits=not built.features and built.num_classes > 0,
                               bounds=bounds)
            if not report.passed:
                raise ParityError(f"{final.name} failed its parity check ({'; '.join(report.failures)}); "
                                  f"no artifact was written", report)
        manifest["parity"] = None if report is None else {**report.to_dict(), "inputs": source}
        if fmt == "onnx":
            embed_in_onnx(tmp, manifest)
        finish_manifest(manifest, tmp, final)
        write_manifest(final, manifest)
    return ExportResult(final, manifest, report)
