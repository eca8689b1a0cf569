"""Where a Session runs: `--device` resolved to a neutral placement (kind + threads) that each engine maps itself."""

from __future__ import annotations

from dataclasses import dataclass

from fnx.errors import FnxError

KINDS = ("cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class Placement:
    """A device kind (cpu, cuda, tensorrt), a thread count (None: the engine's default), and whether to insist.

    strict=False (from `--device auto`) lets an engine fall back to the CPU when the kind is not
    available here; an explicit device insists and fails with what to install.
    """

    kind: str = "cpu"
    threads: int | None = None
    strict: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FnxError(f"unknown device kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.threads is not None and self.threads < 1:
            raise FnxError(f"--threads must be at least 1, got {self.threads}")


def resolve_placement(device: str | None, threads: int | None = None) -> Placement:
    """Return the Placement for --device: cpu, cuda, tensorrt, auto (this machine's profile) or a profile name."""
    from fnx.devices import PROFILES, detect, get_profile

    if threads is not None and threads < 1:
        raise FnxError(f"--threads must be at least 1, got {threads}")
    device = (device or "auto").strip().lower()
    if device in KINDS:
        return Placement(device, threads)
    if device == "auto":
        profile, strict = detect(), False
    elif device.replace("_", "-") in PROFILES:
        profile, strict = get_profile(device), True
    else:
        raise FnxError(f"unknown device {device!r}; use auto, {', '.join(KINDS)} or a profile: {', '.join(PROFILES)}")
    return Placement(profile.accelerator, threads if threads is not None else profile.threads, strict)
