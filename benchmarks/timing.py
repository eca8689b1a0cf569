"""Timing: repeated and interleaved calls, statistics, PyTorch at a fixed thread count, engines through fnx.runtime."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import numpy as np


def time_fn(fn: Callable[[], object], warmup: int, runs: int) -> np.ndarray:
    """Return the wall time of each of `runs` calls of fn in ms, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def interleaved(fns: dict[str, Callable[[], object]], warmup: int, runs: int, block: int = 10) -> dict[str, np.ndarray]:
    """Time several callables in alternating blocks of `block` calls (order reversed every round), so drift and
    other processes' load hit them alike. Returns {key: ms per call}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    r = 0
    while any(len(v) < runs for v in out.values()):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            fn = fns[k]
            for _ in range(min(block, runs - len(out[k]))):
                t0 = time.perf_counter()
                fn()
                out[k].append((time.perf_counter() - t0) * 1e3)
        r += 1
    return {k: np.array(v) for k, v in out.items()}


def median_ms(fn: Callable[[], object], warmup: int, runs: int) -> float:
    """Return the median wall time of fn in ms (time_fn's runs)."""
    return float(np.median(time_fn(fn, warmup, runs)))


def stats(ms: np.ndarray) -> dict:
    return {"median_ms": float(np.median(ms)), "mean_ms": float(ms.mean()), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90)), "runs": int(len(ms))}


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def time_torch(model, x, warmup: int, runs: int, threads: int = 1) -> np.ndarray:
    """Latency (ms per call) of a PyTorch eager model on x at a fixed thread count."""
    import torch

    with torch_threads(threads), torch.inference_mode():
        return time_fn(lambda: model(x), warmup, runs)


def engine_call(path: Path, x: np.ndarray | None = None, threads: int = 1, engine: str | None = None,
                inference_precision: str | None = None):
    """Return (call, engine): a zero-argument callable running the artifact's bare engine (fnx.runtime's registry,
    no Session work) on x encoded to the engine's input dtype (zeros of its own shape when x is None)."""
    from fnx.runtime.engines import open_engine
    from fnx.runtime.placement import Placement

    eng = open_engine(path, Placement("cpu", threads, inference_precision=inference_precision), engine)
    info = eng.inputs[0]
    feed = info.encode(x) if x is not None else np.zeros([d or 1 for d in info.shape], info.dtype)
    return (lambda: eng.run([feed])), eng


def time_engine(path: Path, x: np.ndarray | None, warmup: int, runs: int, threads: int = 1,
                engine: str | None = None) -> np.ndarray:
    """Latency (ms per call) of the bare engine on x: the input copy-in, the run and the output copy-out."""
    call, _ = engine_call(path, x, threads, engine)
    return time_fn(call, warmup, runs)


def run_float(path: Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Return the artifact's first output as floats for a batch (int8 I/O handled by fnx's Session)."""
    from fnx.runtime import Session

    return Session(path, device="cpu", threads=threads).run(x)[0]
