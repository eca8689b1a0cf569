"""Deployment profiles: which format, precision and engine to use on each target device."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fnx.errors import FnxError
from fnx.formats import PRECISIONS, file_formats, target_format

Arch = Literal["aarch64", "x86_64", "armv7l"]

Accelerator = Literal["cpu", "cuda", "tensorrt"]  # a fnx.runtime.Placement kind; each engine maps it itself


@dataclass(frozen=True)
class DeviceProfile:
    """One target device: what to export (format, precision) and how to run it (engine, threads, accelerator)."""

    name: str
    description: str
    arch: Arch
    cores: int | None
    format: str  # a registered format (fnx.formats); the engine must run it (tests/test_devices.py checks)
    precision: str
    engine: str  # a registered engine (fnx.runtime.engines) name
    threads: int | None = None  # None: use every core this process may run on
    accelerator: Accelerator = "cpu"  # where the engine runs (TensorRT falls back to CUDA, then CPU, under auto)
    notes: str = ""
    # other (format, precision, engine) paths worth timing there (`fnx bench all` on the device ranks them)
    consider: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        for fmt, precision, _ in ((self.format, self.precision, self.engine), *self.consider):
            if fmt not in file_formats() or precision not in PRECISIONS:
                raise FnxError(f"profile {self.name}: format {fmt!r} / precision {precision!r} is not one of "
                               f"{', '.join(file_formats())} / {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as a JSON-ready dict."""
        return asdict(self)


def _int8_cpu(name: str, description: str, arch: Arch, cores: int | None, notes: str,
              consider: tuple[tuple[str, str, str], ...] = ()) -> DeviceProfile:
    return DeviceProfile(name, description, arch, cores, "tflite", "int8", "litert", threads=cores, notes=notes,
                         consider=consider)


# ncnn: users report it among the fastest CPU paths for small CNNs on a Pi (fnx has no ncnn int8: its fp32/fp16);
# ExecuTorch's XNNPACK int8: Arm's Pi 5 model cards use it (its runtime needs torch on the Pi)
PI_CONSIDER = (("ncnn", "fp16", "ncnn"), ("ncnn", "fp32", "ncnn"), ("executorch", "int8", "executorch"))


PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        _int8_cpu("rpi4", "Raspberry Pi 4 (Cortex-A72 x4)", "aarch64", 4,
                  "Use a 64-bit OS; int8 XNNPACK kernels are much faster than fp32 on the A72.", PI_CONSIDER),
        _int8_cpu("rpi5", "Raspberry Pi 5 (Cortex-A76 x4)", "aarch64", 4,
                  "The A76 has dot-product instructions, which int8 kernels use; and fp16 arithmetic, which ncnn "
                  "uses with --inference-precision f16.", PI_CONSIDER),
        DeviceProfile(
            "jetson-orin", "NVIDIA Jetson Orin (Ampere GPU, JetPack)", "aarch64", None, "onnx", "fp16",
            "onnxruntime", threads=None, accelerator="tensorrt",
            notes="Needs the JetPack onnxruntime-gpu wheel; TensorRT builds an engine on first run.",
        ),
        _int8_cpu("aarch64", "Generic ARM64 Linux CPU", "aarch64", None,
                  "Portable default for ARM boards without a dedicated profile."),
        _int8_cpu("x86", "x86_64 CPU", "x86_64", None,
                  "LiteRT int8 measured 3.6x faster than fp32 for FasterNet-T2 on x86."),
        DeviceProfile(
            "cuda", "NVIDIA GPU server (CUDA)", "x86_64", None, "onnx", "fp16", "onnxruntime",
            threads=None, accelerator="tensorrt",
            notes="Needs onnxruntime-gpu matching the installed CUDA; TensorRT is used only if installed.",
        ),
    )
}


def get_profile(name: str) -> DeviceProfile:
    """Return the profile called `name` (case-insensitive, '_' accepted for '-')."""
    key = name.strip().lower().replace("_", "-")
    if key not in PROFILES:
        raise FnxError(
            f"Unknown device {name!r}. Use one of: {', '.join(PROFILES)} "
            "(or run `fnx devices` to see which one this machine is)."
        )
    return PROFILES[key]


def check_target(name: str) -> None:
    """FnxError unless name is a device profile or a device a format's files are compiled for (what --target takes)."""
    if target_format(name) is None and name.strip().lower().replace("_", "-") not in PROFILES:
        compiled = "; ".join(f"{f.name}: {', '.join(f.targets)}" for f in file_formats().values() if f.targets)
        raise FnxError(f"unknown --target {name!r}: use a device profile ({', '.join(PROFILES)}; fnx devices)"
                       + (f", or a device a format compiles for ({compiled})" if compiled else ""))
