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

    The int8 file is made, guarded and checked against PyTorch as `--format tflite --precision int8` makes it (the
    TFLite format's quantizer and NHWC wrapping), from the deploy form with the space-to-depth stem; Vela then compiles
    it in place, and the manifest says so (`compilation`). `--from-qat` calibrates the QAT weights (the learned
    ranges belong to the conv stem's graph), as ONNX does."""

    name = "ethos-u"
    file = FILE
    converters = ("torch", "torchao", "litert-torch", "ai-edge-litert", "ethos-u-vela")
    requires = ("torch", "litert_torch", "ethosu")  # ethosu: ethos-u-vela's top-level module
    install = pip_install("export", "ethos-u")
    float_precisions = ()  # the NPU computes in int8 only
    # Vela splits the 4x4 stride-4 stem into one op per output pixel (3136 at 224 px): space-to-depth + 1x1 halves the
    # estimated latency (T0 224: U55-256 30.5 -> 13.4 ms, U65-512 6.4 -> 3.2 ms); no CPU engine gains from it
    # (benchmarks/stem_forms.py, docs/BENCHMARKS.md)
    stem_form = "space_to_depth"

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

    def compile(self, path: Path, opts):
        from fnx.targets.ethos_u.vela import compile_tflite

        return compile_tflite(path, opts.int8.target or FILE.targets[0])
