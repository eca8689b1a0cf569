"""What an export was asked for: typed, frozen options (the CLI's flags, or the Python API's arguments). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from fnx.calibration.options import Int8Options
from fnx.errors import FnxError
from fnx.formats import PRECISIONS, FileFormat, target_format

GELU_FORMS = ("exact", "sigmoid")  # how a GELU variant's GELU is written (fnx.exporter.gelu_form)


@dataclass(frozen=True)
class ExportOptions:
    """What `fnx export` was asked for."""

    formats: tuple[str, ...] = ("tflite",)
    precision: str = "fp32"
    weights: str | None = None  # None: the default-weights policy (fnx.models.weights.default_weights)
    num_classes: int | None = None
    img_size: int | None = None
    batch: int = 1
    dynamic_batch: bool = False
    opset: int = 20
    out_dir: Path = Path("exports")
    data: Path | None = None
    verify: bool = True
    features: bool = False  # export the backbone (the model's feature_info outputs) instead of the classifier
    int8: Int8Options = field(default_factory=Int8Options)
    from_qat: Path | None = None  # int8 from a `fnx train --qat` checkpoint: its weights, and its ranges where the format takes them
    gelu_form: str = "exact"  # int8 of a GELU variant: "sigmoid" writes x * sigmoid(1.702 x) (fnx.exporter.gelu_form)


    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise FnxError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.batch < 1:
            raise FnxError(f"--batch must be >= 1, got {self.batch}")
        if not self.formats:
            raise FnxError("no format asked for; use --format with one of the formats in `fnx export --help`")
        if self.gelu_form not in GELU_FORMS:
            raise FnxError(f"unknown --gelu-form {self.gelu_form!r}; use one of {', '.join(GELU_FORMS)}")
        if self.gelu_form != "exact" and self.precision != "int8":
            raise FnxError(f"--gelu-form {self.gelu_form} is for int8 engines without an int8 GELU; a {self.precision} "
                           f"export keeps the exact GELU (leave --gelu-form out)")
        if self.from_qat is not None:
            self._check_from_qat()

    def seen_by(self, file: FileFormat, precision: str) -> "ExportOptions":
        """Return the options as one format sees them: at precision, with --target only where it names its device (a
        format compiled for devices of its own sees only those; the others, only the device profiles)."""
        target = self.int8.target
        owner = target_format(target) if target is not None else None
        if target is None or owner is file or (owner is None and not file.targets):
            return replace(self, precision=precision)
        return replace(self, precision=precision, int8=replace(self.int8, target=None))

    def _check_from_qat(self) -> None:
        if self.precision != "int8":
            raise FnxError(f"--from-qat makes int8 artifacts, and --precision is {self.precision}: add --precision int8 "
                           f"(for the QAT model's float weights in {self.precision}, use --weights {self.from_qat})")
        if self.features:
            raise FnxError("--from-qat exports the classifier QAT trained; it has no --features form")
        if self.gelu_form != "exact":
            raise FnxError("--from-qat converts the graph QAT trained, with its exact GELU: leave out --gelu-form")
        if self.weights is not None and Path(self.weights) != Path(self.from_qat):
            raise FnxError(f"--from-qat {self.from_qat} brings its own weights: leave out --weights {self.weights}")
        object.__setattr__(self, "weights", str(self.from_qat))  # the QAT run's float weights (official layout)
