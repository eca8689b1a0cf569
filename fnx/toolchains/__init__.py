"""Isolated toolchains: a converter whose pins conflict with fnx's (an NPU vendor's SDK pinning torch, numpy or onnx)
runs in a virtual environment fnx creates on first use and keeps per machine, keyed by its pinned requirements, and
is handed files by path (`run`). Torch-free.

A target declares its toolchain with `register_toolchain(Toolchain(...))`; `fnx toolchains` lists, creates and removes
them. Each environment stays lean: when the requirements name torch, pip is held to the CPU build of this machine's
torch (what `pip install torch==X` takes from the local disk here), so no CUDA build is pulled as a side effect; a
toolchain that cannot run without another torch says so (`torch`), with its size and install time, and must be
created on purpose.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError

MARKER = "fnx-toolchain.json"  # written last: an environment without it is incomplete, never used


@dataclass(frozen=True)
class Toolchain:
    """A pinned environment for one converter: its name, what it is for and its pip requirements."""

    name: str
    purpose: str
    requirements: tuple[str, ...]
    torch: str | None = None  # a torch the toolchain needs other than this machine's (e.g. "2.4.0, CUDA build, 5.6 GB)
    # installed first without their declared dependencies (a vendor wheel pinning a torch it does not need for the
    # path fnx takes); what they do need is then in requirements
    no_deps: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A short hash of what makes the environment: requirements, Python version, machine."""
        made_of = json.dumps([sorted(self.requirements), sys.version_info[:2], platform.machine(), self.torch,
                              *([sorted(self.no_deps)] if self.no_deps else [])])
        return hashlib.sha256(made_of.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return toolchains_root() / f"{self.name}-{self.key}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def ready(self) -> bool:
        return (self.path / MARKER).is_file() and self.python.exists()

    def state(self) -> str:
        """ready, incomplete (a creation was interrupted: `fnx toolchains create` starts it again) or absent."""
        return "ready" if self.ready else "incomplete" if self.path.exists() else "absent"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file() and not p.is_symlink())


TOOLCHAINS: dict[str, Toolchain] = {}


def toolchains_root() -> Path:
    """Where the environments live: $FNX_TOOLCHAINS_DIR, else fnx's cache (they are large, and one per machine can
    serve several caches and checkouts)."""
    import os

    from fnx.fileio import cache_root

    return Path(os.environ.get("FNX_TOOLCHAINS_DIR") or cache_root() / "toolchains")


def register_toolchain(toolchain: Toolchain) -> Toolchain:
    """Add (or replace) a toolchain; returns it."""
    TOOLCHAINS[toolchain.name] = toolchain
    return toolchain


def registered_toolchains() -> dict[str, Toolchain]:
    """Return every target's toolchain by name (each target package's `toolchain` module registers its own)."""
    from fnx.targets import load

    load("toolchain")
    return TOOLCHAINS


def get_toolchain(name: str) -> Toolchain:
    """Return the toolchain called name; FnxError listing the known ones otherwise."""
    if name not in registered_toolchains():
        known = ", ".join(TOOLCHAINS) or "none registered"
        raise FnxError(f"unknown toolchain {name!r} ({known}): fnx toolchains lists them")
    return TOOLCHAINS[name]
