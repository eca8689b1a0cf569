"""Weights from the Hugging Face Hub (`hf-hub:ORG/REPO[/FILE][@REVISION]`), through huggingface_hub and its cache.

Only safetensors files are fetched (a pickle from a hub could run code). The environment is read at each
call, as huggingface_hub reads it at import: `HF_ENDPOINT` (a mirror or a local stand-in), `HF_HUB_CACHE` /
`HF_HOME` (the cache), `HF_HUB_OFFLINE` (cache only), `HF_TOKEN` (private repos). Torch-free.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError

PREFIX = "hf-hub:"
DEFAULT_FILE = "model.safetensors"
CONFIG_FILE = "config.json"  # timm's: may carry label_names
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
NETWORK_LIBRARIES = ("httpx", "httpcore", "h11", "requests", "urllib3")  # their errors mean the transfer failed
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubRef:
    """One file of a Hub model repo at a revision (a branch, tag or commit; None is the default branch)."""

    repo_id: str
    filename: str = DEFAULT_FILE
    revision: str | None = None

    def spec(self, revision: str | None = None) -> str:
        """Return the `hf-hub:` spec of this file (at `revision` if given, e.g. the resolved commit)."""
        path = self.repo_id if self.filename == DEFAULT_FILE else f"{self.repo_id}/{self.filename}"
        rev = revision or self.revision
        return PREFIX + path + (f"@{rev}" if rev else "")


def is_hub_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def parse(spec: str) -> HubRef:
    """Return the HubRef of `hf-hub:ORG/REPO[/PATH/FILE.safetensors][@REVISION]`; FnxError says the form if not."""
    body = spec[len(PREFIX):] if is_hub_spec(spec) else spec
    body, at, revision = body.partition("@")
    parts = body.strip("/").split("/")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:]) or DEFAULT_FILE
    if not _REPO.fullmatch(repo_id) or (at and not revision):
        raise FnxError(f"{spec!r} is not a Hub weights reference: use hf-hub:ORG/REPO (e.g. "
                       f"hf-hub:timm/fasternet_t2.in1k), optionally /FILE.safetensors and @REVISION")
    if not filename.endswith(".safetensors"):
        raise FnxError(f"{spec!r} names {filename!r}: fnx loads Hub weights as .safetensors only (a pickled "
                       f"checkpoint from a hub could run code); upload the weights as safetensors")
    return HubRef(repo_id, filename, revision or None)


def settings() -> dict:
    """Return huggingface_hub's endpoint, cache and offline settings from the environment as it is now."""
    cache = os.environ.get("HF_HUB_CACHE") or (os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME")
                                               else None)
    offline = (os.environ.get("HF_HUB_OFFLINE") or "").strip().upper() in ("1", "ON", "YES", "TRUE")
    return {"endpoint": (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None, "cache_dir": cache,
            "local_files_only": offline}


def download(ref: HubRef, filename: str | None = None, patient: bool = True) -> tuple[Path, str]:
    """Return (local path in the Hub cache, commit hash) of ref's file (or another file of the same repo).

    patient=False first checks, without huggingface_hub's retries (~25 s of backoff), that the Hub answers at
    all: for a fallback (the official release's mirror) whose caller already has an error to report.
    """
    import huggingface_hub as hub
    from huggingface_hub import errors

    name = filename or ref.filename
    opts = settings()
    where = f"{ref.spec()} ({name})" if filename else ref.spec()
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # its retry chatter; fnx reports the outcome in one line
    try:
        if not patient and not opts["local_files_only"] and cached(HubRef(ref.repo_id, name, ref.revision)) is None:
            _probe(ref, name, opts)
        path = Path(hub.hf_hub_download(ref.repo_id, name, revision=ref.revision, **opts))
    except errors.GatedRepoError as e:
        raise FnxError(f"{where}: the repo is gated; accept its terms on the Hub and set HF_TOKEN") from e
    except errors.RepositoryNotFoundError as e:
        raise FnxError(f"{where}: no such Hub repo, or it is private (set HF_TOKEN to a token that can read it)") from e
    except errors.RevisionNotFoundError as e:
        raise FnxError(f"{where}: the repo has no revision {ref.revision!r}; give a branch, tag or commit it has") from e
    except errors.LocalEntryNotFoundError as e:
        if opts["local_files_only"]:
            raise FnxError(f"{where} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: download it "
                           f"once online, or pass --weights PATH") from e
        raise FnxError(f"could not reach the Hub for {where} and it is not cached ({_reason(e)}); check the network "
                       f"or HF_ENDPOINT, or pass --weights PATH") from e
    except errors.EntryNotFoundError as e:
        raise FnxError(f"{where}: the repo has no file {name!r}; name the .safetensors file, "
                       f"hf-hub:ORG/REPO/FILE.safetensors") from e
    except Exception as e:  # noqa: BLE001  HTTP errors, and the transport's own (httpx) when a download breaks off
        if not isinstance(e, (errors.HfHubHTTPError, errors.FileMetadataError, OSError, ValueError)) and \
                type(e).__module__.split(".")[0].rstrip("0123456789") not in NETWORK_LIBRARIES:
            raise
        raise FnxError(f"could not download {where} ({_reason(e)}); try again, or pass --weights PATH") from e
    finally:
        hub_logger.setLevel(level)
    return path, commit_of(path, ref)


def _probe(ref: HubRef, name: str, opts: dict) -> None:
    """Raise FnxError at once if the Hub's endpoint does not answer (HTTP errors are left to the download)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    url = hf_hub_url(ref.repo_id, name, revision=ref.revision, endpoint=opts["endpoint"])
    try:
        get_hf_file_metadata(url, timeout=10, endpoint=opts["endpoint"])
    except HfHubHTTPError:
        return
    except Exception as e:  # noqa: BLE001  connection refused, DNS, timeout: the Hub cannot be reached
        raise FnxError(f"could not reach the Hub at {url.split('/' + ref.repo_id)[0]} ({_reason(e)}); check the "
                       f"network or HF_ENDPOINT, or pass --weights PATH") from e


def commit_of(path: Path, ref: HubRef) -> str | None:
    """Return the commit a cached file belongs to (its snapshot folder), or the revision if that is a commit."""
    for parent in path.parents:
        if parent.parent.name == "snapshots" and _COMMIT.fullmatch(parent.name):
            return parent.name
    return ref.revision if ref.revision and _COMMIT.fullmatch(ref.revision) else None


def label_names(ref: HubRef, num_classes: int) -> list[str] | None:
    """Return the class names in the repo's timm config.json (`label_names`), if it has them for num_classes."""
    try:
        path, _ = download(ref, CONFIG_FILE, patient=False)
        names = json.loads(path.read_text(encoding="utf-8")).get("label_names")
    except (FnxError, OSError, ValueError, AttributeError):
        return None  # no config, or not timm's: the caller falls back to the classes it knows
    if isinstance(names, list) and len(names) == num_classes and all(isinstance(n, str) for n in names):
        return names
    return None


def cached(ref: HubRef) -> Path | None:
    """Return ref's file if it is in the local Hub cache (no network), else None; None too without huggingface_hub."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(ref.repo_id, ref.filename, cache_dir=settings()["cache_dir"], revision=ref.revision)
    return Path(found) if isinstance(found, str) else None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]
