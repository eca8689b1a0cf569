"""Tagged torch files (a training state, QAT ranges): written atomically, read with weights_only and their tag checked."""

from __future__ import annotations

from pathlib import Path

import torch

from fnx.errors import FnxError
from fnx.fileio import atomic_path


def save_record(path: Path, tag: str, record: dict) -> None:
    """Write {"format": tag, **record} (tensors and plain values) atomically to path."""
    with atomic_path(path) as tmp:
        torch.save({"format": tag, **record}, tmp)


def read_record(path: str | Path, tag: str, label: str, missing_hint: str, foreign_hint: str, prefix: str = "") -> dict:
    """Return the record save_record wrote with tag at path: tensors and plain values only, nothing unpickled as code.

    FnxError naming what the file should be (label, e.g. "fnx training state"; prefix: the option it came from):
    missing_hint when it is absent, foreign_hint when it is unreadable or has another tag."""
    path = Path(path)
    if not path.is_file():
        raise FnxError(f"{prefix}{path}: no such file; {missing_hint}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise FnxError(f"{prefix}{path} is not a {label} fnx can read ({type(e).__name__}); {foreign_hint}") from None
    if not isinstance(raw, dict) or raw.get("format") != tag:
        raise FnxError(f"{prefix}{path} is not a {label} (expected format {tag}); {foreign_hint}")
    return raw
