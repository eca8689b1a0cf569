"""Where a Session runs: `--device` resolved to a neutral placement (kind + threads) that each engine maps itself."""

from __future__ import annotations

from dataclasses import dataclass

from fnx.errors import FnxError

KINDS = ("cpu", "cuda", "tensorrt")
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")  # OpenVINO's inference-precision hint; fnx's default is f32
CONSENT = "auto"  # --inference-precision auto: --device auto may take bf16/f16 where measured faster within bounds


@dataclass(frozen=True)
class Placement:
    """A device kind (cpu, cuda, tensorrt), a thread count (None: the engine's default), and whether to insist.

    strict=False (from `--device auto`) lets an engine fall back to the CPU when the kind is not
    available here; an explicit device insists and fails with what to install.
    """

    kind: str = "cpu"
    threads: int | None = None
    strict: bool = True
    inference_precision: str | None = None  # an engine's internal compute precision (OpenVINO's hint); None: f32

    def __post_init__(self) -> None:
        if self.inference_precision is not None and self.inference_precision not in INFERENCE_PRECISIONS:
            raise FnxError(f"unknown inference precision {self.inference_precision!r}; use one of "
                           f"{', '.join(INFERENCE_PRECISIONS)}")
        if self.kind not in KINDS:
            raise FnxError(f"unknown device kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.threads is not None and self.threads < 1:
            raise FnxError(f"--threads must be at least 1, got {self.threads}")


@dataclass(frozen=True)
class RunOptions:
    """How to run an artifact, passed whole from the CLI down to the Session (one record instead of four arguments
    threaded through every signature): where (`--device`), with how many threads, on which engine, in which compute
    precision (None: each one's default)."""

    device: str = "auto"
    threads: int | None = None
    engine: str | None = None
    inference_precision: str | None = None


def resolve_placement(device: str | None, threads: int | None = None,
                      inference_precision: str | None = None) -> Placement:
    """Return the Placement for --device: cpu, cuda, tensorrt, auto (this machine's profile) or a profile name."""
    from fnx.devices import PROFILES, detect, get_profile

    if threads is not None and threads < 1:
        raise FnxError(f"--threads must be at least 1, got {threads}")
    device = (device or "auto").strip().lower()
    if device in KINDS:
        return Placement(device, threads, inference_precision=inference_precision)
    if device == "auto":
        profile, strict = detect(), False
    elif device.replace("_", "-") in PROFILES:
        profile, strict = get_profile(device), True
    else:
        raise FnxError(f"unknown device {device!r}; use auto, {', '.join(KINDS)} or a profile: {', '.join(PROFILES)}")
    return Placement(profile.accelerator, threads if threads is not None else profile.threads, strict,
                     inference_precision)
