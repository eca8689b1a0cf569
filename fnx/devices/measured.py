"""What `fnx bench all` measured on this machine, kept for `fnx devices`: per model, size and thread count, the
fastest path within its parity bounds. A profile is a guess made elsewhere; this is this CPU's answer. Torch-free."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import time
import warnings
from pathlib import Path

from fnx.devices.bench_record import BenchRecord, MeasuredRow, MeasuredRun, UnknownRecordSchema, read_record
from fnx.devices.detect import cpu_count, cpu_name
from fnx.errors import FnxError
from fnx.fileio import cache_root, write_text_atomic


def machine_identity() -> dict:
    """The CPU a measurement belongs to: model name, usable cores, architecture (a measurement holds for that CPU)."""
    return dict(_identity())


@functools.lru_cache(maxsize=1)  # /proc/cpuinfo read once per process: every --device auto load asks
def _identity() -> tuple:
    return (("cpu", cpu_name() or platform.processor() or "unknown"), ("cores", cpu_count()), ("arch", platform.machine()))


def record_path(identity: dict | None = None) -> Path:
    """Return this machine's record file (fnx's cache dir, then bench/<cpu key>.json)."""
    key = hashlib.sha256(json.dumps(identity or machine_identity(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "bench" / f"{key}.json"


def save_ranking(model: str, img_size: int, threads: int, rows: list[dict]) -> Path:
    """Record one `fnx bench all` ranking (rows as bench_all returns them) for this machine; returns the file.

    A record of another schema version is refused (UnknownRecordSchema), never overwritten: it may be a newer
    fnx's (`check_record_writable` says so before the work); a damaged one is replaced, with a warning.
    """
    identity = machine_identity()
    path = record_path(identity)
    try:
        record = read_record(path)
    except UnknownRecordSchema:
        raise
    except FnxError as e:
        warnings.warn(f"{e}; replaced by this run's record", UnusableRecordWarning, stacklevel=2)
        record = None
    record = record or BenchRecord(machine=identity)
    best = next((r for r in rows if r.get("fastest_within_bounds")), None)
    record.runs[f"{model}@{img_size}@{threads}"] = MeasuredRun(
        model=model, img_size=img_size, threads=threads, date=time.strftime("%Y-%m-%d %H:%M"),
        rows=[MeasuredRow.of(r) for r in rows if "error" not in r], fastest=MeasuredRow.of(best) if best else None)
    write_text_atomic(path, json.dumps(record.to_dict(), indent=1))
    return path


def check_record_writable() -> None:
    """Raise UnknownRecordSchema now if this machine's record is another fnx's (before `fnx bench all` works)."""
    try:
        read_record(record_path())
    except UnknownRecordSchema:
        raise
    except FnxError:
        pass  # damaged: save_ranking replaces it


def measured_here() -> list[dict]:
    """Return this machine's recorded rankings, newest first ([] when nothing was measured here, or, with a
    warning saying what to do, when the record cannot be used)."""
    try:
        record = read_record(record_path())
    except FnxError as e:
        warnings.warn(f"{e}; until then nothing measured here is used", UnusableRecordWarning, stacklevel=2)
        return []
    runs = [run.to_dict() for run in record.runs.values()] if record else []
    return sorted(runs, key=lambda r: r.get("date", ""), reverse=True)


class UnusableRecordWarning(UserWarning):
    """The bench record cannot be read: `--device auto` and `fnx devices` go on without it."""


OWN_NUMERICS = (None, "native", "f32")  # rows computed in the artifact's own precision (no bf16/f16 hint)
REDUCED = ("bf16", "f16")  # hints `--inference-precision auto` may take, by the user's consent


def _own_numerics_on(row: dict, device: str) -> bool:
    """Whether a row ran on device (rows from before GPU rows existed: the CPU) in the artifact's own numerics."""
    return (row.get("device") or "cpu") == device and row.get("inference_precision") in OWN_NUMERICS


def _reduced_on_cpu(row: dict) -> bool:
    return (row.get("device") or "cpu") == "cpu" and row.get("inference_precision") in REDUCED


def profile_row(run: dict, fmt: str, precision: str, engine: str, device: str = "cpu") -> dict | None:
    """Return the run's row for a profile's own choice (format, precision, engine, device), if it was measured."""
    return next((r for r in run.get("rows", []) if (r["format"], r["precision"], r["engine"]) == (fmt, precision, engine)
                 and _own_numerics_on(r, device)), None)


def measured_ranking(fmt: str, precision: str, model: str, img_size: int, threads: int | None,
                     reduced: bool = False) -> list[dict]:
    """Return the rows measured here for an artifact like this one, fastest first ([] when nothing fits).

    Like = the same model, format and precision, on the CPU, in its own numerics (reduced: or in a reduced
    inference precision, bf16/f16, the user consented to) and within its parity bounds (a reduced row: its own
    looser ones), from one run: the one at the nearest thread count (None: the most threads measured), then the
    same image size, then the newest. Each row gets "measured": the run's model, img_size, threads and date.
    """
    runs = [r for r in measured_here() if r.get("model") == model]
    if not runs:
        return []
    want = threads if threads is not None else max(r.get("threads") or 0 for r in runs)
    runs.sort(key=lambda r: (abs((r.get("threads") or 0) - want), r.get("img_size") != img_size))  # stable: newest
    for run in runs:
        rows = [r for r in run.get("rows", []) if (r.get("format"), r.get("precision")) == (fmt, precision)
                and (_own_numerics_on(r, "cpu") or (reduced and _reduced_on_cpu(r))) and r.get("parity_passed")
                and isinstance(r.get("p50_ms"), (int, float))]
        if rows:
            about = {k: run.get(k) for k in ("model", "img_size", "threads", "date")}
            return [{**r, "measured": about} for r in sorted(rows, key=lambda r: r["p50_ms"])]
    return []
