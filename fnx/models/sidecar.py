"""The sidecar beside a checkpoint written by `fnx train` (`X.pth` -> `X.json`): its model, labels and preprocessing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnx.errors import FnxError
from fnx.fileio import write_text_atomic
from fnx.manifest import Preprocessing
from fnx.records import Record, RecordError


@dataclass
class Sidecar(Record):
    """What a trained checkpoint needs to be exported or evaluated faithfully."""

    model: str
    num_classes: int
    img_size: int
    preprocessing: Preprocessing
    labels: list[str] | None = None
    val_acc: float | None = None
    epoch: int | None = None
    train_images: int | None = None
    options: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    extra: dict[str, Any] | None = None  # free-form facts about the run (test accuracy, timing, storage)


def sidecar_path(ckpt: Path) -> Path:
    """Return the JSON beside a checkpoint (`X.pth` -> `X.json`)."""
    return Path(ckpt).with_suffix(".json")


def read_sidecar(ckpt: Path | None) -> Sidecar | None:
    """Return the sidecar of a checkpoint written by `fnx train`, or None if it has none."""
    if ckpt is None:
        return None
    p = sidecar_path(ckpt)
    if not p.is_file():
        return None
    try:
        return Sidecar.from_dict(json.loads(p.read_text()), "sidecar")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecordError) as e:
        raise FnxError(f"the checkpoint sidecar {p} cannot be read ({e}); fix or delete it") from e


def write_sidecar(ckpt: Path, sidecar: Sidecar) -> Path:
    """Write sidecar beside ckpt atomically; returns its path."""
    return write_text_atomic(sidecar_path(ckpt), json.dumps(sidecar.to_dict(), indent=2) + "\n")
