"""ONNX conversion: the TorchScript-based exporter (opset >= 20, one Gelu op), onnxslim, fp16 weights, op counts.
Shared by the ONNX and OpenVINO targets (OpenVINO converts fnx's ONNX)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fnx.errors import FnxError

if TYPE_CHECKING:
    import torch

MIN_OPSET = 20  # below 20 GELU decomposes into Erf + Mul + Div


def check_opset(opset: int, min_opset: int = MIN_OPSET) -> None:
    """FnxError for an opset that would decompose FasterNet's GELU (every format made from fnx's ONNX checks it; a
    converter that reads only older opsets passes its own min_opset)."""
    if opset < min_opset:
        raise FnxError(f"--opset {opset} is too old: FasterNet's GELU needs opset >= {MIN_OPSET} to stay one Gelu op")


def export_onnx(model: "torch.nn.Module", path: Path, sample: "torch.Tensor", output_names: list[str],
                dynamic_batch: bool = False, opset: int = 20, min_opset: int = MIN_OPSET) -> None:
    """Write model traced on sample (NCHW) to path as ONNX (opset >= min_opset)."""
    import torch

    check_opset(opset, min_opset)
    axes = {n: {0: "batch"} for n in ["input", *output_names]} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: deterministic output and no onnxscript dependency.
        torch.onnx.export(model, (sample,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=output_names, dynamic_axes=axes, do_constant_folding=True)


def simplify_onnx(path: Path) -> None:
    """Simplify the ONNX file in place with onnxslim and check it with onnx.checker."""
    import onnx
    import onnxslim

    slim = onnxslim.slim(onnx.load(str(path)))
    onnx.checker.check_model(slim, full_check=True)
    onnx.save(slim, str(path))


def to_fp16(path: Path) -> None:
    """Convert the ONNX file's weights and compute to float16 in place, keeping float32 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(model, str(path))


def onnx_op_counts(path: Path) -> Counter:
    """Return the number of nodes of each op type in an ONNX file."""
    import onnx

    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)
