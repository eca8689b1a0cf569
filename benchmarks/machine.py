"""The machine under the benchmarks: roofline references, other processes' load, CPU and package facts."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.context import Ctx
from benchmarks.timing import time_engine, time_torch


def gemm_peak(ctx: Ctx, threads: int = 1) -> float:
    """fp32 GMAC/s of a 2048x2048 torch.mm (MKL SGEMM) at a fixed thread count: the roofline asked for (cached)."""
    key = ("gemm_peak", threads)
    if key not in ctx.cache:
        import torch

        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        ms = time_torch(lambda x: torch.mm(x, b), a, warmup=2, runs=3 if ctx.quick else 6, threads=threads)
        ctx.cache[key] = n ** 3 / (np.median(ms) / 1e3) / 1e9
    return ctx.cache[key]


def dense_conv_peak(ctx: Ctx) -> float | None:
    """fp32 GMAC/s of a dense 3x3 conv stack (10 layers, 192x28x28) in LiteRT/XNNPACK on 1 thread (cached).

    A second reference beside torch.mm: on CPUs where MKL's SGEMM does not use the widest vector units
    (AMD with AVX-512), XNNPACK and oneDNN convs run well above it.
    """
    key = "dense_conv_peak"
    if key not in ctx.cache:
        import torch

        from benchmarks.operators import macs, make_stack, to_tflite

        try:
            m = make_stack("Conv", 192)
            x = torch.randn(1, 28, 28, 192)
            path = ctx.work / "peak_conv.tflite"
            to_tflite(m, x, path, int8=False)
            ms = np.median(time_engine(path, x.numpy(), 3, 10 if ctx.quick else 30, engine="litert"))
            ctx.cache[key] = macs("Conv", 192, 28) / (ms / 1e3) / 1e9
        except Exception:  # noqa: BLE001
            ctx.cache[key] = None
    return ctx.cache[key]


def machine_load() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat (to tell how busy other processes were)."""
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals[:8]) - idle, sum(vals[:8])


def other_busy(interval: float = 1.0) -> float:
    """Share of the machine's CPUs that other processes used over the next `interval` seconds."""
    b0, own0, t0 = machine_load()[0], own_cpu_seconds(), time.perf_counter()
    time.sleep(interval)
    busy = (machine_load()[0] - b0) / os.sysconf("SC_CLK_TCK")
    wall = time.perf_counter() - t0
    return max(0.0, (busy - (own_cpu_seconds() - own0)) / (wall * (os.cpu_count() or 1)))


def wait_quiet(ctx: "Ctx", threshold: float = 0.1, max_wait: float = 120.0) -> None:
    """Before a measurement: wait (at most max_wait s) until other processes use < threshold of the CPUs."""
    t0 = time.perf_counter()
    load = other_busy(0.5)
    if load < threshold:
        return
    while load >= threshold and time.perf_counter() - t0 < max_wait:
        load = other_busy(2.0)
    ctx.log(f"    waited {time.perf_counter() - t0:.0f} s for other processes to quiet down (now {100 * load:.0f}%)")


def own_cpu_seconds() -> float:
    import resource

    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def cpu_info() -> dict:
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown"
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return {"model": model, "cores": os.cpu_count(), "simd": simd}


def machine_lines() -> list[str]:
    cpu = cpu_info()
    from fnx.versions import versions

    v = versions(("torch", "onnx", "onnxruntime", "ai-edge-litert", "litert-torch", "torchao", "openvino", "nncf", "numpy"),
                 missing="not installed")
    return [
        f"- **CPU**: {cpu['model']} — {cpu['cores']} logical cores visible; SIMD: {', '.join(cpu['simd']) or 'n/a'}",
        f"- **OS**: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- **Python**: {platform.python_version()}",
        "- **Packages**: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- **Date**: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
    ]
