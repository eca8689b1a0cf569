"""Image preprocessing exactly as a manifest describes it; shared by the runtime, calibration and eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.manifest import Preprocessing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
RESAMPLING = ("bicubic", "bilinear", "nearest")
# exact: the official evaluation transform (the default for eval, calibration and parity). fast: JPEGs are decoded
# at a reduced size in the DCT domain (Pillow's draft, libjpeg's scaled decode), keeping at least FAST_MARGIN x the
# resize target on the short side, then the same resize and crop, done in one step on the crop's pixels only.
PREPROCESS_MODES = ("exact", "fast")
RUN_MODE = "fast"  # what `fnx run` and `fnx serve` use unless told (eval, calibration and parity use exact)
FAST_MARGIN = 2.0


def _pil():
    try:
        from PIL import Image
    except ImportError as e:
        raise FnxError(f"Pillow is needed to read images: {pip_install('runtime')} (or pip install pillow)") from e
    return Image


class SmallImageWarning(UserWarning):
    """An image much smaller than the model's input: it is upscaled, and what the model sees is mostly blur."""


def load_image(path: str | Path, min_short: int | None = None):
    """Return the image at path as an 8-bit RGB PIL image; FnxError if it cannot be decoded.

    With min_short, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose short side stays >= min_short.
    """
    if Path(path).is_dir():
        raise FnxError(f"image {path} is a directory; pass image files (or a folder to the commands that take one)")
    if not Path(path).exists():
        raise FnxError(f"image {path} does not exist")
    return _decode(path, str(path), min_short)


def decode_image(data: bytes, name: str = "image", min_short: int | None = None):
    """Return encoded image bytes (JPEG, PNG, ...) as an 8-bit RGB PIL image, decoded as `load_image` does a file."""
    import io

    return _decode(io.BytesIO(data), name, min_short)


def _decode(source, name: str, min_short: int | None):
    Image = _pil()
    try:
        with Image.open(source) as im:
            if min_short and im.format == "JPEG" and min(im.size) > min_short:
                scale = min_short / min(im.size)
                im.draft("RGB", (int(im.size[0] * scale + 1), int(im.size[1] * scale + 1)))
            im.load()  # decoded now: closing the file leaves the pixels
            # no copy of an RGB picture: the copy cost 0.4-0.7 ms a 1080p image, 2-3% of the exact preprocessing
            return im if im.mode == "RGB" else to_rgb8(im)
    except FileNotFoundError as e:
        raise FnxError(f"image {name} does not exist") from e
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, AssertionError... for damaged files
        detail = str(e).replace(str(source), name)  # PIL names an in-memory source by its repr
        raise FnxError(f"cannot decode image {name} ({type(e).__name__}: {detail}); is it a valid jpg/png/bmp/webp?") from e


def to_rgb8(image):
    """Return image as 8-bit RGB. 16-bit and float grayscale (I;16, I, F) are scaled to 0-255 first: Pillow's own
    convert("RGB") clips them at 255, which turns a 16-bit photo nearly white."""
    Image = _pil()
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = float(arr.max(initial=0))
        if image.mode.startswith("I;16"):
            full = 65535.0  # a 16-bit file: its range is 16-bit however dark the picture
        else:  # I (often a 16-bit PNG) and F carry no range: infer it
            full = 1.0 if image.mode == "F" and top <= 1.0 else (255.0 if top <= 255 else 65535.0)
        image = Image.fromarray(np.clip(np.round(arr * (255.0 / full)), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")  # a new, loaded image even when already RGB: the file may be closed after this


def preprocess(image, spec: Preprocessing | None = None, mode: str = "exact") -> np.ndarray:
    """Return an HWC float32 array: short side resized, center-cropped, scaled and normalized per spec.

    `image` is a PIL image, a path, or an HWC uint8 RGB array; mode "fast" decodes JPEG paths at reduced size.
    """
    Image = _pil()
    spec = spec or Preprocessing()
    if mode not in PREPROCESS_MODES:
        raise FnxError(f"unknown preprocessing mode {mode!r}; use one of {', '.join(PREPROCESS_MODES)}")
    if isinstance(image, (str, Path)):
        image = load_image(image, int(FAST_MARGIN * spec.resize_short) if mode == "fast" else None)
    elif isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.stack([image] * 3, -1)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise FnxError(f"expected an HxWx3 uint8 RGB image array, got shape {image.shape} dtype {image.dtype}")
        image = Image.fromarray(image)
    elif image.mode != "RGB":
        image = to_rgb8(image)
    if spec.interpolation not in RESAMPLING:
        raise FnxError(f"unknown interpolation {spec.interpolation!r} in the preprocessing; use one of {', '.join(RESAMPLING)}")
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[spec.interpolation]
    w, h = image.size
    short = int(spec.resize_short)
    note = small_image_note(w, h, spec)
    if note:
        import warnings

        warnings.warn(note, SmallImageWarning, stacklevel=2)
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    crop = int(spec.crop)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    if mode == "fast" and size != (w, h):
        # only the crop's pixels are resampled (the crop box mapped back onto the source): 2x less work than
        # resizing the whole picture; the filter still reads past the box, so pixels differ by at most 1 level
        sx, sy = w / size[0], h / size[1]
        image = image.resize((crop, crop), resample, box=(left * sx, top * sy, (left + crop) * sx, (top + crop) * sy))
    else:
        if size != (w, h):
            image = image.resize(size, resample)
        image = image.crop((left, top, left + crop, top + crop))
    arr = np.asarray(image, dtype=np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (arr - mean) / std


def small_image_note(width: int, height: int, spec: Preprocessing) -> str | None:
    """Return why an image this small makes a meaningless prediction (None for one that is big enough)."""
    if min(width, height) * 4 < spec.crop:
        return (f"a {width}x{height} image is upscaled to the model's {spec.crop}x{spec.crop} input: predictions on it "
                f"mean little")
    return None


def to_layout(batch_nhwc: np.ndarray, layout: str) -> np.ndarray:
    """Return an NHWC batch in the given layout ("NHWC" or "NCHW")."""
    if layout == "NCHW":
        return np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))
    return np.ascontiguousarray(batch_nhwc)


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files under folder, recursively, sorted; hidden files and folders (".name") are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FnxError(f"image folder {folder} does not exist or is not a directory")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
