"""The Ethos-U format: the TFLite target's guarded int8 path (PT2E, NHWC, int8 I/O), then Vela (`vela`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.formats import ArtifactFormat, get_format, register_format
from fnx.install import pip_install
from fnx.targets.ethos_u import FILE


def _tflite() -> ArtifactFormat:
    return get_format("tflite")  # looked up when called: the registries load the targets' exports in turn


@register_format
class EthosUFormat(ArtifactFormat):
    """int8 TFLite compiled by Vela for an Ethos-U55/U65 (`--target`, default the first of FILE.targets).

    The int8 file is made, guarded and checked against PyTorch exactly as `--format tflite --precision int8` makes it
    (the TFLite format's quantizers and NHWC wrapping); Vela then compiles it in place, and the manifest says so
    (`compilation`)."""

    name = "ethos-u"
    file = FILE
    converters = ("torch", "torchao", "litert-torch", "ai-edge-litert", "ethos-u-vela")
    requires = ("torch", "litert_torch", "ethosu")  # ethosu: ethos-u-vela's top-level module
    install = pip_install("export", "ethos-u")
    float_precisions = ()  # the NPU computes in int8 only

    def export_float(self, model, path: Path, built, opts) -> None:
        raise FnxError("an Ethos-U NPU computes in int8: export --format ethos-u --precision int8")

    def refuse(self, opts) -> None:
        if importlib.util.find_spec("ethosu") is None:  # before the model is built and calibrated
            raise FnxError(f"--format ethos-u needs Arm's Vela compiler (ethos-u-vela): {self.install}")
        _tflite().refuse(opts)

    def wrap_io(self, model):
        return _tflite().wrap_io(model)

    def int8_quantizer(self, model, built, opts, data, work: Path):
        return _tflite().int8_quantizer(model, built, opts, data, work)

    def qat_quantizer(self, model, built, opts, data, work: Path):
        return _tflite().qat_quantizer(model, built, opts, data, work)

    def compile(self, path: Path, opts):
        from fnx.targets.ethos_u.vela import compile_tflite

        return compile_tflite(path, opts.int8.target or FILE.targets[0])
