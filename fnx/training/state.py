"""The resumable state of a `fnx train` run (`runs/model.pth` -> `runs/model.last.pt`), written after every epoch."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fnx.errors import FnxError
from fnx.torch_records import read_record, save_record

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
        save_record(path, STATE_FORMAT, {f.name: getattr(self, f.name) for f in fields(self)})


def load_state(path: str | Path) -> TrainState:
    """Read a state written by `fnx train` (tensors and plain values only: nothing is unpickled as code)."""
    raw = read_record(path, STATE_FORMAT, "fnx training state", "a run writes its state beside the checkpoint "
                      "(runs/model.pth -> runs/model.last.pt)", "pass the .last.pt file a fnx train run wrote, not the "
                      "best checkpoint", prefix="--resume ")
    try:
        return TrainState(**{f.name: raw[f.name] for f in fields(TrainState)})
    except KeyError as e:
        raise FnxError(f"--resume {path} lacks {e.args[0]!r}: the file is damaged; start the run again") from None
