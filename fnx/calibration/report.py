"""What an int8 artifact's manifest says about its calibration: I/O quantization, summary, report; torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.calibration import onnx_int8
from fnx.calibration.data import CalibrationSet


def record(manifest: dict, path: Path, fmt: str, data: CalibrationSet, method: str, io: str, keep: list[str], report: dict,
           ranking: list[dict], min_cosine: float, max_drop: float | None) -> None:
    """Write the int8 facts into manifest: I/O quantization, calibration summary, report."""
    from fnx.runtime.engines import open_engine

    eng = open_engine(path)
    for entry, info in ((manifest["input"], eng.inputs[0]), (manifest["outputs"][0], eng.outputs[0])):
        entry.update(dtype=str(info.dtype),
                     quantization={"scale": info.scale, "zero_point": info.zero_point} if info.quantized else None)
    manifest["calibration"] = {
        **data.summary(), "method": method, "io": io, "kept_float": keep,
        "scheme": "static; weights int8 per-channel symmetric; activations int8",
        "guard": {"min_cosine": min_cosine, "max_top1_drop": max_drop, "steps": report.get("guard_steps", 0)},
        "report": {**report, "layer_errors": ranking[:10], "float_ops": float_ops(path, fmt)},
    }


def float_ops(path: Path, fmt: str) -> dict[str, int]:
    """Return {op type: count} of compute ops that run in float in an int8 artifact."""
    if fmt == "onnx":
        return onnx_int8.float_ops(path)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dtypes = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    counts: dict[str, int] = {}
    for op in it._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(dtypes.get(i) == np.float32 for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0):
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts
