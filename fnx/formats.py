"""Artifact file formats: the facts every stage shares (name, suffix, tensor layout, how to recognise a file).

Torch-free: the exporter (`fnx.exporter.FORMATS`, which converts) and the runtime (`fnx.runtime.ENGINES`, which
runs) both name formats from this table. Each target package (`fnx.targets`) registers its own FileFormat here when
it is imported; the lookups below load the targets first.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fnx.errors import FnxError
from fnx.targets import in_target_order

PRECISIONS = ("fp32", "fp16", "int8")
EMBED_KEY = "fnx.manifest"  # where a format that can embed the manifest keeps it (ONNX: a metadata_props entry)


@dataclass(frozen=True)
class FileFormat:
    """An artifact format: its name, file suffix, image layout, and a check of a file's first bytes."""

    name: str
    suffix: str
    layout: str  # "NHWC" | "NCHW": the layout of the artifact's image input and feature-map outputs
    description: str
    sniff: Callable[[bytes], bool] | None = None  # recognises the first 16 bytes of a file of this format
    embed: Callable[[Path, str], None] | None = None  # stores the manifest's JSON inside the file, where it can
    companions: tuple[str, ...] = ()  # suffixes of files that travel with it, same stem (OpenVINO IR's .bin)
    read_embedded: Callable[[Path], str | None] | None = None  # the manifest JSON `embed` stored, None if absent
    dynamic_batch: bool = False  # whether a file can take any batch (`fnx export --dynamic-batch` makes one)
    # a format whose files another format's sniff also matches (a TFLite compiled for an NPU): whether the file at
    # path is its own, by a deeper look; a format that claims a file is taken before those that only sniff it
    claims: Callable[[Path], bool] | None = None
    targets: tuple[str, ...] = ()  # the devices its files are compiled for (`--target`); the first is the default
    runs_on: str | None = None  # where its files run when no fnx engine does (said instead of running them)

    def files(self, path: str | Path) -> list[Path]:
        """Return the artifact's files: path, then its companions (which may not exist)."""
        path = Path(path)
        return [path, *(path.with_suffix(s) for s in self.companions)]


FILE_FORMATS: dict[str, FileFormat] = {}


class FormatNameWarning(UserWarning):
    """A model file's name (suffix) says another format than its bytes."""


_QUESTIONED: set[tuple[str, str]] = set()  # (path, format) pairs whose misleading name was already questioned



def register_file_format(fmt: FileFormat) -> FileFormat:
    """Add (or replace) a file format; returns it."""
    FILE_FORMATS[fmt.name] = fmt
    in_target_order(FILE_FORMATS, lambda _: "")  # by name: a FileFormat is fnx.formats' own class
    return fmt


def artifact_files(path: str | Path) -> list[Path]:
    """Return the files an artifact at path consists of, by its suffix (which may not all exist): [path] if unknown."""
    path = Path(path)
    fmt = _by_suffix(path)
    return fmt.files(path) if fmt else [path]


def _by_suffix(path: Path) -> FileFormat | None:
    _with_targets()
    return next((f for f in FILE_FORMATS.values() if f.suffix == path.suffix.lower()), None)


def artifact_digest(path: str | Path) -> tuple[str, int]:
    """Return (sha256, size in bytes) of an artifact: of its one file, or of its files in order (IR's .xml, .bin)."""
    import hashlib

    from fnx.fileio import sha256_file

    files = detect_format(path).files(path)
    if len(files) == 1:
        return sha256_file(path), Path(path).stat().st_size
    h = hashlib.sha256()
    for f in files:
        h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest(), sum(f.stat().st_size for f in files)


def _with_targets() -> None:
    """Load the target packages (each registers its file format here) before a format is looked up."""
    from fnx.targets import load

    load()


def _suffixes() -> list[str]:
    return list(dict.fromkeys(f.suffix for f in FILE_FORMATS.values()))  # formats may share one (a compiled TFLite)


def target_format(target: str) -> FileFormat | None:
    """Return the format whose files are compiled for the device called target (`FileFormat.targets`), else None."""
    _with_targets()
    return next((f for f in FILE_FORMATS.values() if target in f.targets), None)


def file_formats() -> dict[str, FileFormat]:
    """Return every registered file format by name (the targets loaded)."""
    _with_targets()
    return FILE_FORMATS


def get_file_format(name: str) -> FileFormat:
    """Return the format called name; FnxError listing the known ones otherwise."""
    _with_targets()
    if name not in FILE_FORMATS:
        raise FnxError(f"unknown format {name!r}; use one of {', '.join(FILE_FORMATS)}")
    return FILE_FORMATS[name]


def detect_format(path: str | Path) -> FileFormat:
    """Return the format of a model file from its suffix and first bytes; FnxError for a missing or foreign file."""
    _with_targets()
    path = Path(path)
    if path.is_dir():
        raise FnxError(f"{path} is a directory; pass the model file itself ({', '.join(_suffixes())})")
    if not path.is_file():
        raise FnxError(f"model file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise FnxError(f"model file {path} is empty; re-export it")
    with open(path, "rb") as f:
        head = f.read(16)
    by_suffix = _by_suffix(path)
    by_bytes = [f for f in FILE_FORMATS.values() if f.sniff is not None and f.sniff(head)]
    by_bytes = [f for f in by_bytes if f.claims is not None and f.claims(path)] or [f for f in by_bytes if f.claims is None]
    if by_bytes:  # the bytes decide: a renamed file runs as what it is, and its name is questioned once
        fmt = by_bytes[0]
        if fmt.suffix != path.suffix.lower() and (str(path), fmt.name) not in _QUESTIONED:
            _QUESTIONED.add((str(path), fmt.name))  # said once per file and process, however many stages ask
            named = f"its {path.suffix} name says otherwise" if path.suffix else "its name has no suffix"
            warnings.warn(FormatNameWarning(f"{path.name} is a {fmt.description} by its bytes; {named}: fnx runs it as "
                                            f"{fmt.name}. Rename it {path.stem}{fmt.suffix} so other tools know it"))
    elif by_suffix is not None and by_suffix.sniff is None:
        fmt = by_suffix
    elif by_suffix is not None:
        raise FnxError(f"{path} is not a {by_suffix.description} (its first bytes do not match): the file is "
                       f"truncated or corrupt; re-export it")
    else:
        suffixes = " or ".join(_suffixes())
        raise FnxError(f"{path} is not a model fnx can run: expected a {suffixes} file")
    missing = [f for f in fmt.files(path)[1:] if not f.is_file()]
    if missing:
        raise FnxError(f"{missing[0].name} is missing beside {path.name}: an {fmt.description} is both files; copy "
                       f"them together")
    return fmt
