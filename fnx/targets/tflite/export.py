"""The TFLite format: litert-torch's NHWC flatbuffers (`convert`), fp16 weights, int8 through PT2E (`int8`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.targets.tflite import FILE
from fnx.targets.tflite.convert import channel_last, export_tflite, to_fp16
from fnx.targets.tflite.graph import layer_tensors
from fnx.targets.tflite.int8 import FORMS, Pt2eQuantizer, QatQuantizer


def _feature_maps(built) -> int:
    """How many of the model's outputs are feature maps (a --features backbone: NHWC in the TFLite file)."""
    return sum(o.kind == "feature_map" for o in built.output_specs())


@register_format
class TFLiteFormat(ArtifactFormat):
    """TFLite artifacts, NHWC, for LiteRT / tflite-runtime (XNNPACK on ARM and x86)."""

    name = "tflite"
    file = FILE
    pconv_form = "split_cat"  # slicing is at most 1% faster and adds TRANSPOSE ops (benchmarks/pconv_forms.py)
    converters = ("torch", "torchao", "litert-torch", "ai-edge-litert", "ai-edge-quantizer")  # torchao: PT2E int8
    requires = ("torch", "litert_torch")
    int8_forms = FORMS  # PT2E's weight granularities (fnx.targets.tflite.int8)
    int8_gelu_forms = True  # XNNPACK has no int8 GELU: x*sigmoid(1.702x) keeps T0/T1 in one partition
    gelu_note = ("GELU variant: XNNPACK has no int8 GELU kernel, so the GELU ops run on TFLite's built-in int8 kernels "
                 "between XNNPACK partitions; still the fastest option measured for T0/T1 (docs/BENCHMARKS.md).")

    def refuse(self, opts) -> None:
        if opts.precision == "int8" and opts.int8.io == "float":
            raise FnxError("--io float is not available for TFLite: litert-torch's PT2E path always emits int8 input and "
                           "output tensors. Use --io int8 (fnx's runtime and examples/classify.py quantize inputs for "
                           "you) or --format onnx, whose QDQ model keeps float I/O")

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        size, chans = built.img_size, built.model.in_chans
        export_tflite(model, path, torch.zeros(opts.batch, size, size, chans), n_feature_maps=_feature_maps(built))
        if opts.precision == "fp16":
            to_fp16(path, path)

    def int8_quantizer(self, model, built, opts, data, work: Path) -> Pt2eQuantizer:
        return Pt2eQuantizer(model, data, opts.batch, _feature_maps(built), opts.int8.form)

    def layer_tensors(self, path: Path, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.transpose(0, 3, 1, 2) if v.ndim == 4 else v for k, v in layer_tensors(path, batch_nhwc).items()}

    def wrap_io(self, model):
        return channel_last(model)

    def qat_quantizer(self, model, built, opts, data, work: Path) -> QatQuantizer:
        from fnx.calibration.qat import cached_ranges, ranges_path

        _, state = cached_ranges(built.cache.qat_ranges, opts.from_qat)
        return QatQuantizer(model, data, opts.batch, state, ranges_path(opts.from_qat))
