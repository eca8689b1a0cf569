"""Class names that ship with fnx: ImageNet-1k's, in the standard index order; torch-free.

The runtime shows these names (`tabby`, not `281`); `fnx eval` also matches class folders named by
WordNet ID (`n02123045/`, ImageNet's own validation layout) through the manifest's `class_ids`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

IMAGENET_1K_FILE = Path(__file__).parent / "data" / "imagenet1k_classes.tsv"
IMAGENET_1K_CLASSES = 1000


@dataclass(frozen=True)
class LabelSet:
    """A dataset's classes: a stable ID and a short unique display name per class index."""

    name: str
    ids: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


@functools.lru_cache(maxsize=1)
def imagenet_1k() -> LabelSet:
    """Return ImageNet-1k's 1000 classes (WordNet IDs and short names) from the file fnx ships."""
    rows = [line.split("\t") for line in IMAGENET_1K_FILE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    if len(rows) != IMAGENET_1K_CLASSES or any(len(r) != 3 for r in rows):
        raise RuntimeError(f"{IMAGENET_1K_FILE} is damaged: expected {IMAGENET_1K_CLASSES} rows of 3 columns; "
                           f"reinstall fnx")
    return LabelSet("imagenet-1k", tuple(r[0] for r in rows), tuple(r[1] for r in rows))
