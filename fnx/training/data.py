"""Training and validation images for `fnx train`: decoded on first use, kept in memory within a budget, seeded
random crops that are the same whichever process (rank) or resumed run draws them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fnx.manifest import Preprocessing
from fnx.runtime.preprocess import load_image, preprocess

CACHE_BYTES = 4 << 30  # decoded images kept per process; beyond it, images are decoded again each epoch


class TrainImages(Dataset):
    """(CHW float tensor, class index) per item: resized for seeded random crops of `crop` pixels, or, without
    crop, the evaluation transform (center crop)."""

    def __init__(self, items: list[tuple[Path, int]], spec: Preprocessing, crop: int | None = None, seed: int = 0,
                 cache_bytes: int = CACHE_BYTES):
        self.items, self.crop, self.seed, self.epoch = items, crop, seed, 0
        self.spec = replace(spec, crop=spec.resize_short) if crop else spec
        side = self.spec.crop
        self.cache_limit = cache_bytes // max(1, 3 * 4 * side * side)
        self.cache: dict[int, torch.Tensor] = {}

    def set_epoch(self, epoch: int) -> None:
        """Crops of epoch e differ from those of other epochs, and are the same in every run with the same seed."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int) -> torch.Tensor:
        x = self.cache.get(i)
        if x is None:
            array = preprocess(load_image(self.items[i][0]), self.spec)
            x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
            if len(self.cache) < self.cache_limit:
                self.cache[i] = x
        return x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.image(i)
        if self.crop:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
            _, h, w = x.shape
            top = int(torch.randint(0, h - self.crop + 1, (1,), generator=g))
            left = int(torch.randint(0, w - self.crop + 1, (1,), generator=g))
            x = x[:, top : top + self.crop, left : left + self.crop]
        return x, self.items[i][1]
