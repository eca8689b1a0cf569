"""Image preprocessing exactly as a manifest describes it; shared by the runtime, calibration and eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.manifest import Preprocessing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
RESAMPLING = ("bicubic", "bilinear", "nearest")


def _pil():
    try:
        from PIL import Image
    except ImportError as e:
        raise FnxError("Pillow is needed to read images: pip install 'fnx[runtime]' (or pillow)") from e
    return Image


def load_image(path: str | Path):
    """Return the image at path as an RGB PIL image; FnxError if it cannot be decoded."""
    Image = _pil()
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError as e:
        raise FnxError(f"image {path} does not exist") from e
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError... for damaged files
        raise FnxError(f"cannot decode image {path} ({type(e).__name__}: {e}); is it a valid jpg/png/bmp/webp?") from e


def preprocess(image, spec: Preprocessing | None = None) -> np.ndarray:
    """Return an HWC float32 array: short side resized, center-cropped, scaled and normalized per spec.

    `image` is a PIL image, a path, or an HWC uint8 RGB array.
    """
    Image = _pil()
    spec = spec or Preprocessing()
    if isinstance(image, (str, Path)):
        image = load_image(image)
    elif isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.stack([image] * 3, -1)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise FnxError(f"expected an HxWx3 uint8 RGB image array, got shape {image.shape} dtype {image.dtype}")
        image = Image.fromarray(image)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if spec.interpolation not in RESAMPLING:
        raise FnxError(f"unknown interpolation {spec.interpolation!r} in the preprocessing; use one of {', '.join(RESAMPLING)}")
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[spec.interpolation]
    w, h = image.size
    short = int(spec.resize_short)
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if size != (w, h):
        image = image.resize(size, resample)
    crop = int(spec.crop)
    w, h = image.size
    left, top = int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    arr = np.asarray(image, dtype=np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (arr - mean) / std


def to_layout(batch_nhwc: np.ndarray, layout: str) -> np.ndarray:
    """Return an NHWC batch in the given layout ("NHWC" or "NCHW")."""
    if layout == "NCHW":
        return np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))
    return np.ascontiguousarray(batch_nhwc)


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files under folder, recursively, sorted (class subfolders allowed)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FnxError(f"image folder {folder} does not exist or is not a directory")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
