"""The resumable state of a `fnx train` run (`runs/model.pth` -> `runs/model.last.pt`), written after every epoch."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from fnx.errors import FnxError
from fnx.fileio import atomic_path

STATE_FORMAT = "fnx.train-state/1"


def state_path(out: str | Path) -> Path:
    """Return where the run writing `out` keeps its last state: `X.pth` -> `X.last.pt`."""
    out = Path(out)
    return out.with_name(out.stem + ".last.pt")


@dataclass
class TrainState:
    """Everything an interrupted run needs to go on as if it had not stopped."""

    model_name: str
    classes: list[str]
    epoch: int  # epochs done
    best: float
    history: list[dict]
    options: dict[str, Any]
    data: str
    out: str
    model: dict
    optimizer: dict
    scheduler: dict

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"format": STATE_FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}, tmp)


def load_state(path: str | Path) -> TrainState:
    """Read a state written by `fnx train` (tensors and plain values only: nothing is unpickled as code)."""
    path = Path(path)
    if not path.is_file():
        raise FnxError(f"--resume {path}: no such file; a run writes its state beside the checkpoint "
                       f"(runs/model.pth -> runs/model.last.pt)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise FnxError(f"--resume {path} is not a training state fnx can read ({type(e).__name__}); pass the "
                       f".last.pt file a fnx train run wrote") from None
    if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
        raise FnxError(f"--resume {path} is not a fnx training state (expected format {STATE_FORMAT}); pass the "
                       f".last.pt file, not the best checkpoint")
    try:
        return TrainState(**{f.name: raw[f.name] for f in fields(TrainState)})
    except KeyError as e:
        raise FnxError(f"--resume {path} lacks {e.args[0]!r}: the file is damaged; start the run again") from None
