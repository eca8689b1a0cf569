"""Export formats behind one protocol, in the FORMATS registry (importing this is torch-free).

A format converts the deploy-form PyTorch model to its file (fp32/fp16), and gives the int8
calibration library a Quantizer for its int8 path. Its file facts (suffix, layout, how a file is
recognised) live in `fnx.formats`, shared with the runtime. To add a format: register its
FileFormat, write a class with the `ArtifactFormat` members, decorate it with `register_format`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from fnx.errors import FnxError
from fnx.formats import FileFormat
from fnx.install import pip_install
from fnx.plugins import complete_plugin

if TYPE_CHECKING:
    import torch

    from fnx.calibration.data import CalibrationSet
    from fnx.calibration.quantizer import Quantizer
    from fnx.exporter.build import BuiltModel
    from fnx.exporter.options import ExportOptions


class ArtifactFormat(Protocol):
    """How fnx writes one artifact format."""

    name: ClassVar[str]
    file: ClassVar[FileFormat]
    pconv_form: ClassVar[str]  # the PConv form that converts best to this format (benchmarks/pconv_forms.py)
    converters: ClassVar[tuple[str, ...]]  # distributions whose versions the manifest records
    requires: ClassVar[tuple[str, ...]]  # optional: modules the converter imports (what `--format all` checks)
    gelu_note: ClassVar[str | None]  # optional: what int8 means for the GELU variants on this format's engines
    quantizes_files: ClassVar[bool]  # optional: `fnx quantize` makes int8 from an fp32 file (no PyTorch model)
    install: ClassVar[str]  # optional: what to install for its `requires` (default: fnx's export extra)

    def check(self, opts: ExportOptions) -> None:
        """Refuse options this format cannot honour, with what to use instead."""

    def export_float(self, model: torch.nn.Module, path: Path, built: BuiltModel, opts: ExportOptions) -> None:
        """Write model (deploy form, NCHW) to path at opts.precision (fp32 or fp16)."""

    def int8_quantizer(self, model: torch.nn.Module, built: BuiltModel, opts: ExportOptions, data: CalibrationSet,
                       work: Path) -> Quantizer:
        """Return the calibration library's Quantizer for this format (a context manager owning its temp files)."""

    # optional: qat_quantizer(model, built, opts, data, work) -> Quantizer, the int8 of the fake-quant ranges
    # `fnx train --qat` learned (opts.from_qat). A format without it calibrates the QAT weights its own way.
    # optional: layer_tensors(path, batch_nhwc) -> {layer name: its output, NCHW}, read from the file itself
    # (`fnx verify --layers`); None: the format's intermediate tensors cannot be read.
    # optional: wrap_io(model) -> the module as the converter sees it (TFLite: NHWC in and out); default: itself.
    int8_options: ClassVar[tuple[str, ...]]  # optional: int8 choices it honours beyond the common ones ("graph_form":
    # --onnx-int8-form and --target choose its int8 graph form); another format's are refused when only it is made


FORMATS: dict[str, ArtifactFormat] = {}


REQUIRED_MEMBERS = ("name", "file", "pconv_form", "converters", "check", "export_float", "int8_quantizer")
OPTIONAL_MEMBERS = {"requires": (), "gelu_note": None, "quantizes_files": False, "install": pip_install("export"),
                    "qat_quantizer": None, "layer_tensors": None, "int8_options": (),
                    "wrap_io": staticmethod(lambda model: model)}  # what a format without them gets


def register_format(cls: type) -> type:
    """Add a format class (instantiated once) to the registry; returns the class.

    A class missing a required member of the ArtifactFormat protocol is refused (TypeError naming it); the
    optional ones get their defaults, so the rest of fnx reads every member directly.
    """
    FORMATS[cls.name] = complete_plugin(cls, "ArtifactFormat", REQUIRED_MEMBERS, OPTIONAL_MEMBERS)()
    return cls


def get_format(name: str) -> ArtifactFormat:
    """Return the registered format called name; FnxError listing them otherwise."""
    _load_builtin()
    if name not in FORMATS:
        raise FnxError(f"unknown format {name!r}; use one of {', '.join(FORMATS)} (or all)")
    return FORMATS[name]


def installed_formats() -> list[str]:
    """Return the registered formats whose converters are installed here (what `--format all` exports)."""
    import importlib.util

    _load_builtin()
    return [name for name, fmt in FORMATS.items()
            if all(importlib.util.find_spec(m) is not None for m in fmt.requires)]


def _load_builtin() -> None:
    from fnx.exporter.formats import onnx, openvino, tflite  # noqa: F401  (each registers itself)
    from fnx.plugins import load_targets

    load_targets()  # other distributions' targets (entry point group fnx.targets), after fnx's own


_load_builtin()
