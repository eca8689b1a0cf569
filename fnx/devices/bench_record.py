"""The per-machine record of `fnx bench all` (what steers `--device auto`): typed and versioned like the manifest.

One JSON file per machine: `{"schema": "fnx.bench-record/2", "machine": {...}, "runs": {"MODEL@SIZE@THREADS": run}}`.
The reader is strict (fnx.records): a damaged field, an unknown field or another schema version is refused with
what to do. Version 1 (fnx 0.2, the same fields under "format") is read and rewritten as 2. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnx.errors import FnxError
from fnx.records import Record, RecordError

SCHEMA = "fnx.bench-record/2"
OLD_SCHEMAS = {"fnx.bench-record/1": "fnx 0.2"}  # readable: same rows, the schema under "format"


@dataclass
class MeasuredRow(Record):
    """One artifact on one engine, as `fnx bench all` measured it."""

    format: str
    precision: str
    engine: str
    p50_ms: float
    parity_passed: bool
    device: str | None = None  # None: rows from before GPU rows existed (the CPU)
    engine_label: str | None = None
    inference_precision: str | None = None  # None/"native"/"f32": the artifact's own numerics
    cosine: float | None = None
    top1: float | None = None
    file_mb: float | None = None

    @classmethod
    def of(cls, row: dict) -> MeasuredRow:
        """Return the record's row from a `bench_all` row (which has more keys: only these are kept)."""
        names = cls.__dataclass_fields__
        return cls.from_dict({k: v for k, v in row.items() if k in names}, "row")


@dataclass
class MeasuredRun(Record):
    """One `fnx bench all` run: a model at one size and thread count, its rows and the fastest within bounds."""

    model: str
    img_size: int
    threads: int
    date: str
    rows: list[MeasuredRow]
    fastest: MeasuredRow | None = None


@dataclass
class BenchRecord(Record):
    """Every run measured on one machine (its identity: CPU name, cores, architecture)."""

    machine: dict[str, Any]
    runs: dict[str, MeasuredRun] = field(default_factory=dict)
    schema: str = SCHEMA


class UnknownRecordSchema(FnxError):
    """The record was written by another (newer) fnx: never overwritten."""


def read_record(path: Path) -> BenchRecord | None:
    """Return the record at path (None if there is none); FnxError saying what to do if it cannot be used."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FnxError(f"cannot read the bench record {path}: {e}") from e
    fix = f"delete {path} (fnx bench all measures again)"
    try:
        data = json.loads(text)
    except ValueError:
        raise FnxError(f"the bench record {path} is not JSON: {fix}") from None
    if not isinstance(data, dict):
        raise FnxError(f"the bench record {path} is not an fnx bench record: {fix}")
    if data.get("format") in OLD_SCHEMAS and "schema" not in data:
        data = {"schema": SCHEMA, **{k: v for k, v in data.items() if k != "format"}}
    schema = data.get("schema")
    if schema != SCHEMA:
        raise UnknownRecordSchema(f"the bench record {path} has schema {schema!r}, which this fnx does not know (it reads "
                       f"{SCHEMA}): upgrade fnx, or {fix}")
    try:
        return BenchRecord.from_dict(data, "record")
    except RecordError as e:
        raise FnxError(f"the bench record {path} is damaged ({e}): {fix}") from e
