"""ONNX: traced with the TorchScript exporter (opset >= 20, one Gelu op), simplified with onnxslim, checked.

fp16 through ONNX Runtime's float16 converter (float I/O kept); int8 through ONNX Runtime's static
QDQ quantization (fnx.calibration.onnx_int8) of an fp32 export made on the side.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fnx.errors import FnxError
from fnx.exporter.formats import register_format
from fnx.formats import FILE_FORMATS

if TYPE_CHECKING:
    import torch

MIN_OPSET = 20  # below 20 GELU decomposes into Erf + Mul + Div


def check_opset(opset: int) -> None:
    """FnxError for an opset that would decompose FasterNet's GELU (every format made from fnx's ONNX checks it)."""
    if opset < MIN_OPSET:
        raise FnxError(f"--opset {opset} is too old: FasterNet's GELU needs opset >= {MIN_OPSET} to stay one Gelu op")


def export_onnx(model: "torch.nn.Module", path: Path, sample: "torch.Tensor", output_names: list[str],
                dynamic_batch: bool = False, opset: int = 20) -> None:
    """Write model traced on sample (NCHW) to path as ONNX."""
    import torch

    check_opset(opset)
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


@register_format
class OnnxFormat:
    """ONNX artifacts, NCHW, for ONNX Runtime (CPU, CUDA, TensorRT)."""

    name = "onnx"
    file = FILE_FORMATS["onnx"]
    pconv_form = "split_cat"  # the slicing form's in-place write becomes ScatterND chains in ONNX
    converters = ("torch", "onnx", "onnxslim", "onnxruntime")
    requires = ("torch", "onnx", "onnxslim", "onnxruntime")
    quantizes_files = True  # ONNX Runtime's static quantization works on the file (fnx.calibration.quantize)
    int8_options = ("graph_form",)  # --onnx-int8-form and --target: which QDQ form (fnx.calibration.onnx_int8)
    gelu_note = ("GELU variant: ONNX Runtime has no int8 GELU and runs it in float between int8 convs; measured here, "
                 "int8 ONNX of T0/T1 is 1.6-1.9x faster than fp32 where int8 TFLite (LiteRT) is 2.6-3.1x "
                 "(docs/BENCHMARKS.md): prefer int8 TFLite for these variants.")

    def check(self, opts) -> None:
        check_opset(opts.opset)

    def layer_tensors(self, path: Path, batch_nhwc) -> dict:
        import numpy as np

        from fnx.calibration.onnx_int8 import onnx_layer_tensors

        return onnx_layer_tensors(path, np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2)))

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        size, chans = built.img_size, built.model.in_chans
        export_onnx(model, path, torch.zeros(opts.batch, chans, size, size), built.output_names, opts.dynamic_batch,
                    opts.opset)
        simplify_onnx(path)
        if opts.precision == "fp16":
            to_fp16(path)

    def int8_quantizer(self, model, built, opts, data, work: Path):
        from dataclasses import replace

        from fnx.calibration.onnx_int8 import OrtQdqQuantizer

        fp32 = work.with_name(work.stem + ".fp32.onnx")
        self.export_float(model, fp32, built, replace(opts, precision="fp32", from_qat=None))
        return OrtQdqQuantizer(fp32, data, opts.int8.method, opts.batch, owns_fp32=True, form=opts.int8.onnx_form,
                               target=opts.int8.target)

