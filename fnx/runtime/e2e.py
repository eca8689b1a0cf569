"""End-to-end timing, file -> label: decode, preprocess, invoke and post-process per image, sequential and pipelined.

The engine is 3% of the time on large JPEGs (docs/BENCHMARKS.md): this says where the rest goes, per
preprocessing mode, beside the engine-only figure, and how close the pipelined run comes to its compute bound:
the cores this process may use divided by one image's CPU time (every stage, every thread of the process),
measured in the sequential pass of the same run. Torch-free.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.preprocess import FAST_MARGIN, PREPROCESS_MODES, list_images, load_image, preprocess, to_layout
from fnx.runtime.loadwatch import OtherLoad
from fnx.runtime.sizing import size_pipeline, usable_cores

WARMUP = 2
STAGES = ("decode", "preprocess", "invoke", "post")


def e2e(session, folder: str | Path, modes: tuple[str, ...] = PREPROCESS_MODES, workers: int | None = None,
        batch_size: int = 8, limit: int | None = None, cores: int | None = None) -> dict:
    """Return {"images", "cores", "invoke_only_ips", "rows": [{mode, decode_ms, ..., decode_cpu_ms, ..., cpu_ms,
    sequential_ips, pipelined_ips, bound_ips, fraction, workers}]} for the images under folder (a stage's _ms: its
    median wall time per image; _cpu_ms: the whole process's mean CPU per image in it, cpu_ms their sum; img/s over
    all).

    workers=None sizes the decode pool per mode around the session's engine threads (fnx.runtime.sizing); cores
    defaults to the cores this process may use. bound_ips = cores / cpu_ms; fraction = pipelined_ips / bound_ips;
    other_load: the share of the machine's CPUs other processes used during the pipelined run (None: unknown).
    """
    paths = list_images(folder)[:limit]
    if len(paths) < 2:
        raise FnxError(f"{folder} holds {len(paths)} image(s); the end-to-end benchmark needs at least 2")
    cores = cores or usable_cores()
    rows, invoke_all = [], []
    for mode in modes:
        parts, cpu = sequential(session, paths, mode)
        cpu_ms = sum(cpu.values())
        invoke_all += parts["invoke"]
        sequential_ips = len(paths) / (sum(sum(v) for v in parts.values()) / 1e3)
        pool = workers if workers is not None else size_pipeline(cores, mode, threads=session.threads or 1).workers
        t0, others = time.perf_counter(), OtherLoad()
        failed = sum(not r.ok for r in session.stream(paths, batch_size=batch_size, workers=pool, mode=mode))
        pipelined = (len(paths) - failed) / (time.perf_counter() - t0)
        bound = cores * 1e3 / cpu_ms
        rows.append({"mode": mode, **{f"{k}_ms": float(np.median(v)) for k, v in parts.items()},
                     **{f"{k}_cpu_ms": v for k, v in cpu.items()}, "cpu_ms": cpu_ms,
                     "sequential_ips": sequential_ips, "pipelined_ips": pipelined, "bound_ips": bound,
                     "fraction": pipelined / bound, "workers": pool, "failed": failed,
                     "other_load": others.share()})
    return {"images": len(paths), "engine": session.engine_label, "threads": session.threads, "cores": cores,
            "batch_size": batch_size, "invoke_only_ips": 1e3 / float(np.median(invoke_all)), "rows": rows}


def sequential(session, paths: list[Path], mode: str) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Return each stage's wall ms per image over paths, one image after another, and each stage's mean CPU ms per
    image, spent by the whole process (the engine's own threads included)."""
    min_short = int(FAST_MARGIN * session.preprocessing.resize_short) if mode == "fast" else None
    parts: dict[str, list[float]] = {k: [] for k in STAGES}
    cpu = dict.fromkeys(STAGES, 0.0)
    for i, p in enumerate(paths[:WARMUP] + paths):
        wall, clock = [time.perf_counter()], [time.process_time()]

        def lap() -> None:
            wall.append(time.perf_counter())
            clock.append(time.process_time())

        image = load_image(p, min_short)
        lap()
        x = to_layout(preprocess(image, session.preprocessing, mode=mode)[None], session.layout)
        lap()
        out = session.run(x)[0]
        lap()
        if out.ndim == 2:
            session.top(out[0], 5, str(p))
        lap()
        if i >= WARMUP:
            for k, key in enumerate(STAGES):
                parts[key].append((wall[k + 1] - wall[k]) * 1e3)
                cpu[key] += (clock[k + 1] - clock[k]) * 1e3 / len(paths)
    return parts, cpu
