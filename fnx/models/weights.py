"""Where weights come from: a path, a URL, the official release (downloaded, checksummed, cached), or random."""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fnx.errors import FnxError
from fnx.fileio import ensure_dir, sha256_file, write_text_atomic
from fnx.manifest import WeightsInfo
from fnx.models.variants import Variant

CACHE_ENV = "FNX_CACHE_DIR"
OFFICIAL_URL_ENV = "FNX_OFFICIAL_URL_BASE"  # replaces the release URL's base (tests, mirrors)


@dataclass
class WeightSource:
    """What a model's weights came from, as recorded in manifests."""

    kind: str  # "path" | "url" | "official" | "random"
    path: Path | None = None
    url: str | None = None
    sha256: str | None = None

    def info(self) -> WeightsInfo:
        """Return the manifest's record of this source."""
        return WeightsInfo(self.kind, str(self.path) if self.path else None, self.url, self.sha256)


def cache_dir() -> Path:
    """Return the weights cache directory ($FNX_CACHE_DIR, else ~/.cache/fnx)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "fnx")
    return Path(root) / "weights"



def official_url(variant: Variant) -> str:
    base = os.environ.get(OFFICIAL_URL_ENV)
    return (base.rstrip("/") + "/" + variant.official_file) if base else variant.official_url


def resolve(spec: str, variant: Variant, progress: Callable[[int, int | None], None] | None = None) -> WeightSource:
    """Turn a --weights value ("random", "official", a URL or a path) into a local WeightSource."""
    if spec == "random":
        return WeightSource("random")
    if spec == "official":
        url = official_url(variant)
        path = download(url, progress=progress, hint="official weights")
        return WeightSource("official", path=path, url=url, sha256=sha256_file(path))
    if spec.startswith(("http://", "https://")):
        path = download(spec, progress=progress, hint="weights")
        return WeightSource("url", path=path, url=spec, sha256=sha256_file(path))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise FnxError(f"weights file {spec!r} does not exist; pass a checkpoint path, a URL, 'official' or 'random'")
    return WeightSource("path", path=path.resolve(), sha256=sha256_file(path))


def resolve_or_default(spec: str | None, variant: Variant,
                       progress: Callable[[int, int | None], None] | None = None) -> WeightSource:
    """Return resolve(spec); with no spec, the default policy: the official weights, or an error saying how to proceed.

    The same for `fnx export` and the Python API: an untrained model is never made silently.
    """
    if spec is not None:
        return resolve(spec, variant, progress)
    try:
        return resolve("official", variant, progress)
    except FnxError as e:
        raise FnxError(f"no weights given and the official {variant.name} weights cannot be had ({e}). Pass "
                       f"--weights PATH|URL|official (weights= in Python), or --weights random for an untrained "
                       f"model on purpose") from e


def download(url: str, progress: Callable[[int, int | None], None] | None = None, hint: str = "file") -> Path:
    """Return the cached copy of url, downloading it atomically (temp file, size check, rename) if absent.

    The sha256 of each download is stored beside it (`NAME.sha256`) and checked on every reuse.
    """
    dest_dir = cache_dir()
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    dest = dest_dir / name
    record = dest.with_name(name + ".sha256")
    if dest.is_file() and record.is_file():
        if sha256_file(dest) == record.read_text().split()[0]:
            return dest
        dest.unlink()  # corrupted since it was cached: fetch again
    ensure_dir(dest_dir)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=30)
            except (urllib.error.URLError, OSError) as e:
                raise FnxError(
                    f"could not download {hint} from {url} ({getattr(e, 'reason', e)}). If this machine is offline, "
                    f"download the file elsewhere and pass --weights PATH"
                ) from e
            with resp:
                expected = resp.headers.get("Content-Length")
                expected = int(expected) if expected else None
                done = 0
                try:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, expected)
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    raise FnxError(f"download of {url} broke off after {done} bytes ({e}); try again") from e
            if expected is not None and done != expected:
                raise FnxError(f"download of {url} is truncated: got {done} of {expected} bytes; try again")
            if done == 0:
                raise FnxError(f"download of {url} is empty; check the URL")
        digest = sha256_file(tmp)
        os.replace(tmp, dest)
        write_text_atomic(record, f"{digest}  {name}\n{url}\n")
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
