"""int8 calibration options, typed and checked when made (the CLI's `--calib-*`, `--io`, guard flags). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
INT8_IO = ("int8", "float")
# ONNX int8 graph forms (ONNX Runtime's quantize_static): activation x weight types, "r" = weights in 7 bits
# (reduce_range), which x86 CPUs without VNNI need for u8 x s8 not to saturate. Measured (docs/BENCHMARKS.md):
# qdq-u8s8r 1.3-1.66x faster than qdq-s8s8 on T0/T2; with VNNI qdq-u8s8 is as fast and more accurate.
ONNX_INT8_FORMS = {
    "qdq-u8s8r": "QDQ; activations uint8 asymmetric; weights int8 per-channel symmetric in 7 bits (reduce_range)",
    "qdq-u8s8": "QDQ; activations uint8 asymmetric; weights int8 per-channel symmetric",
    "qdq-s8s8": "QDQ; activations int8 asymmetric; weights int8 per-channel symmetric",
}
AUTO_FORM = "auto"  # the form for the CPU that runs it (fnx.targets.onnx.int8_form): qdq-u8s8 with VNNI or on ARM64
DEFAULT_ONNX_INT8_FORM = AUTO_FORM


@dataclass(frozen=True)
class Int8Options:
    """int8 calibration: where the images come from, how many, the method, the I/O type and the guard's bounds."""

    data: str | Path | None = None  # an image folder, or "synthetic"
    size: int = 256
    method: str = "minmax"
    io: str = "int8"
    min_cosine: float | None = None  # None: fnx.parity.BOUNDS["int8"]
    max_top1_drop: float | None = None
    onnx_form: str = DEFAULT_ONNX_INT8_FORM  # ONNX only: auto or one of ONNX_INT8_FORMS
    target: str | None = None  # a device profile (ONNX auto: the form is chosen for it; None: this machine), or a
    # device a format's files are compiled for (fnx.formats.FileFormat.targets: an Ethos-U configuration)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise FnxError(f"--calib-size must be at least 1, got {self.size}")
        if self.method not in CALIBRATION_METHODS:
            raise FnxError(f"unknown --calib-method {self.method!r}; use one of {', '.join(CALIBRATION_METHODS)}")
        if self.onnx_form != AUTO_FORM and self.onnx_form not in ONNX_INT8_FORMS:
            raise FnxError(f"unknown ONNX int8 form {self.onnx_form!r}; use auto or one of {', '.join(ONNX_INT8_FORMS)}")
        if self.target is not None:
            from fnx.devices.profiles import check_target

            check_target(self.target)  # an unknown device is refused when the options are made
        if self.io not in INT8_IO:
            raise FnxError(f"unknown --io {self.io!r}; use one of {', '.join(INT8_IO)}")
        if self.min_cosine is not None and not -1.0 <= self.min_cosine <= 1.0:
            raise FnxError(f"--min-cosine is a cosine similarity between -1 and 1, got {self.min_cosine}")
        if self.max_top1_drop is not None and self.max_top1_drop < 0:
            raise FnxError(f"--max-top1-drop is in points and cannot be negative, got {self.max_top1_drop}")
