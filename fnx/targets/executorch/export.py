"""The ExecuTorch format: the deploy-form model (PConv as two slices and a cat, which XNNPACK takes whole) lowered to
one XNNPACK delegate, fp32; int8 through PT2E with XNNPACK's quantizer (`int8`)."""

from __future__ import annotations

from pathlib import Path

from fnx.exporter.formats import ArtifactFormat, register_format
from fnx.targets.executorch import FILE
from fnx.targets.executorch.int8 import FORMS, XnnpackPt2eQuantizer
from fnx.targets.executorch.lower import INSTALL, write_pte


@register_format
class ExecuTorchFormat(ArtifactFormat):
    """ExecuTorch programs (.pte), NCHW, for ExecuTorch's runtime with the XNNPACK delegate (ARM and x86 CPUs)."""

    name = "executorch"
    file = FILE
    # PConv's split leaves 13 split ops outside XNNPACK (14 delegate subgraphs for T0); slices and a cat stay in one
    pconv_form = "slice_cat"
    converters = ("torch", "torchao", "executorch")  # the manifest's executorch version: the engine checks it
    requires = ("torch", "executorch")
    install = INSTALL
    float_precisions = ("fp32",)  # XNNPACK's fp16 needs ARM fp16 arithmetic; fnx does not offer it here
    int8_forms = FORMS
    layers_absent = ("an ExecuTorch program runs the whole graph inside one XNNPACK delegate, which exposes no "
                     "intermediate tensors: run --layers on an onnx or tflite export of the same model")

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        size, chans = built.img_size, built.model.in_chans
        write_pte(model, (torch.zeros(opts.batch, chans, size, size),), path)

    def int8_quantizer(self, model, built, opts, data, work: Path) -> XnnpackPt2eQuantizer:
        return XnnpackPt2eQuantizer(model, data, opts.batch, opts.int8.form)
