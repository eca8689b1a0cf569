"""int8 artifacts for `fnx export`: PT2E traced by litert-torch (TFLite), ONNX Runtime QDQ (ONNX).

Both share one calibration sample, one held-out report and the accuracy guard (fnx.calibration.guard).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fnx.calibration import onnx_int8
from fnx.calibration.data import CalibrationSet, load_calibration
from fnx.calibration.guard import run_guarded
from fnx.calibration.report import record
from fnx.calibration.sensitivity import layer_errors, make_quantizer
from fnx.errors import FnxError
from fnx.models import get_variant
from fnx.parity import BOUNDS
from fnx.progress import Steps


GELU_NOTE = {
    "onnx": "GELU variant: ONNX Runtime has no int8 GELU and runs it in float between int8 convs; measured here, int8 "
            "ONNX of T0/T1 is 1.6-1.9x faster than fp32 where int8 TFLite (LiteRT) is 2.6-3.1x (docs/BENCHMARKS.md): "
            "prefer int8 TFLite for these variants.",
    "tflite": "GELU variant: XNNPACK has no int8 GELU kernel, so the GELU ops run on TFLite's built-in int8 kernels "
              "between XNNPACK partitions; still the fastest option measured for T0/T1 (docs/BENCHMARKS.md).",
}


def calibration_data(built, cal: dict, steps: Steps) -> tuple[CalibrationSet, np.ndarray]:
    """Return the calibration set and the fp32 PyTorch logits of its held-out images (read once per export)."""
    if "calibration" not in built.cache:
        bar, task = steps.progress("reading calibration images", None)
        with bar:
            data = load_calibration(cal.get("data"), built.preprocessing, size=int(cal.get("size") or 256), progress=(bar, task))
        steps.info(f"calibration: {len(data.calib)} images from {data.source}, {len(data.held_out)} held out"
                   + (f", {len(data.skipped)} unreadable files skipped" if data.skipped else ""))
        with torch.no_grad():
            refs = built.model(torch.from_numpy(np.ascontiguousarray(data.held_out.transpose(0, 3, 1, 2)))).numpy()
        built.cache["calibration"] = (data, refs)
    return built.cache["calibration"]


def convert_int8(built, deployed: torch.nn.Module, fmt: str, opts, tmp: Path, steps: Steps, manifest: dict) -> None:
    """Write an int8 artifact of deployed to tmp under the accuracy guard; record calibration and report in manifest."""
    cal = opts.calibration
    method = (cal.get("method") or "minmax").lower()
    io = (cal.get("io") or "int8").lower()
    if method not in onnx_int8.METHODS:
        raise FnxError(f"unknown --calib-method {method!r}; use one of {', '.join(onnx_int8.METHODS)}")
    if io not in ("int8", "float"):
        raise FnxError(f"unknown --io {io!r}; use int8 or float")
    if fmt == "tflite" and io == "float":
        raise FnxError("--io float is not available for TFLite: litert-torch's PT2E path always emits int8 input and "
                       "output tensors. Use --io int8 (fnx's runtime and examples/classify.py quantize inputs for you) "
                       "or --format onnx, whose QDQ model keeps float I/O")
    if fmt == "onnx" and io == "int8":
        io = "float"  # QDQ ONNX models take and give float tensors; the int8 work happens inside
    if built.features:
        raise FnxError("int8 export of the --features backbone is not supported yet; export it as fp32 or fp16")
    data, refs = calibration_data(built, cal, steps)
    notes = []
    if get_variant(built.name).act == "gelu":
        # The GELU policy (docs/BENCHMARKS.md): same accuracy guard as the ReLU variants, but say where int8 pays.
        notes.append(GELU_NOTE[fmt])
        steps.info(f"[yellow]note:[/] {GELU_NOTE[fmt]}")
    min_cosine = cal.get("min_cosine") or BOUNDS["int8"]["min_cosine"]
    probe = data.held_out[:8]

    from fnx.exporter.pipeline import run_artifact

    layout = "NHWC" if fmt == "tflite" else "NCHW"
    outputs = lambda: run_artifact(tmp, data.held_out, layout)[0]  # noqa: E731
    if fmt == "tflite":
        quantize = lambda keep: _tflite_int8(deployed, data, tmp, keep, opts.batch)  # noqa: E731
        rank = lambda: layer_errors(deployed, data.calib[:32], probe)  # noqa: E731
        scheme = "minmax (PT2E observers)"
    else:
        fp32 = tmp.with_name(tmp.stem + ".fp32.onnx")
        _onnx_fp32(deployed, fp32, built.img_size, opts)
        quantize = lambda keep: onnx_int8.quantize_file(fp32, tmp, data, method, keep, opts.batch)  # noqa: E731
        rank = lambda: onnx_int8.layer_errors(fp32, tmp, probe)  # noqa: E731
        scheme = method
    try:
        report, keep, ranking = run_guarded(quantize, outputs, rank, tmp, refs, data, min_cosine, cal.get("max_top1_drop"),
                                            steps, fmt)
    finally:
        if fmt == "onnx":
            fp32.unlink(missing_ok=True)
    record(manifest, tmp, fmt, data, scheme, io, keep, report, ranking, min_cosine, cal.get("max_top1_drop"))
    manifest["calibration"]["notes"] = notes


def _tflite_int8(deployed, data: CalibrationSet, tmp: Path, keep_float: list[str], batch: int) -> None:
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from fnx.exporter.tflite_export import _litert_torch, channel_last
    from fnx.quiet import quiet

    lt = _litert_torch()
    wrapped = channel_last(deployed, features=False)
    quantizer = make_quantizer(keep_float)
    sample = torch.from_numpy(data.calib[:batch].copy())
    prepared = prepare_pt2e(torch.export.export(wrapped, (sample,)).module(), quantizer)
    with torch.no_grad():
        for i in range(0, len(data.calib) - batch + 1, batch):
            prepared(torch.from_numpy(data.calib[i : i + batch].copy()))
    converted = convert_pt2e(prepared, fold_quantize=False)
    quiet(lambda: lt.convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(tmp)))


def _onnx_fp32(deployed, path: Path, size: int, opts) -> None:
    from fnx.exporter import onnx_export

    onnx_export.export_onnx(deployed, path, torch.zeros(opts.batch, 3, size, size), ["logits"], opts.dynamic_batch, opts.opset)
    onnx_export.simplify_onnx(path)
