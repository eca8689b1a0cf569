"""OpenVINO IR (.xml + .bin): fnx's fp32 ONNX converted by OpenVINO's own converter; int8 by NNCF.

fp32 keeps fp32 weights (OpenVINO's save_model would compress them to fp16 by default: fnx does not do
that silently); fp16 stores fp16 weights, computed in the engine's inference precision. int8 is NNCF's
post-training quantization (fnx.targets.openvino.int8) judged by fnx's accuracy guard.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.targets.onnx.convert import check_opset, export_onnx, simplify_onnx
from fnx.errors import FnxError
from fnx.targets.openvino import FILE
from fnx.install import pip_install
from fnx.targets.openvino import env as openvino_env
from fnx.targets.openvino.int8 import FORMS


def onnx_to_ir(onnx_path: Path, xml: Path, fp16_weights: bool = False) -> None:
    """Convert an ONNX file to OpenVINO IR at xml (its .bin beside it)."""
    ov = openvino_env.openvino()

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=fp16_weights)


@register_format
class OpenVinoFormat(ArtifactFormat):
    """OpenVINO IR artifacts, NCHW, for OpenVINO's CPU plugin."""

    name = "openvino"
    file = FILE
    pconv_form = "split_cat"  # converted from the ONNX graph, which takes this form best
    converters = ("torch", "onnx", "onnxslim", "openvino", "nncf")
    requires = ("torch", "onnx", "onnxslim", "openvino", "nncf")
    install = pip_install("export", "openvino")
    int8_forms = FORMS  # NNCF's presets (fnx.targets.openvino.int8)
    int8_gelu_forms = True  # OpenVINO's int8 GELU ran T0 slower than x*sigmoid(1.702x) here (docs/BENCHMARKS.md)

    def refuse(self, opts) -> None:
        if opts.from_qat is not None:
            raise FnxError("--from-qat is not available for OpenVINO: NNCF trains its own fake-quant graph "
                           "(nncf.quantize, then fine-tune), which fnx does not run. Export the QAT model with "
                           "--format tflite or onnx, or OpenVINO fp32 from its float weights (--weights CKPT)")
        check_opset(opts.opset)

    def layer_tensors(self, path: Path, batch_nhwc) -> dict:
        import numpy as np

        from fnx.targets.openvino.int8 import openvino_layer_tensors

        return openvino_layer_tensors(path, np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2)))

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        onnx_path = path.with_name(path.stem + ".src.onnx")
        try:
            size, chans = built.img_size, built.model.in_chans
            export_onnx(model, onnx_path, torch.zeros(opts.batch, chans, size, size), built.output_names,
                        opts.dynamic_batch, opts.opset)
            simplify_onnx(onnx_path)
            onnx_to_ir(onnx_path, path, fp16_weights=opts.precision == "fp16")
        finally:
            onnx_path.unlink(missing_ok=True)

    def int8_quantizer(self, model, built, opts, data, work: Path):
        from fnx.targets.openvino.int8 import NncfQuantizer

        fp32 = work.with_name(work.stem + ".fp32.xml")
        try:
            self.export_float(model, fp32, built, replace(opts, precision="fp32", from_qat=None, gelu_form="exact"))
        except BaseException:
            for p in (fp32, fp32.with_suffix(".bin")):
                p.unlink(missing_ok=True)
            raise
        return NncfQuantizer(fp32, data, opts.batch, owns_fp32=True, form=opts.int8.form)
