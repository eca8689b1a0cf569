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
from fnx.imagefolder import class_index_of
from fnx.manifest import Preprocessing
from fnx.runtime.preprocess import list_images, load_image, preprocess

MIN_RECOMMENDED = 100
SYNTHETIC = "synthetic"


class SkippedImagesWarning(UserWarning):
    """Calibration files that could not be decoded were left out."""


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


def check_calibration_source(data: str | Path | None, needs_labels: bool = False) -> None:
    """Raise FnxError for a calibration source that cannot serve, by listing files only (no decoding): none given,
    a missing or empty folder, or, when the guard bounds top-1 (needs_labels), no class subfolders. Commands call it
    before building or exporting anything."""
    if data is None:
        raise FnxError("int8 needs calibration images: pass --calib-data DIR (an image folder), or --calib-data synthetic "
                       "to calibrate on generated images (recorded in the manifest; accuracy is then unproven)")
    need = ("--max-top1-drop needs labelled calibration data: an image folder with one subfolder per class (the "
            "model's class names); drop --max-top1-drop to guard on cosine alone")
    if str(data) == SYNTHETIC:
        if needs_labels:
            raise FnxError(f"--calib-data synthetic has no labels: {need}")
        return
    folder = Path(data)
    paths = list_images(folder)
    if not paths:
        raise FnxError(f"calibration folder {folder} holds no images (jpg, jpeg, png, bmp, webp, searched recursively)")
    if needs_labels and all(p.parent == folder for p in paths):
        raise FnxError(f"calibration folder {folder} has no class subfolders: {need}")


def check_calibration_classes(data: str | Path, labels: list[str] | None, class_ids: list[str] | None) -> None:
    """For --max-top1-drop: raise FnxError, by listing files only, unless every class folder of data is a class of
    the model (called right after the build, before any export or calibration)."""
    folder = Path(data)
    classes = sorted({p.parent.name for p in list_images(folder) if p.parent != folder})
    calibration_classes(classes, labels, class_ids, needs_labels=True)


def calibration_classes(classes: list[str], labels: list[str] | None, class_ids: list[str] | None,
                        needs_labels: bool) -> dict[str, int] | None:
    """Return {class folder: the model's class index}, or None when the folders are not the model's classes (an
    FnxError naming the first unknown folder when the guard needs labels)."""
    try:
        return dict(zip(classes, class_index_of(classes, labels, class_ids).tolist()))
    except FnxError as e:
        if needs_labels:
            raise FnxError(f"--max-top1-drop: {e}") from e
        return None


def load_calibration(data: str | Path | None, spec: Preprocessing, size: int = 256, held_out: int = 64, seed: int = 0,
                     progress=None, labels: list[str] | None = None, class_ids: list[str] | None = None,
                     needs_labels: bool = False) -> CalibrationSet:
    """Return a CalibrationSet of `size` seeded images from a folder (or "synthetic"), plus held-out images.

    Unreadable files are skipped and counted; a missing or empty folder is an FnxError; fewer than
    100 usable images warns with the count. Class subfolders label the held-out images with the model's class
    index (labels / class_ids, as `fnx eval` matches them); folders the model does not know leave the images
    unlabelled (no top-1 in the report), or are an FnxError when needs_labels (--max-top1-drop).
    """
    check_calibration_source(data)
    if str(data) == SYNTHETIC:
        from fnx.calibration.synthetic import synthetic_images

        images = synthetic_images(size + held_out, size=spec.resize_short, seed=seed)
        if progress:
            progress[0].update(progress[1], total=len(images), completed=len(images))
        arr = np.stack([preprocess(im, spec) for im in images])
        return CalibrationSet(arr[:size], arr[size:], [None] * held_out, SYNTHETIC, len(images))
    folder = Path(data)
    paths = list_images(folder)
    rng = random.Random(seed)
    order = paths[:]
    rng.shuffle(order)
    classes = sorted({p.parent.name for p in paths}) if any(p.parent != folder for p in paths) else None
    index = calibration_classes(classes, labels, class_ids, needs_labels) if classes else None
    wanted = size + held_out
    kept, found, skipped = [], [], []
    bar, task = progress if progress else (None, None)
    if bar is not None:  # the files it will read: as many as wanted, one more for each that cannot be decoded
        bar.update(task, total=min(wanted, len(paths)))
    for p in order:
        if len(kept) >= wanted:
            break
        try:
            kept.append(preprocess(load_image(p), spec))
            found.append(index.get(p.parent.name) if index else None)  # a loose image beside the folders: unlabelled
        except FnxError:
            skipped.append(str(p))
        if bar is not None:
            bar.update(task, advance=1, total=min(wanted + len(skipped), len(paths)))
    if skipped:
        more = f" and {len(skipped) - 3} more (the manifest lists up to 20)" if len(skipped) > 3 else ""
        warnings.warn(SkippedImagesWarning(f"{len(skipped)} file(s) under {folder} could not be decoded and were left "
                                           f"out of calibration: {', '.join(skipped[:3])}{more}"), stacklevel=2)
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
    return CalibrationSet(arr[:n_cal], arr[held], found[held], str(folder), len(paths), skipped, classes)
