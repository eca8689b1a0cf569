"""ONNX: traced with the TorchScript exporter (opset >= 20, one Gelu op), simplified with onnxslim, checked.

fp16 through ONNX Runtime's float16 converter (float I/O kept); int8 through ONNX Runtime's static
QDQ quantization (fnx.targets.onnx.int8) of an fp32 export made on the side.
"""

from __future__ import annotations

from pathlib import Path

from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.targets.onnx import CALIBRATORS, FILE
from fnx.targets.onnx.convert import check_opset, export_onnx, simplify_onnx, to_fp16
from fnx.targets.onnx.int8_form import FORMS, choose_onnx_int8_form


@register_format
class OnnxFormat(ArtifactFormat):
    """ONNX artifacts, NCHW, for ONNX Runtime (CPU, CUDA, TensorRT)."""

    name = "onnx"
    file = FILE
    pconv_form = "split_cat"  # the slicing form's in-place write becomes ScatterND chains in ONNX
    converters = ("torch", "onnx", "onnxslim", "onnxruntime")
    requires = ("torch", "onnx", "onnxslim", "onnxruntime")
    calib_methods = tuple(CALIBRATORS)  # ONNX Runtime's calibrators
    int8_forms = FORMS  # the QDQ forms (fnx.targets.onnx.int8_form); sigmoid GELU measured no faster on ONNX Runtime
    gelu_note = ("GELU variant: ONNX Runtime has no int8 GELU and runs it in float between int8 convs; measured here, "
                 "int8 ONNX of T0/T1 is 1.6-1.9x faster than fp32 where int8 TFLite (LiteRT) is 2.6-3.1x "
                 "(docs/BENCHMARKS.md): prefer int8 TFLite for these variants.")

    def refuse(self, opts) -> None:
        check_opset(opts.opset)

    def int8_form_rule(self, target: str) -> tuple[str, str]:
        choice = choose_onnx_int8_form("auto", target)
        return choice.form, choice.reason

    def layer_tensors(self, path: Path, batch_nhwc) -> dict:
        import numpy as np

        from fnx.targets.onnx.int8 import onnx_layer_tensors

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

        from fnx.targets.onnx.int8 import OrtQdqQuantizer

        fp32 = work.with_name(work.stem + ".fp32.onnx")
        self.export_float(model, fp32, built, replace(opts, precision="fp32", from_qat=None, gelu_form="exact"))
        return OrtQdqQuantizer(fp32, data, opts.int8.method, opts.batch, owns_fp32=True, form=opts.int8.form,
                               target=opts.int8.target)

    def file_quantizer(self, fp32: Path, data, options):
        """ONNX Runtime's static quantization works on the fp32 file itself (`fnx quantize`)."""
        from fnx.targets.onnx.int8 import OrtQdqQuantizer

        return OrtQdqQuantizer(fp32, data, options.method, form=options.form, target=options.target)

