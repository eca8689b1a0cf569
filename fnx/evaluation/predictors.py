"""What `fnx eval` scores: a PyTorch checkpoint (with its sidecar) or an exported artifact, behind one call."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from fnx.errors import FnxError
from fnx.manifest import Preprocessing
from fnx.runtime.placement import RunOptions

EVAL_RUN = RunOptions(device="cpu")  # evaluation runs on the CPU, each engine's default threads


class Predictor(Protocol):
    labels: list[str] | None
    class_ids: list[str] | None
    spec: Preprocessing
    layout: str
    kind: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def is_artifact(path: str | Path) -> bool:
    """True for an exported artifact (by suffix), False for a checkpoint."""
    from fnx.formats import file_formats

    return Path(path).suffix.lower() in {f.suffix for f in file_formats().values()}


def target_files(path: str | Path) -> list[Path]:
    """Every file a target needs beside it: an artifact's companions and manifest, a checkpoint's sidecar."""
    from fnx.formats import artifact_files

    path = Path(path)
    files = artifact_files(path) if is_artifact(path) else [path]
    side = path.with_suffix(".json")
    return files + [side] if side.is_file() and side not in files else files


class TorchPredictor:
    def __init__(self, path: Path):
        import torch

        from fnx.models import create_model
        from fnx.models.sidecar import read_sidecar

        side = read_sidecar(path)
        if side is None:
            raise FnxError(f"{path} has no sidecar naming its model ({path.with_suffix('.json')}); evaluate an export of it instead")
        self.torch = torch
        self.model = create_model(side.model, weights=str(path))
        self.labels, self.spec, self.layout, self.kind = side.labels, side.preprocessing, "NCHW", "pytorch fp32"
        self.class_ids = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(batch)).numpy()


class SessionPredictor:
    def __init__(self, path: Path, run: RunOptions):
        from fnx.runtime import load

        self.session = load(path, run=run)
        m = self.session.manifest
        self.labels, self.spec, self.layout = self.session.labels, self.session.preprocessing, self.session.layout
        self.class_ids = m.class_ids if m else None
        fmt, precision = (m.artifact.format, m.artifact.precision) if m else (path.suffix[1:], "unknown precision")
        self.kind = f"{fmt} {precision} ({self.session.engine_name})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(batch)[0]


def open_predictor(target: str | Path, run: RunOptions = EVAL_RUN) -> Predictor:
    """Return the predictor of a checkpoint or artifact (an artifact runs as `run` says); FnxError when missing."""
    target = Path(target)
    if not target.is_file():
        raise FnxError(f"{target} does not exist")
    if is_artifact(target):
        return SessionPredictor(target, run)
    return TorchPredictor(target)
