"""Streaming inference: a bounded pool decodes and preprocesses ahead of the engine; results come in input order.

Memory stays flat whatever the number of inputs (at most `workers * 2 + batch_size` pictures are in flight),
a bad input yields an error record and the stream goes on, and decoding (which releases the GIL in Pillow)
overlaps the engine.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Iterator

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.preprocess import preprocess, to_layout
from fnx.runtime.results import Result
from fnx.runtime.sources import Source, expand

Session = Any  # fnx.runtime.session.Session (which imports this module): what the stream runs on


def _prepare(source: Source, session: Session, mode: str) -> tuple[np.ndarray, float]:
    """Return the source's model-ready HWC array and the ms it took (runs in a worker thread)."""
    if source.error is not None:
        raise FnxError(source.error)
    t0 = time.perf_counter()
    x = preprocess(source.frame if source.frame is not None else source.path, session.preprocessing, mode=mode)
    return x, (time.perf_counter() - t0) * 1e3


def stream(session: Session, inputs: Iterable[Any] | Any, batch_size: int = 8, workers: int = 2, topk: int = 5,
           mode: str = "exact") -> Iterator[Result]:
    """Yield a Result per input, in input order, while a pool of `workers` threads prepares the next ones.

    workers=0 prepares in the calling thread (no pool). Classifier artifacts give predictions (top-k with
    softmax scores); backbones give their raw outputs.
    """
    if batch_size < 1 or workers < 0:
        raise FnxError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    sources = enumerate(expand(inputs))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fnx-decode") if workers else None
    pending: deque[tuple[int, Source, Future | tuple]] = deque()
    in_flight = 2 * workers + batch_size

    def submit() -> None:
        while len(pending) < in_flight:
            nxt = next(sources, None)
            if nxt is None:
                return
            i, src = nxt
            if pool is None:
                try:
                    pending.append((i, src, _prepare(src, session, mode)))
                except FnxError as e:
                    pending.append((i, src, e))
            else:
                pending.append((i, src, pool.submit(_prepare, src, session, mode)))

    try:
        submit()
        while pending:
            batch: list[tuple[int, Source, Any]] = []
            while pending and len(batch) < batch_size:
                i, src, job = pending[0]
                if batch and isinstance(job, Future) and not job.done():
                    break  # run what is ready; the rest joins the next batch
                pending.popleft()
                try:
                    batch.append((i, src, job.result() if isinstance(job, Future) else job))
                except FnxError as e:
                    batch.append((i, src, e))
                submit()
            yield from _run_batch(session, batch, topk)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _run_batch(session: Session, batch: list, topk: int) -> Iterator[Result]:
    good = [(i, src, prepared) for i, src, prepared in batch if not isinstance(prepared, BaseException)]
    outs: list[np.ndarray] = []
    infer_ms = 0.0
    if good:
        x = to_layout(np.stack([p[0] for _, _, p in good]), session.layout)
        t0 = time.perf_counter()
        outs = session.run(x)
        infer_ms = (time.perf_counter() - t0) * 1e3 / len(good)
    row = {i: k for k, (i, _, _) in enumerate(good)}
    for i, src, prepared in batch:
        if isinstance(prepared, BaseException):
            msg = str(prepared) if isinstance(prepared, FnxError) else f"{type(prepared).__name__}: {prepared}"
            yield Result(i, src.name, error=msg)
            continue
        k = row[i]
        result = Result(i, src.name, timings={"prepare_ms": prepared[1], "infer_ms": infer_ms})
        if outs[0].ndim == 2:
            result.prediction = session.top(outs[0][k], topk, src.name)
        else:
            result.outputs = [o[k] for o in outs]
        yield result
