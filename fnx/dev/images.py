"""Photo-sized JPEGs for end-to-end benchmarks and tests: natural-looking content at 1080p or 12 MP, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZES = {"1080p": (1920, 1080), "12mp": (4032, 3024)}


def write_jpegs(folder: Path, n: int, size: tuple[int, int] = SIZES["1080p"], quality: int = 90, seed: int = 0) -> list[Path]:
    """Write n JPEGs of size (w, h) into folder (reused when already there); returns their paths."""
    from PIL import Image

    from fnx.calibration.synthetic import synthetic_images

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    paths = []
    bases = synthetic_images(min(n, 16), size=512, seed=seed)
    for i in range(n):
        path = folder / f"img{i:04d}_{w}x{h}.jpg"
        paths.append(path)
        if path.is_file():
            continue
        big = np.asarray(Image.fromarray(bases[i % len(bases)]).resize((w, h), Image.BICUBIC), dtype=np.int16)
        grain = rng.integers(-12, 13, size=(-(-h // 4), -(-w // 4), 1), dtype=np.int16).repeat(4, 0).repeat(4, 1)[:h, :w]
        Image.fromarray(np.clip(big + grain, 0, 255).astype(np.uint8)).save(path, quality=quality)
    return paths
