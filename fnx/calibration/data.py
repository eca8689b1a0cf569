"""Calibration images: a recursive folder read, a seeded sample, the runtime's own preprocessing.

No silent fallback: the synthetic set is used only when asked for by name, and recorded as such.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.manifest import Preprocessing
from fnx.runtime.preprocess import list_images, load_image, preprocess

MIN_RECOMMENDED = 100
SYNTHETIC = "synthetic"


class FewCalibrationImagesWarning(UserWarning):
    """Fewer calibration images than recommended."""


@dataclass
class CalibrationSet:
    """Preprocessed NHWC float32 images for calibration, the held-out ones for the report, and what was read."""

    calib: np.ndarray
    held_out: np.ndarray
    held_out_labels: list[int | None]
    source: str
    found: int
    skipped: list[str] = field(default_factory=list)
    class_names: list[str] | None = None


def load_calibration(data: str | Path | None, spec: Preprocessing, size: int = 256, held_out: int = 64, seed: int = 0,
                     progress=None) -> CalibrationSet:
    """Return a CalibrationSet of `size` seeded images from a folder (or "synthetic"), plus held-out images.

    Unreadable files are skipped and counted; a missing or empty folder is an FnxError; fewer than
    100 usable images warns with the count.
    """
    if data is None:
        raise FnxError("int8 needs calibration images: pass --calib-data DIR (an image folder), or --calib-data synthetic "
                       "to calibrate on generated images (recorded in the manifest; accuracy is then unproven)")
    if str(data) == SYNTHETIC:
        from fnx.calibration.synthetic import synthetic_images

        images = synthetic_images(size + held_out, size=spec.resize_short, seed=seed)
        arr = np.stack([preprocess(im, spec) for im in images])
        return CalibrationSet(arr[:size], arr[size:], [None] * held_out, SYNTHETIC, len(images))
    folder = Path(data)
    paths = list_images(folder)
    if not paths:
        raise FnxError(f"calibration folder {folder} holds no images (jpg, jpeg, png, bmp, webp, searched recursively)")
    rng = random.Random(seed)
    order = paths[:]
    rng.shuffle(order)
    classes = sorted({p.parent.name for p in paths}) if any(p.parent != folder for p in paths) else None
    wanted = size + held_out
    kept, labels, skipped = [], [], []
    bar, task = progress if progress else (None, None)
    for p in order:
        if len(kept) >= wanted:
            break
        try:
            kept.append(preprocess(load_image(p), spec))
            labels.append(classes.index(p.parent.name) if classes else None)
        except FnxError:
            skipped.append(str(p))
        if bar is not None:
            bar.update(task, advance=1)
    if not kept:
        raise FnxError(f"none of the {len(paths)} image files under {folder} could be decoded; check the folder")
    if len(kept) < 2:
        raise FnxError(f"only {len(kept)} of the image files under {folder} could be decoded: calibration needs at least "
                       f"2 (some to calibrate on, some held out to check the result; {MIN_RECOMMENDED}+ recommended)")
    # as asked when the folder has enough images; else three quarters to calibrate on, a quarter held out
    n_held = held_out if len(kept) >= size + held_out else max(1, min(held_out, len(kept) // 4))
    n_cal = min(size, len(kept) - n_held)
    if n_cal < MIN_RECOMMENDED:
        warnings.warn(f"only {n_cal} usable calibration images in {folder} (>= {MIN_RECOMMENDED} recommended): int8 "
                      f"ranges may not cover real inputs", FewCalibrationImagesWarning, stacklevel=2)
    arr = np.stack(kept)
    # held-out images come first in the shuffled order's tail: never part of the calibration sample
    held = slice(n_cal, n_cal + n_held)
    return CalibrationSet(arr[:n_cal], arr[held], labels[held], str(folder), len(paths), skipped, classes)
