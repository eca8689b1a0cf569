"""Where weights come from: a path, a URL, the Hugging Face Hub, the official release (downloaded, checksummed,
cached; the timm mirror on the Hub when the release cannot be had), or random."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fnx.errors import FnxError
from fnx.fileio import cache_root, ensure_dir, sha256_file, write_text_atomic
from fnx.manifest import WeightsInfo
from fnx.models import hub
from fnx.models.variants import Variant

OFFICIAL_URL_ENV = "FNX_OFFICIAL_URL_BASE"  # replaces the release URL's base (tests, mirrors)


@dataclass
class WeightSource:
    """What a model's weights came from, as recorded in manifests."""

    kind: str  # "path" | "url" | "official" | "hf-hub" | "random"
    path: Path | None = None
    url: str | None = None  # for Hub weights: hf-hub:ORG/REPO@COMMIT
    sha256: str | None = None
    hub_ref: hub.HubRef | None = None  # set when the file came from the Hub (its config may name the classes)

    @property
    def downloaded(self) -> bool:
        """True when the file is a cached download (an unreadable one is evicted so the next run fetches it)."""
        return self.kind in ("url", "official") and self.hub_ref is None

    def info(self) -> WeightsInfo:
        """Return the manifest's record of this source."""
        return WeightsInfo(self.kind, str(self.path) if self.path else None, self.url, self.sha256)


def cache_dir() -> Path:
    """Return the weights cache directory ($FNX_CACHE_DIR, else ~/.cache/fnx)."""
    return cache_root() / "weights"



def official_url(variant: Variant) -> str:
    base = os.environ.get(OFFICIAL_URL_ENV)
    return (base.rstrip("/") + "/" + variant.official_file) if base else variant.official_url


def official_cache_state(variant: Variant) -> str | None:
    """Return where the official weights are cached here: "release", "mirror" (the Hub cache) or None; no network."""
    path = cache_path(official_url(variant))
    if path.is_file() and path.with_name(path.name + ".sha256").is_file():
        return "release"
    return "mirror" if hub.cached(hub.parse(variant.hub_mirror)) else None


def split_pin(spec: str) -> tuple[str, str | None]:
    """Return (url, pinned sha256 or None) of a URL that may end in `#sha256=HEX` (pip's hash fragment)."""
    url, _, fragment = spec.partition("#")
    if not fragment:
        return url, None
    key, _, value = fragment.partition("=")
    if key != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise FnxError(f"unknown URL fragment #{fragment!r}: pin a download with #sha256=<64 hex digits>")
    return url, value.lower()


class MirrorUsedWarning(UserWarning):
    """The official release could not be had and its mirror on the Hub was used instead."""


def resolve(spec: str, variant: Variant, progress: Callable[[int, int | None], None] | None = None) -> WeightSource:
    """Turn a --weights value ("random", "official", a URL[#sha256=...], hf-hub:... or a path) into a WeightSource."""
    if spec == "random":
        return WeightSource("random")
    if spec == "official":
        return _official(variant, progress)
    if hub.is_hub_spec(spec):
        return from_hub(hub.parse(spec))
    if spec.startswith(("http://", "https://")):
        url, pinned = split_pin(spec)
        path = download(url, pinned=pinned, progress=progress, hint="weights")
        return WeightSource("url", path=path, url=url, sha256=sha256_file(path))
    path = Path(spec).expanduser()
    if path.is_dir():
        raise FnxError(f"weights {spec!r} is a directory; pass the checkpoint file itself")
    if not path.is_file():
        raise FnxError(f"weights file {spec!r} does not exist; pass a checkpoint path, a URL, 'official' or 'random'")
    return WeightSource("path", path=path.resolve(), sha256=sha256_file(path))


def from_hub(ref: hub.HubRef, kind: str = "hf-hub", patient: bool = True) -> WeightSource:
    """Return the WeightSource of a Hub file, downloaded into (or found in) the Hugging Face cache."""
    path, commit = hub.download(ref, patient=patient)
    return WeightSource(kind, path=path, url=ref.spec(commit), sha256=sha256_file(path), hub_ref=ref)


def _official(variant: Variant, progress: Callable[[int, int | None], None] | None) -> WeightSource:
    """Return the official release's weights or, when it cannot be had, timm's mirror on the Hub (with a warning)."""
    url = official_url(variant)
    try:
        path = download(url, progress=progress, hint="official weights")
        return WeightSource("official", path=path, url=url, sha256=sha256_file(path))
    except FnxError as e:
        release_error = e
    try:
        source = from_hub(hub.parse(variant.hub_mirror), kind="official", patient=False)
    except (FnxError, ImportError) as mirror_error:
        raise FnxError(f"neither the official release nor its mirror could be had: {release_error}; "
                       f"mirror {variant.hub_mirror}: {mirror_error}") from mirror_error
    warnings.warn(f"the official release of {variant.name} could not be had ({release_error}); using its mirror "
                  f"{source.url}", MirrorUsedWarning, stacklevel=3)
    return source


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
                       f"--weights PATH|URL|hf-hub:ORG/REPO|official (weights= in Python), or --weights random for an untrained "
                       f"model on purpose") from e


def cache_path(url: str) -> Path:
    """Return where url is cached: a folder per URL (two URLs ending in the same file name never share a file)."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    return cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def evict(path: Path) -> None:
    """Remove a cached download and its record (it turned out unreadable): the next use fetches it again."""
    for p in (path, path.with_name(path.name + ".sha256")):
        p.unlink(missing_ok=True)


def download(url: str, pinned: str | None = None, progress: Callable[[int, int | None], None] | None = None,
             hint: str = "file") -> Path:
    """Return the cached copy of url, downloading it atomically (temp file, size check, rename) if absent.

    The sha256 of each download is stored beside it (`NAME.sha256`) and checked on every reuse; a copy that
    no longer matches it (or the pinned sha256) is fetched again. A failed or truncated download is never kept.
    """
    dest = cache_path(url)
    record = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and record.is_file():
        digest = sha256_file(dest)
        if digest == record.read_text().split()[0] and pinned in (None, digest):
            return dest
        evict(dest)  # changed since it was cached, or pinned to other content: fetch again
    ensure_dir(dest.parent)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(url, out, progress, hint)
        digest = sha256_file(tmp)
        if pinned is not None and digest != pinned:
            raise FnxError(f"the download of {url} has sha256 {digest}, not the pinned {pinned}: the file on the server "
                           f"changed or the pin is wrong; nothing was kept")
        os.replace(tmp, dest)
        write_text_atomic(record, f"{digest}  {dest.name}\n{url}\n")
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fetch(url: str, out, progress: Callable[[int, int | None], None] | None, hint: str) -> None:
    try:
        resp = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FnxError(f"could not download {hint} from {url} ({getattr(e, 'reason', e)}). If this machine is offline, "
                       f"download the file elsewhere and pass --weights PATH") from e
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
