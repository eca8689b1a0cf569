"""What an export was asked for: typed, frozen options (the CLI's flags, or the Python API's arguments). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fnx.calibration.options import Int8Options
from fnx.errors import FnxError
from fnx.formats import PRECISIONS


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

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise FnxError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.batch < 1:
            raise FnxError(f"--batch must be >= 1, got {self.batch}")
        if not self.formats:
            raise FnxError("no format asked for; use --format with one of the formats in `fnx export --help`")
