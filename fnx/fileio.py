"""Atomic file writes and hashing: a failed or interrupted write never leaves a file under the final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from fnx.errors import FnxError


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_root() -> Path:
    """Return fnx's cache directory: $FNX_CACHE_DIR, else ~/.cache/fnx (weights, bench records)."""
    return Path(os.environ.get("FNX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fnx"))


def ensure_dir(path: str | Path) -> Path:
    """Create path (and parents) or raise FnxError saying it is not writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FnxError(f"cannot create directory {path} ({e.strerror}); choose a writable location") from e
    if not os.access(path, os.W_OK):
        raise FnxError(f"directory {path} is not writable; choose another output directory")
    return path


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Raise FnxError unless path is a directory that exists or could be made and written; creates nothing.

    For checking every output of a command before its expensive work (the write itself still uses ensure_dir)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FnxError(f"{what} {path} is a file, not a directory; choose another location")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FnxError(f"cannot create {what} {path}: {existing} is a file, not a directory; choose a writable location")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == path:  # it exists: nothing to create, only to write into
            raise FnxError(f"{what} {path} exists but is not writable (its permissions); choose another location or "
                           f"make it writable (chmod u+w {path})")
        raise FnxError(f"cannot create {what} {path}: {existing} is not writable; choose a writable location")
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Raise FnxError unless a file could be written at path (its folder exists or could be made; it is no folder)."""
    path = Path(path)
    if path.is_dir():
        raise FnxError(f"{what} {path} is a directory; give a file name")
    check_output_dir(path.parent, f"the folder of the {what}")
    return path


@contextlib.contextmanager
def atomic_path(dest: str | Path, companions: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temp path beside dest; on success it is renamed to dest, on any error (or Ctrl-C) removed.

    Companion files (same temp stem, another suffix: OpenVINO IR's `.bin`) are renamed with it, first,
    so that dest never exists without them, and removed with it on failure.
    """
    dest = Path(dest)
    ensure_dir(dest.parent)
    # keep the real suffix last: engines pick the format from it
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make artifacts unreadable to other users
    extra = [(Path(tmp).with_suffix(s), dest.with_suffix(s)) for s in companions]
    try:
        yield Path(tmp)
        for made, final in extra:
            if not made.is_file():
                raise FnxError(f"internal error: {final.name} was not written beside {dest.name}; please report it")
            os.replace(made, final)
        os.replace(tmp, dest)
    finally:
        for path in (tmp, *(made for made, _ in extra)):
            if os.path.exists(path):
                os.unlink(path)


def write_text_atomic(dest: str | Path, text: str) -> Path:
    """Write text to dest atomically; returns dest."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
    return Path(dest)
