"""A fixed set of natural-looking synthetic images (smooth gradients, shapes, 1/f texture); numpy only.

Used for parity checks when the user gives no images, and for `--calib-data synthetic` (which
must be asked for by name and is recorded as such).
"""

from __future__ import annotations

import numpy as np


def _pink_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a size x size field with a 1/f spectrum (the statistics of natural images), in [0, 1]."""
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))) / radius
    field = np.real(np.fft.ifft2(spectrum))
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def synthetic_images(n: int = 16, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Return n deterministic HxWx3 uint8 RGB images of size x size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        img = c0 + (c1 - c0) * ramp[..., None]
        for _ in range(rng.integers(2, 6)):
            cy, cx, ry, rx = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1 if rng.random() < 0.5 else \
                (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
            img[mask] = rng.uniform(0, 1, 3) * 0.8 + 0.2 * img[mask]
        texture = np.stack([_pink_noise(rng, size) for _ in range(3)], -1)
        img = 0.75 * img + 0.25 * texture
        images.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return images
