"""Labelled image folders (`DIR/<class>/<image>`), read the same way by `fnx train`, `fnx eval` and calibration. Torch-free."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.preprocess import IMAGE_SUFFIXES, list_images


@dataclass
class ImageFolder:
    """The classes (sorted non-hidden subfolders holding images) and the (path, class index) items of a folder."""

    root: Path
    classes: list[str]
    items: list[tuple[Path, int]]


def image_folder(root: str | Path, min_classes: int = 1, what: str = "this command") -> ImageFolder:
    """Return the labelled images under root; FnxError for loose images, too few classes or no images at all.

    Empty class folders are left out with a warning (they are not classes the model can learn or be scored on).
    """
    root = Path(root)
    paths = list_images(root)
    if not paths:
        raise FnxError(f"{root} holds no images ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}, searched "
                       f"recursively, hidden files skipped)")
    loose = [p for p in paths if p.parent == root]
    if loose:
        raise FnxError(f"{len(loose)} image(s) lie directly in {root} (e.g. {loose[0].name}): {what} needs each image "
                       f"in its class folder, {root}/<class>/<image>")
    classes = sorted({p.relative_to(root).parts[0] for p in paths})
    empty = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in classes)
    if empty:
        warnings.warn(f"class folder(s) without images left out: {', '.join(empty)}", UserWarning, stacklevel=2)
    if len(classes) < min_classes:
        raise FnxError(f"{root} has {len(classes)} class folder(s) with images ({', '.join(classes)}): {what} needs at "
                       f"least {min_classes}")
    index = {c: i for i, c in enumerate(classes)}
    return ImageFolder(root, classes, [(p, index[p.relative_to(root).parts[0]]) for p in paths])


def class_index(folder: ImageFolder, labels: list[str] | None, class_ids: list[str] | None = None) -> np.ndarray:
    """Return, per class folder, the model's class index: folders matched by class ID first (ImageNet's
    `n01440764/` layout), then by label; FnxError naming the first folder the model does not know."""
    return class_index_of(folder.classes, labels, class_ids)


def class_index_of(classes: list[str], labels: list[str] | None, class_ids: list[str] | None = None) -> np.ndarray:
    """class_index for class folder names (a model without labels takes the folder names themselves, sorted)."""
    names = [list(class_ids or []), list(labels or classes)]
    keys = next((n for n in names if n and all(c in n for c in classes)), None)
    if keys is None:
        known = names[1] if not names[0] else names[0]
        missing = next(c for c in classes if c not in known)
        raise FnxError(f"class folder {missing!r} is not among the model's classes ({', '.join(known[:6])}, ...): "
                       f"name each folder by a class {'ID or ' if names[0] else ''}label of the model")
    return np.array([keys.index(c) for c in classes], dtype=np.int64)
