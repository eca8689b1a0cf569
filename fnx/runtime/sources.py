"""What users point fnx at: files, folders, globs, lists of paths, videos, cameras and in-memory frames.

`expand(inputs)` turns them into a lazy sequence of `Source`s, each of which can load one picture. Folders,
globs and path lists are listed up front (sorted, so runs are repeatable); video frames are read as they
are needed. Video and camera input use OpenCV (the video extra), imported only for them.
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.runtime.preprocess import IMAGE_SUFFIXES, list_images

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LIST_SUFFIXES = (".txt", ".lst")


@dataclass
class Source:
    """One picture to classify: its name (a path, "video.mp4#12", "<array 3>") and how to get it.

    `path` is set for image files (the fast preprocessing decodes JPEGs at reduced size from it);
    `frame` for pictures already in memory (HWC uint8 RGB arrays or PIL images: resize only, no decode).
    """

    name: str
    path: Path | None = None
    frame: Any = None
    error: str | None = None  # known bad before loading (a missing file, an unreadable video)


def expand(inputs: Iterable[Any] | Any) -> Iterator[Source]:
    """Yield the Sources of inputs: paths, folders (recursive), globs, @list or .txt files of paths, videos,
    "camera:N" devices, numpy HWC arrays and PIL images, in the order given."""
    if isinstance(inputs, (str, Path, np.ndarray)) or hasattr(inputs, "mode"):
        inputs = [inputs]
    for i, item in enumerate(inputs):
        if isinstance(item, np.ndarray) or hasattr(item, "mode"):
            yield Source(f"<frame {i}>", frame=item)
        elif isinstance(item, (str, Path)):
            yield from _expand_path(str(item))
        else:
            raise FnxError(f"cannot classify a {type(item).__name__}: pass paths, folders, globs, videos, numpy HWC "
                           f"uint8 arrays or PIL images")


def _expand_path(text: str) -> Iterator[Source]:
    if text.startswith("camera:") or text.startswith("/dev/video"):
        yield from video_frames(text)
        return
    if text.startswith("@"):
        yield from _from_list(Path(text[1:]))
        return
    path = Path(text).expanduser()
    if path.is_dir():
        found = list_images(path)
        if not found:
            yield Source(text, error=f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}, searched recursively)")
        for p in found:
            yield Source(str(p), path=p)
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        yield from video_frames(str(path))
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        yield from _from_list(path)
    elif path.exists():
        yield Source(text, path=path)
    elif any(c in text for c in "*?["):
        matches = sorted(globlib.glob(text, recursive=True))
        if not matches:
            yield Source(text, error=f"no file matches {text!r}")
        for m in matches:
            yield from _expand_path(m)
    else:
        yield Source(text, error=f"image {text} does not exist")


def _from_list(path: Path) -> Iterator[Source]:
    """Yield the Sources named in a text file, one path (or folder, glob, video) per line; # starts a comment."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FnxError(f"cannot read the list of inputs {path} ({e})") from e
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            base = Path(line) if Path(line).is_absolute() else path.parent / line
            yield from _expand_path(str(base))


def video_frames(spec: str, every: int = 1) -> Iterator[Source]:
    """Yield the frames of a video file or camera ("camera:0", "/dev/video0") as RGB arrays, read as needed."""
    cv2 = _opencv()
    device: Any = int(spec.split(":", 1)[1]) if spec.startswith("camera:") else spec
    cap = cv2.VideoCapture(device)
    if not cap.isOpened():
        yield Source(spec, error=f"OpenCV cannot open {spec}: not a readable video or camera")
        return
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % every == 0:
                yield Source(f"{spec}#{index}", frame=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        cap.release()


def _opencv():
    try:
        import cv2
    except ImportError as e:
        raise FnxError(f"video and camera input need OpenCV: {pip_install('video')} (or pip install opencv-python-headless)") from e
    return cv2
