"""int8 calibration options, typed and checked when made (the CLI's `--calib-*`, `--io`, guard flags). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError

# how activation ranges are chosen; each format takes those its quantizer has (ArtifactFormat.calib_methods): minmax
# (the observed range), percentile (a high percentile of it), entropy (KL divergence of the distributions), mse (the
# range that minimizes the quantization's mean squared error)
CALIBRATION_METHODS = ("minmax", "percentile", "entropy", "mse")
INT8_IO = ("int8", "float")
AUTO_FORM = "auto"  # --int8-form auto: every candidate form measured here, the fastest within the bound kept
DEFAULT_FORM = "default"  # --int8-form default: each target's default form, nothing measured (the quickest export)


@dataclass(frozen=True)
class Int8Options:
    """int8 calibration: where the images come from, how many, the method, the I/O type and the guard's bounds."""

    data: str | Path | None = None  # an image folder, or "synthetic"
    size: int = 256
    method: str | None = None  # None: each format's default (the first of its ArtifactFormat.calib_methods)
    io: str = "int8"
    min_cosine: float | None = None  # None: fnx.parity.BOUNDS["int8"]
    max_top1_drop: float | None = None
    form: str = AUTO_FORM  # auto, or one of the int8 forms a target declares (ArtifactFormat.int8_forms)
    target: str | None = None  # a device profile whose rule chooses the form (None: measured on this machine), or a
    # device a format's files are compiled for (fnx.formats.FileFormat.targets: an Ethos-U configuration)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise FnxError(f"--calib-size must be at least 1, got {self.size}")
        if self.method is not None and self.method not in CALIBRATION_METHODS:
            raise FnxError(f"unknown --calib-method {self.method!r}; use one of {', '.join(CALIBRATION_METHODS)}")
        if not self.form or not isinstance(self.form, str):
            raise FnxError(f"--int8-form takes auto or a form's name, got {self.form!r}")
        if self.target is not None:
            from fnx.devices.profiles import check_target

            check_target(self.target)  # an unknown device is refused when the options are made
        if self.io not in INT8_IO:
            raise FnxError(f"unknown --io {self.io!r}; use one of {', '.join(INT8_IO)}")
        if self.min_cosine is not None and not -1.0 <= self.min_cosine <= 1.0:
            raise FnxError(f"--min-cosine is a cosine similarity between -1 and 1, got {self.min_cosine}")
        if self.max_top1_drop is not None and self.max_top1_drop < 0:
            raise FnxError(f"--max-top1-drop is in points and cannot be negative, got {self.max_top1_drop}")
