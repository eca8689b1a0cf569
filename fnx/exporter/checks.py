"""What parity checks run on: verification images, the PyTorch reference, an artifact through the runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fnx.errors import FnxError
from fnx.manifest import Preprocessing, TensorSpec

N_VERIFY_IMAGES = 16


def verification_images(data: Path | None, preprocessing: Preprocessing, limit: int = 64) -> tuple[np.ndarray, str]:
    """Return an NHWC float batch for parity checks (the user's images, else fixed synthetic ones) and its source."""
    from fnx.calibration.synthetic import synthetic_images
    from fnx.runtime.preprocess import list_images, preprocess

    if data is not None:
        paths = list_images(data)
        if not paths:
            raise FnxError(f"--data {data} holds no images (jpg, jpeg, png, bmp, webp)")
        step = max(1, len(paths) // limit)
        paths = paths[::step][:limit]
        return np.stack([preprocess(p, preprocessing) for p in paths]), f"{len(paths)} images from {data}"
    images = synthetic_images(N_VERIFY_IMAGES, size=preprocessing.resize_short)
    return np.stack([preprocess(im, preprocessing) for im in images]), f"{N_VERIFY_IMAGES} synthetic images (seed 0)"


def reference_outputs(model: torch.nn.Module, batch_nhwc: np.ndarray) -> list[np.ndarray]:
    """Return the PyTorch fp32 outputs for an NHWC batch, as a list."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))))
    return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else [out.numpy()]


def run_artifact(path: Path, batch_nhwc: np.ndarray, layout: str, threads: int | None = None,
                 device: str = "cpu") -> list[np.ndarray]:
    """Return an artifact's float outputs for an NHWC batch through fnx's runtime Session (on device)."""
    from fnx.runtime import Session
    from fnx.runtime.preprocess import to_layout

    return Session(path, device=device, threads=threads).run(to_layout(batch_nhwc, layout))


def as_nchw(outs: list[np.ndarray], specs: list[TensorSpec]) -> list[np.ndarray]:
    """Return outputs with NHWC feature maps transposed to NCHW (the PyTorch reference's layout)."""
    return [o.transpose(0, 3, 1, 2) if s.layout == "NHWC" else o for o, s in zip(outs, specs)]
