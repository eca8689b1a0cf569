"""The demo data set: scikit-learn's bundled handwritten digits (real scans), rendered as an image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.fileio import write_text_atomic

SPLITS = ("train", "val", "test")
RENDER_SIZE = 72  # the preprocessing resizes the short side to floor(64 / 0.9) = 71, then crops 64


def split_of(index: int) -> str:
    """Return the fixed split of sample `index`: 3/5 train, 1/5 val, 1/5 test."""
    return {0: "test", 1: "val"}.get(index % 5, "train")


def build_digits(root: str | Path, size: int = RENDER_SIZE) -> Path:
    """Write the 1,797 digits as `root/{train,val,test}/<digit>/<index>.png` (once; deterministic); returns root."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise FnxError("the demo data set needs scikit-learn: pip install scikit-learn") from e
    from PIL import Image

    root = Path(root)
    done = root / ".complete"
    if done.is_file():
        return root
    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / split_of(i) / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        gray = (np.asarray(img) / 16.0 * 255).astype(np.uint8)
        Image.fromarray(gray).resize((size, size), Image.BICUBIC).convert("RGB").save(folder / f"{i:04d}.png")
    write_text_atomic(done, f"{len(digits.images)} images\n")
    return root


def digits_subset(digits: str | Path, dest: str | Path, per_class: dict[str, int]) -> Path:
    """Copy the first per_class[split] images of each class of a build_digits folder to dest (small, fast runs)."""
    import shutil

    digits, dest = Path(digits), Path(dest)
    for split, n in per_class.items():
        for cls in sorted((digits / split).iterdir()):
            (dest / split / cls.name).mkdir(parents=True, exist_ok=True)
            for p in sorted(cls.iterdir())[:n]:
                shutil.copy(p, dest / split / cls.name / p.name)
    return dest
