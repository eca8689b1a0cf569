"""Shared pieces: timing, thread control, lively random weights, cached exports, tables and sections."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

# Converters print progress trees and C++ logs unless told not to; set before they are imported.
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message=".*random weights.*")
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

REPO = Path(__file__).resolve().parent.parent

# The paper's numbers (Chen et al., CVPR 2023), quoted beside ours: PyTorch eager, BN fused, batch 1,
# one thread of an Intel i9-9900X.
PAPER_CPU_MS = {"fasternet_t0": 9.2, "fasternet_t1": 17.7, "fasternet_t2": 33.5, "fasternet_s": 71.2,
                "fasternet_m": 129.5, "fasternet_l": 219.5, "mobilevit_xxs": 30.8}
PAPER_TABLE1_GFLOPS = {"Conv": 71.9, "GConv": 25.9, "DWConv": 6.4, "PConv": 39.9}


# ----------------------------------------------------------------------------------------------- results

@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Section:
    """What one benchmark hands back: tables, figures, prose and the headline numbers."""

    name: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (path relative to the doc, caption)
    notes: list[str] = field(default_factory=list)
    headline: dict = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0
    other_load: float | None = None


@dataclass
class Ctx:
    """Run-wide settings and caches shared by the benchmarks of one `python -m benchmarks` run."""

    quick: bool
    work: Path
    img_dir: Path
    doc_dir: Path
    log: Callable[[str], None] = print
    cache: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return ["fasternet_t0", "fasternet_t2"] if self.quick else ["fasternet_t0", "fasternet_t1", "fasternet_t2", "fasternet_s"]

    def img(self, name: str) -> tuple[Path, str]:
        """Return (absolute path, path relative to the doc) for a figure."""
        path = self.img_dir / name
        return path, os.path.relpath(path, self.doc_dir)


# ----------------------------------------------------------------------------------------------- timing

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


def ort_session(path: Path, threads: int):
    """A bare ONNX Runtime CPU session with fixed intra-op threads (no spinning pool beyond them)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def tflite_interpreter(path: Path, threads: int):
    """A bare LiteRT interpreter (XNNPACK delegate applied by default) with fixed threads."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def time_ort(path: Path, x: np.ndarray, warmup: int, runs: int, threads: int = 1) -> np.ndarray:
    sess = ort_session(path, threads)
    feed = {sess.get_inputs()[0].name: x}
    return time_fn(lambda: sess.run(None, feed), warmup, runs)


def time_tflite(path: Path, x: np.ndarray | None, warmup: int, runs: int, threads: int = 1) -> np.ndarray:
    """Latency of set_tensor + invoke + get_tensor; x=None feeds zeros of the input's own dtype and shape."""
    it = tflite_interpreter(path, threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if x is None or x.dtype != inp["dtype"]:
        x = quantize_input(x, inp) if x is not None else np.zeros(inp["shape"], inp["dtype"])

    def call():
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"])

    return time_fn(call, warmup, runs)


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(detail["dtype"])


# ----------------------------------------------------------------------------------------------- quiet

@contextlib.contextmanager
def quiet():
    """Silence converters: Python warnings/logging and the C++ writes to fds 1 and 2."""
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(open(os.devnull, "w")):
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        os.close(devnull)
        logging.root.setLevel(level)


# ----------------------------------------------------------------------------------------------- weights

def lively_model(name: str):
    """A FasterNet (1000 classes) with lively random weights, in eval mode, unfolded."""
    from fnx.models import create_model
    from fnx.models.init import lively

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lively(create_model(name, weights="random", num_classes=1000)).eval()


def checkpoint(ctx: Ctx, name: str) -> Path:
    """The lively model's state dict on disk (what `fnx export --weights PATH` takes)."""
    import torch

    path = ctx.work / f"{name}_lively.pth"
    if not path.exists():
        torch.save(lively_model(name).state_dict(), path)
    return path


def artifacts(ctx: Ctx, name: str, precision: str, formats=("onnx", "tflite")) -> dict[str, Path]:
    """fnx's own artifacts for a model (exported once per run through fnx.exporter.pipeline.export_model).

    Returns {format: path}; an export that fails is reported as {format: Exception}.
    """
    want = [f for f in formats if (name, precision, f) not in ctx.cache]
    if want:
        err = _export(ctx, name, precision, want)
        if err is not None and len(want) > 1:  # one format's failure must not cost the other its artifact
            ctx.log(f"    {name} {precision} {'+'.join(want)} failed ({short_error(err)}); retrying one format at a time")
            for fmt in want:
                _export(ctx, name, precision, [fmt])
    return {f: ctx.cache[(name, precision, f)] for f in formats}


def _export(ctx: Ctx, name: str, precision: str, want: list[str]) -> Exception | None:
    from fnx.exporter.pipeline import ExportOptions, export_model

    opts = ExportOptions(formats=tuple(want), precision=precision, weights=str(checkpoint(ctx, name)), img_size=224,
                         out_dir=ctx.work / "exports", verify=False,
                         calibration={"data": "synthetic", "size": 32, "min_cosine": 0.5})
    t0 = time.perf_counter()
    error = None
    try:
        with quiet():
            results = export_model(name, opts)
        for r in results:
            ctx.cache[(name, precision, r.manifest["artifact"]["format"])] = r.artifact
    except Exception as e:  # noqa: BLE001 - reported in the tables
        error = e
        for f in want:
            ctx.cache[(name, precision, f)] = e
    ctx.cache[("export_s", name, precision, "+".join(want))] = time.perf_counter() - t0
    ctx.log(f"    exported {name} {precision} {'+'.join(want)} in {time.perf_counter() - t0:.0f} s"
            + (" (failed)" if error else ""))
    return error


# ----------------------------------------------------------------------------------------------- machine

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
            ms = np.median(time_tflite(path, x.numpy(), 3, 10 if ctx.quick else 30))
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


def versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "onnx", "onnxruntime", "ai-edge-litert", "litert-torch", "torchao", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


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
    v = versions()
    return [
        f"- **CPU**: {cpu['model']} — {cpu['cores']} logical cores visible; SIMD: {', '.join(cpu['simd']) or 'n/a'}",
        f"- **OS**: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- **Python**: {platform.python_version()}",
        "- **Packages**: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- **Date**: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
    ]


# ----------------------------------------------------------------------------------------------- formatting

def f(x, digits: int = 1, suffix: str = "") -> str:
    """Format a number for a table ('—' for missing)."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}{suffix}"


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.{digits}f}x"


def short_error(e: BaseException, n: int = 200) -> str:
    """One line of an exception: its type and message (the middle cut out when long, the end kept: C++ errors say
    what went wrong last)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if len(msg) > n:
        msg = msg[: n // 3] + " … " + msg[-(2 * n) // 3:]
    return f"{type(e).__name__}: {msg}"


def act_name(name: str) -> str:
    from fnx.models import get_variant

    return {"gelu": "GELU", "relu": "ReLU"}.get(get_variant(name).act, get_variant(name).act)


def pretty(name: str) -> str:
    return name.replace("fasternet_", "FasterNet-").upper().replace("FASTERNET-", "FasterNet-")


def _cell(c) -> str:
    return str(c).replace("|", "\\|")


def markdown_table(t: Table) -> str:
    head = "| " + " | ".join(_cell(h) for h in t.headers) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(t.headers))) + "|"
    rows = ["| " + " | ".join(_cell(c) for c in r) + " |" for r in t.rows]
    out = [f"**{t.title}**", "", head, sep, *rows]
    if t.note:
        out += ["", t.note]
    return "\n".join(out)


def print_table(t: Table) -> None:
    try:
        from rich.console import Console
        from rich.table import Table as RTable

        rt = RTable(title=t.title, title_justify="left")
        for i, h in enumerate(t.headers):
            rt.add_column(h, justify="left" if i == 0 else "right")
        for r in t.rows:
            rt.add_row(*[str(c) for c in r])
        Console(width=160).print(rt)
        if t.note:
            print(t.note)
    except ImportError:
        print(markdown_table(t))
    print()


def plt():
    """matplotlib.pyplot on the Agg backend (None if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot

        return pyplot
    except ImportError:
        return None
