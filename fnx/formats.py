"""Artifact file formats: the facts every stage shares (name, suffix, tensor layout, how to recognise a file).

Torch-free: the exporter (`fnx.exporter.FORMATS`, which converts) and the runtime
(`fnx.runtime.ENGINES`, which runs) both name formats from this table. A new format registers
its facts here, its converter in the exporter and an engine in the runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fnx.errors import FnxError

PRECISIONS = ("fp32", "fp16", "int8")


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

    def files(self, path: str | Path) -> list[Path]:
        """Return the artifact's files: path, then its companions (which may not exist)."""
        path = Path(path)
        return [path, *(path.with_suffix(s) for s in self.companions)]


FILE_FORMATS: dict[str, FileFormat] = {}


def register_file_format(fmt: FileFormat) -> FileFormat:
    """Add (or replace) a file format; returns it."""
    FILE_FORMATS[fmt.name] = fmt
    return fmt


def _embed_in_onnx(path: Path, manifest_json: str) -> None:
    """Store the manifest as the `fnx.manifest` metadata_props entry of an ONNX file (in place)."""
    import onnx

    from fnx import __version__

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "fnx.manifest", manifest_json
    model.producer_name, model.producer_version = "fnx", __version__
    onnx.save(model, str(path))


register_file_format(FileFormat("tflite", ".tflite", "NHWC", "TFLite model (LiteRT flatbuffer)",
                                sniff=lambda head: head[4:8] == b"TFL3"))
register_file_format(FileFormat("onnx", ".onnx", "NCHW", "ONNX model (protobuf)", embed=_embed_in_onnx))
register_file_format(FileFormat("openvino", ".xml", "NCHW", "OpenVINO IR (.xml graph + .bin weights)",
                                sniff=lambda head: head.lstrip().startswith((b"<?xml", b"<net")), companions=(".bin",)))


def artifact_files(path: str | Path) -> list[Path]:
    """Return the files an artifact at path consists of, by its suffix (which may not all exist): [path] if unknown."""
    path = Path(path)
    fmt = _by_suffix(path)
    return fmt.files(path) if fmt else [path]


def _by_suffix(path: Path) -> FileFormat | None:
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


def get_file_format(name: str) -> FileFormat:
    """Return the format called name; FnxError listing the known ones otherwise."""
    if name not in FILE_FORMATS:
        raise FnxError(f"unknown format {name!r}; use one of {', '.join(FILE_FORMATS)}")
    return FILE_FORMATS[name]


def detect_format(path: str | Path) -> FileFormat:
    """Return the format of a model file from its suffix and first bytes; FnxError for a missing or foreign file."""
    path = Path(path)
    if path.is_dir():
        raise FnxError(f"{path} is a directory; pass the model file itself ({', '.join(f.suffix for f in FILE_FORMATS.values())})")
    if not path.is_file():
        raise FnxError(f"model file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise FnxError(f"model file {path} is empty; re-export it")
    with open(path, "rb") as f:
        head = f.read(16)
    by_suffix = _by_suffix(path)
    by_bytes = [f for f in FILE_FORMATS.values() if f.sniff is not None and f.sniff(head)]
    if by_bytes and (by_suffix is None or by_suffix.sniff is not None):
        fmt = by_bytes[0]
    elif by_suffix is not None and by_suffix.sniff is None:
        fmt = by_suffix
    elif by_suffix is not None:
        raise FnxError(f"{path} is not a {by_suffix.description} (its first bytes do not match): the file is "
                       f"truncated or corrupt; re-export it")
    else:
        suffixes = " or ".join(f.suffix for f in FILE_FORMATS.values())
        raise FnxError(f"{path} is not a model fnx can run: expected a {suffixes} file")
    missing = [f for f in fmt.files(path)[1:] if not f.is_file()]
    if missing:
        raise FnxError(f"{missing[0].name} is missing beside {path.name}: an {fmt.description} is both files; copy "
                       f"them together")
    return fmt
