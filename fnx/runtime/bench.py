"""Latency measurement for `fnx bench`: percentiles, throughput, achieved GFLOPS (GOPS for int8), peak RSS. Torch-free.

One word for one thing, as in docs/BENCHMARKS.md: the model's multiply-adds per second in billions (the paper's
FLOPs convention) are GFLOPS for a float artifact and GOPS for an int8 one. The JSON key stays `gflops` for every
row (stable since 0.1); `ops_unit` says which word applies.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from fnx.formats import artifact_digest
from fnx.runtime.placement import RunOptions
from fnx.runtime.session import Session


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ops_unit(session: Session) -> str:
    """Return "GOPS" for an int8 artifact, "GFLOPS" otherwise (the word for its achieved multiply-adds per second)."""
    return "GOPS" if session.manifest is not None and session.manifest.artifact.precision == "int8" else "GFLOPS"


def bench_session(session: Session, batch: int = 1, warmup: int = 10, runs: int = 100) -> dict:
    """Return latency statistics (ms) of session.run on a random batch, after warm-up runs."""
    shape = tuple(batch if i == 0 else (d or 1) for i, d in enumerate(session.input_shape))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        session.run(x)
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        session.run(x)
        times[i] = (time.perf_counter() - t0) * 1e3
    flops = session.flops
    mean = float(times.mean())
    return {
        "artifact": session.path.name, "engine": session.engine_label,
        "threads": session.threads, "batch": batch, "runs": runs, "mean_ms": mean,
        "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
        "p99_ms": float(np.percentile(times, 99)), "throughput_ips": 1e3 * batch / mean,
        "gflops": (flops * batch / (mean / 1e3) / 1e9) if flops else None, "ops_unit": ops_unit(session),
        "peak_rss_mb": peak_rss_mb(), "file_mb": artifact_digest(session.path)[1] / 1e6,
    }


def bench(path: str | Path, run: RunOptions = RunOptions(device="cpu"), batch: int = 1, warmup: int = 10,
          runs: int = 100, check_manifest: bool = True) -> dict:
    """Return bench_session's figures for the artifact at path, run as `run` says."""
    return bench_session(Session(path, check_manifest=check_manifest, run=run), batch, warmup, runs)


def estimated(path: str | Path) -> dict | None:
    """Return the compiler's estimates for an artifact no engine here runs (an NPU's file, fnx.compilation), as a row
    marked `estimate`; None for an artifact an engine runs, or one whose manifest holds no compilation."""
    from fnx.formats import detect_format
    from fnx.manifest import read_manifest
    from fnx.runtime.engines import ENGINES

    path = Path(path)
    fmt = detect_format(path)
    if any(fmt.name in e.formats for e in ENGINES.values()):
        return None
    m = read_manifest(path)
    if m is None or m.compilation is None:
        return None
    return estimate_row(path.name, m)


def estimate_row(artifact: str, manifest) -> dict:
    """Return a compiled artifact's row: what it is, its compiler's estimates, and the parity of its source file."""
    cosines = [o.cosine for o in manifest.parity.outputs] if manifest.parity else []
    return {"artifact": artifact, "format": manifest.artifact.format, "precision": manifest.artifact.precision,
            **manifest.compilation.row(), "source_cosine": min(cosines) if cosines else None,
            "file_mb": (manifest.artifact.size_bytes or 0) / 1e6}
