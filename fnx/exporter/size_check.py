"""An export at another input size than the weights were trained at: said at export, and measured where --data
holds labelled images (a 64-px digits model exported at 128 px passed parity and scored 29% instead of 99%)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from fnx.errors import FnxError
from fnx.manifest import Preprocessing

MAX_MEASURED_IMAGES = 256  # a seeded sample: seconds on a T0, enough to tell 99% from 29%


class InputSizeWarning(UserWarning):
    """The export's input size differs from the size the weights were trained at."""


def warn_if_resized(built, data: Path | None) -> None:
    """Warn when built.img_size differs from the size its weights were trained at; where data is a labelled folder
    of the model's classes, measure PyTorch top-1 at both sizes and say it."""
    trained = built.trained_img_size
    if trained is None or trained == built.img_size:
        return
    measured = _top1_at_sizes(built, data, (trained, built.img_size)) if data is not None else None
    said = (f"the weights were trained at {trained} px ({built.trained_img_size_source}) and this export takes "
            f"{built.img_size} px: objects then cover other numbers of pixels than the model learned, and accuracy can "
            f"drop sharply although parity holds (parity compares the file with PyTorch at the same size). ")
    if measured is not None:
        said += (f"Measured on {measured['images']} labelled images of --data: top-1 {100 * measured[trained]:.2f}% at "
                 f"{trained} px, {100 * measured[built.img_size]:.2f}% at {built.img_size} px. ")
    else:
        said += "Pass --data with labelled class folders to measure it. "
    said += f"Export at {trained} px (leave --img-size out), or fine-tune at {built.img_size} px first (fnx train)."
    warnings.warn(InputSizeWarning(said), stacklevel=2)


def _top1_at_sizes(built, data: Path, sizes: tuple[int, ...]) -> dict | None:
    """Return {size: PyTorch top-1, "images": n} on data's labelled images; None if data is not a labelled folder of
    the model's classes (then there is nothing to score against)."""
    from fnx.imagefolder import class_index, image_folder
    from fnx.runtime.preprocess import preprocess

    if not built.has_logits:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = image_folder(data)
            to_model = class_index(folder, built.labels, built.class_ids)
    except FnxError:
        return None
    items = folder.items
    if len(items) > MAX_MEASURED_IMAGES:
        pick = np.random.default_rng(0).choice(len(items), MAX_MEASURED_IMAGES, replace=False)
        items = [items[i] for i in sorted(pick)]
    truth = np.array([to_model[c] for _, c in items])
    out: dict = {"images": len(items)}
    for size in sizes:
        spec: Preprocessing = built.preprocessing.resized(size)
        hits = 0
        for start in range(0, len(items), 32):
            batch = np.stack([preprocess(p, spec) for p, _ in items[start : start + 32]])
            with torch.no_grad():
                logits = built.model(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()))
            hits += int((logits.argmax(1).numpy() == truth[start : start + 32]).sum())
        out[size] = hits / len(items)
    return out
