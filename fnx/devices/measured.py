"""What `fnx bench --all` measured on this machine, kept for `fnx devices`: per model, size and thread count, the
fastest path within its parity bounds. A profile is a guess made elsewhere; this is this CPU's answer. Torch-free."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path

from fnx.devices.detect import cpu_count, cpu_name
from fnx.fileio import cache_root, write_text_atomic

RECORD_FORMAT = "fnx.bench-record/1"
ROW_FIELDS = ("format", "precision", "engine", "engine_label", "inference_precision", "p50_ms", "cosine",
              "parity_passed", "top1", "file_mb")


def machine_identity() -> dict:
    """The CPU a measurement belongs to: model name, usable cores, architecture (a measurement holds for that CPU)."""
    return {"cpu": cpu_name() or platform.processor() or "unknown", "cores": cpu_count(), "arch": platform.machine()}


def record_path(identity: dict | None = None) -> Path:
    """Return this machine's record file (fnx's cache dir, then bench/<cpu key>.json)."""
    key = hashlib.sha256(json.dumps(identity or machine_identity(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "bench" / f"{key}.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else {}


def save_ranking(model: str, img_size: int, threads: int, rows: list[dict]) -> Path:
    """Record one `fnx bench --all` ranking (rows as bench_all returns them) for this machine; returns the file."""
    identity = machine_identity()
    path = record_path(identity)
    record = _read(path) or {"format": RECORD_FORMAT, "machine": identity, "runs": {}}
    timed = [{k: r.get(k) for k in ROW_FIELDS} for r in rows if "error" not in r]
    best = next((r for r in rows if r.get("fastest_within_bounds")), None)
    record["runs"][f"{model}@{img_size}@{threads}"] = {
        "model": model, "img_size": img_size, "threads": threads, "date": time.strftime("%Y-%m-%d %H:%M"),
        "fastest": {k: best.get(k) for k in ROW_FIELDS} if best else None, "rows": timed}
    write_text_atomic(path, json.dumps(record, indent=1))
    return path


def measured_here() -> list[dict]:
    """Return this machine's recorded rankings, newest first ([] when nothing was measured here)."""
    runs = list(_read(record_path()).get("runs", {}).values())
    return sorted(runs, key=lambda r: r.get("date", ""), reverse=True)


def profile_row(run: dict, fmt: str, precision: str, engine: str) -> dict | None:
    """Return the run's row for a profile's own choice (format, precision, engine), if it was measured."""
    return next((r for r in run.get("rows", []) if (r["format"], r["precision"], r["engine"]) == (fmt, precision, engine)
                 and r.get("inference_precision") in (None, "native", "f32")), None)
