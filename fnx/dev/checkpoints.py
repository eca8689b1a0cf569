"""Lively random checkpoints: what tests, benchmarks and the ARM run export when no trained weights are at hand."""

from __future__ import annotations

import warnings
from pathlib import Path


def lively_model(name: str, num_classes: int = 1000, seed: int = 0):
    """Return a FasterNet (eval mode, BN not folded) with signal-preserving random weights, seeded."""
    import torch

    from fnx.models import create_model
    from fnx.models.init import lively

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lively(create_model(name, weights="random", num_classes=num_classes)).eval()


def write_lively_checkpoint(name: str, path: Path, num_classes: int = 1000, seed: int = 0) -> Path:
    """Write lively_model's state dict to path (atomically; what `--weights PATH` takes) unless it is there."""
    import torch

    from fnx.fileio import atomic_path

    path = Path(path)
    if not path.is_file():
        with atomic_path(path) as tmp:
            torch.save(lively_model(name, num_classes, seed).state_dict(), tmp)
    return path
