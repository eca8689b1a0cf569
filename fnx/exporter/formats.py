"""Export formats: the `ArtifactFormat` base class and the FORMATS registry (importing this is torch-free).

A format converts the deploy-form PyTorch model to its file (fp32/fp16) and gives the calibration library a Quantizer
for its int8 path. It lives in its target package (`fnx.targets.NAME.export`) beside its file facts and its engine.
To add one: subclass `ArtifactFormat`, set its facts, implement `export_float` (and what else it offers), decorate it
with `register_format`. The base class carries every default; what a format does not offer is None and refused by
`check` in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from fnx.calibration.forms import DEFAULT_FORMS, Int8Form
from fnx.errors import FnxError
from fnx.formats import PRECISIONS, FileFormat
from fnx.install import pip_install
from fnx.targets import in_target_order

if TYPE_CHECKING:
    import torch

    from fnx.exporter.build import BuiltModel
    from fnx.exporter.options import ExportOptions
    from fnx.models.variants import Variant
    from fnx.toolchains import Toolchain

# Optional capabilities, None where a format lacks them (the callers say which formats have them):
#   int8_quantizer(model, built, opts, data, work) -> Quantizer: int8 from calibration images (None: no int8 here)
#   qat_quantizer(model, built, opts, data, work) -> Quantizer: int8 of the fake-quant ranges `fnx train --qat` learned
#   file_quantizer(fp32_path, data, options) -> Quantizer: int8 from an fp32 file of this format (`fnx quantize`)
#   layer_tensors(path, batch_nhwc) -> {layer name: its output, NCHW}: intermediate tensors read from the file
#   compile(path, opts) -> fnx.compilation.Compilation: rewrite the verified artifact at path, in place, as an
#     accelerator's file (an NPU compiler); its parity stays that of the verified file, which the record names
#   simulate(path, batch_nhwc) -> [outputs]: the outputs of an artifact no fnx engine runs, from its vendor's
#     simulator; the guard and the parity check judge those (fnx.exporter.checks.artifact_outputs)
Capability = Callable[..., Any] | None


class ArtifactFormat:
    """How fnx writes one artifact format. Subclasses set the four facts and implement `export_float`."""

    name: ClassVar[str]
    file: ClassVar[FileFormat]
    converters: ClassVar[tuple[str, ...]]  # distributions whose versions the manifest records
    pconv_form: ClassVar[str] = "split_cat"  # the PConv form that converts best to it (benchmarks/pconv_forms.py)
    stem_form: ClassVar[str] = "conv"  # the stem's form that runs best on it (fnx.exporter.stem_form)
    requires: ClassVar[tuple[str, ...]] = ()  # modules the converter imports (what `--format all` checks)
    install: ClassVar[str] = pip_install("export")  # what to install for `requires`
    gelu_note: ClassVar[str | None] = None  # what int8 means for the GELU variants on its engines
    # The int8 forms it writes (`--int8-form NAME`; `auto` measures those marked auto and keeps the fastest within the
    # bound); the first is its default. Its int8 quantizer writes the form set on its `form` attribute.
    int8_forms: ClassVar[tuple[Int8Form, ...]] = DEFAULT_FORMS
    int8_gelu_forms: ClassVar[bool] = False  # auto also measures each form with GELU as x*sigmoid(1.702x) (T0/T1)
    float_precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")  # the float precisions it exports
    # the --calib-method values its int8 quantizer honours; the first is its default
    calib_methods: ClassVar[tuple[str, ...]] = ("minmax",)
    # where the guard has no layer to return to float (an NPU target): with --calib-method unset, a default that misses
    # the bound is followed by its other calib_methods, in order, before the export is refused
    calib_fallback: ClassVar[bool] = False
    layers_absent: ClassVar[str] = ""  # without layer_tensors: why its files expose no intermediate tensors
    # the isolated environment its converter runs in (fnx.toolchains), where its pins conflict with fnx's: `fnx export`
    # creates it on first use, once the options are checked and before the model is built
    toolchain: ClassVar[Toolchain | None] = None
    int8_quantizer: Capability = None
    qat_quantizer: Capability = None
    file_quantizer: Capability = None
    layer_tensors: Capability = None
    compile: Capability = None
    simulate: Capability = None

    def export_float(self, model: torch.nn.Module, path: Path, built: BuiltModel, opts: ExportOptions) -> None:
        """Write model (deploy form, NCHW) to path at opts.precision (fp32 or fp16)."""
        raise NotImplementedError

    def wrap_io(self, model: torch.nn.Module) -> torch.nn.Module:
        """Return the module as the converter sees it (TFLite: NHWC in and out); default: itself."""
        return model

    def makes(self, precision: str) -> bool:
        """Whether it exports at precision (int8: where it has an int8 path)."""
        return precision in self.float_precisions or (precision == "int8" and self.int8_quantizer is not None)

    def check(self, opts: ExportOptions, variant: Variant | None = None) -> None:
        """Refuse, with what to use instead, the options this format cannot honour: the generic refusals (a
        precision it has no path for), then its own (`refuse`), then the model where one is given (`refuse_variant`)."""
        if not self.makes(opts.precision):
            takers = ", ".join(f.name for f in FORMATS.values() if f.makes(opts.precision))
            absent = self.int8_absent_reason() if opts.precision == "int8" else ""
            raise FnxError(f"{self.name} has no {opts.precision} export in fnx{absent}: export {opts.precision} as "
                           f"{takers}, or {self.name} at {'/'.join(p for p in PRECISIONS if self.makes(p))}")
        if opts.precision == "int8":
            self.check_calib_method(opts.int8.method)
        if opts.dynamic_batch and not self.file.dynamic_batch:
            takers = " and ".join(f.file.description.split()[0] for f in FORMATS.values() if f.file.dynamic_batch)
            raise FnxError(f"--dynamic-batch applies to {takers}; fnx's runtime runs a {self.name} artifact on any "
                           f"number of inputs in chunks of its batch")
        self.refuse(opts)
        if variant is not None:
            self.refuse_variant(variant, opts)

    def check_calib_method(self, method: str | None) -> None:
        """FnxError naming the methods it takes for a --calib-method its int8 quantizer lacks (None: its default)."""
        if method is not None and method not in self.calib_methods:
            raise FnxError(f"--calib-method {method} has no counterpart in {self.name}'s int8 quantizer: use "
                           f"{' or '.join(self.calib_methods)}")

    def calib_methods_to_try(self, asked: str | None) -> tuple[str, ...]:
        """The --calib-method values the int8 path tries, in order: the one asked, else its default (and, with
        calib_fallback, its others after it)."""
        if asked is not None:
            return (asked,)
        return self.calib_methods if self.calib_fallback else self.calib_methods[:1]

    def refuse(self, opts: ExportOptions) -> None:
        """FnxError for an option this format cannot honour (beyond the generic ones); default: none."""

    def refuse_variant(self, variant: Variant, opts: ExportOptions) -> None:
        """FnxError for a variant its device cannot hold, from the variant's table alone (before anything is built
        or installed); default: none."""

    def int8_form_rule(self, target: str) -> tuple[str, str]:
        """Return (form, why) for the device profile `target` (`--target`), whose speed this machine cannot measure;
        default: its first form."""
        return self.int8_forms[0].name, f"{self.name}'s default int8 form (--target: this machine is not the one to time)"

    def int8_absent_reason(self) -> str:
        """Why there is no int8 path (appended to the refusal, e.g. " (its tools are not on any package index)")."""
        return ""


FORMATS: dict[str, ArtifactFormat] = {}

REQUIRED_FACTS = ("name", "file", "converters")


def register_format(cls: type[ArtifactFormat]) -> type[ArtifactFormat]:
    """Add a format class (instantiated once) to the registry; returns the class. TypeError for a class that is not
    an ArtifactFormat, lacks one of its facts or does not implement export_float."""
    if not (isinstance(cls, type) and issubclass(cls, ArtifactFormat)):
        raise TypeError(f"{cls!r} is not an ArtifactFormat subclass (fnx.exporter.formats.ArtifactFormat)")
    missing = [m for m in REQUIRED_FACTS if not hasattr(cls, m)]
    if cls.export_float is ArtifactFormat.export_float:
        missing.append("export_float")
    if missing:
        raise TypeError(f"{cls.__name__!r} lacks {', '.join(missing)} (fnx's ArtifactFormat)")
    FORMATS[cls.name] = cls()
    in_target_order(FORMATS, lambda fmt: type(fmt).__module__)
    return cls


def get_format(name: str) -> ArtifactFormat:
    """Return the registered format called name; FnxError listing them otherwise."""
    _load()
    if name not in FORMATS:
        raise FnxError(f"unknown format {name!r}; use one of {', '.join(FORMATS)} (or all)")
    return FORMATS[name]


def installed_formats() -> list[str]:
    """Return the registered formats whose converters are installed here (what `--format all` exports)."""
    import importlib.util

    _load()
    return [name for name, fmt in FORMATS.items()
            if all(importlib.util.find_spec(m) is not None for m in fmt.requires)]


def _load() -> None:
    from fnx.targets import load

    load("export")  # every target's export module registers its format (fnx's own, then other distributions')


_load()
