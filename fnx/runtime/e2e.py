"""End-to-end timing, file -> label: decode, preprocess, invoke and post-process per image, sequential and pipelined.

The engine is 3% of the time on large JPEGs (docs/BENCHMARKS.md): this says where the rest goes, per
preprocessing mode, beside the engine-only figure. Torch-free.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.preprocess import FAST_MARGIN, PREPROCESS_MODES, list_images, load_image, preprocess, to_layout

WARMUP = 2


def e2e(session, folder: str | Path, modes: tuple[str, ...] = PREPROCESS_MODES, workers: int = 2, batch_size: int = 8,
        limit: int | None = None) -> dict:
    """Return {"images", "invoke_only_ips", "rows": [{mode, decode_ms, preprocess_ms, invoke_ms, post_ms,
    sequential_ips, pipelined_ips}]} for the images under folder (medians per image; img/s over all)."""
    paths = list_images(folder)[:limit]
    if len(paths) < 2:
        raise FnxError(f"{folder} holds {len(paths)} image(s); the end-to-end benchmark needs at least 2")
    rows, invoke_all = [], []
    for mode in modes:
        min_short = int(FAST_MARGIN * session.preprocessing.resize_short) if mode == "fast" else None
        parts: dict[str, list[float]] = {"decode": [], "preprocess": [], "invoke": [], "post": []}
        for i, p in enumerate(paths[:WARMUP] + paths):
            t0 = time.perf_counter()
            image = load_image(p, min_short)
            t1 = time.perf_counter()
            x = to_layout(preprocess(image, session.preprocessing, mode=mode)[None], session.layout)
            t2 = time.perf_counter()
            out = session.run(x)[0]
            t3 = time.perf_counter()
            if out.ndim == 2:
                session.top(out[0], 5, str(p))
            t4 = time.perf_counter()
            if i >= WARMUP:
                for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    parts[key].append(dt * 1e3)
        invoke_all += parts["invoke"]
        sequential = len(paths) / (sum(sum(v) for v in parts.values()) / 1e3)
        t0 = time.perf_counter()
        failed = sum(not r.ok for r in session.stream(paths, batch_size=batch_size, workers=workers, mode=mode))
        pipelined = (len(paths) - failed) / (time.perf_counter() - t0)
        rows.append({"mode": mode, **{f"{k}_ms": float(np.median(v)) for k, v in parts.items()},
                     "sequential_ips": sequential, "pipelined_ips": pipelined, "failed": failed})
    return {"images": len(paths), "engine": session.engine_label, "workers": workers, "batch_size": batch_size,
            "invoke_only_ips": 1e3 / float(np.median(invoke_all)), "rows": rows}
