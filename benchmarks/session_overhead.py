"""fnx's runtime Session.run against the bare engine call on the same engine.

Bare calls: the registry engine's own run (LiteRT `set_tensor / invoke / get_tensor`; ONNX Runtime
`InferenceSession.run`). The two are
interleaved call by call (alternating which goes first) so drift and other load hit both alike.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.context import Ctx, artifacts
from benchmarks.report import Section, Table, f, pretty, short_error
from benchmarks.timing import engine_call

NAME = "session_overhead"
TITLE = "fnx Session overhead"


def bare_call(session):
    """Return a zero-argument callable that runs the same engine directly (fnx.runtime's Engine.run, no Session work)
    on a fixed input, and that input."""
    shape = tuple(d or 1 for d in session.input_shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    call, _ = engine_call(session.path, x, threads=1, engine=session.engine_name)
    return call, x


def run(ctx: Ctx) -> Section:
    from fnx.runtime import load

    warmup, pairs = (10, 100) if ctx.quick else (20, 300)
    sec = Section(NAME, TITLE)
    rows, overhead, notes = [], {}, []
    for name in ("fasternet_t0", "fasternet_t2"):
        arts = artifacts(ctx, name, "fp32")
        for fmt, label in (("tflite", "LiteRT"), ("onnx", "ONNX Runtime")):
            path = arts[fmt]
            if isinstance(path, Exception):
                notes.append(f"{pretty(name)} {fmt}: export failed ({short_error(path)})")
                continue
            session = load(path, device="cpu", threads=1)
            bare, x = bare_call(session)
            wrapped = lambda: session.run(x)  # noqa: E731
            for _ in range(warmup):
                bare()
                wrapped()
            tb, tw = np.empty(pairs), np.empty(pairs)
            for i in range(pairs):
                order = ((tb, bare), (tw, wrapped)) if i % 2 == 0 else ((tw, wrapped), (tb, bare))
                for arr, fn in order:
                    t0 = time.perf_counter()
                    fn()
                    arr[i] = (time.perf_counter() - t0) * 1e3
            mb, mw = float(np.median(tb)), float(np.median(tw))
            paired = float(np.median(tw - tb))
            pct = 100 * paired / mb
            overhead[(name, label)] = pct
            rows.append([pretty(name), label, f(mb, 3), f(mw, 3), f(1e3 * paired, 0), f(pct, 2, "%")])
            ctx.log(f"    {pretty(name)} {label}: bare {mb:.3f} ms, Session {mw:.3f} ms, overhead {pct:+.2f}%")
    sec.tables.append(Table(
        f"Session.run vs the bare engine call (fp32, batch 1, 1 thread, {pairs} interleaved pairs)",
        ["model", "engine", "bare median ms", "Session median ms", "median paired difference µs", "overhead"], rows,
        "Overhead = median over pairs of (Session - bare) / bare median. fnx's goal: <= 5%."))
    sec.intro = ("What fnx's runtime adds on top of the engine: input checks, dtype/layout handling, output copy and "
                 "dequantization. Both sides use the same engine, same input, same thread count.")
    sec.notes = notes
    sec.headline = {"overhead": overhead}
    return sec
