"""`fnx serve` under load: requests/s and p50/p99 at concurrency 1/4/16 against the Session in process.

One FasterNet-T0 224 ONNX fp32 artifact with a dynamic batch axis, served three times in a row on this machine:
batching up to 8 with a 5 ms window, batching up to 8 with no window (a batch takes what queued while the engine
was busy), and no batching (--max-batch 1). Clients are tritonclient[http] (binary tensors), one
per thread; the in-process baseline is Session.run (tensors) and Session.predict (one JPEG) in a loop on the same
artifact, engine and thread count. Client and server share this machine's cores, as on a device.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f

NAME = "serve"
TITLE = "fnx serve: an HTTP endpoint against the Session in process"
THREADS = 2
CONCURRENCY = (1, 4, 16)


def _export(ctx: Ctx):
    from fnx.exporter import ExportOptions, export_model

    (res,) = export_model("fasternet_t0", ExportOptions(formats=("onnx",), weights=str(checkpoint(ctx, "fasternet_t0")),
                                                        img_size=224, dynamic_batch=True, out_dir=ctx.work / "serve"))
    return res.artifact


def _jpeg(ctx: Ctx) -> bytes:
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    (ctx.work / "serve" / "photo.jpg").write_bytes(buf.getvalue())
    return buf.getvalue()


def _in_process(path, n: int) -> dict:
    from fnx.runtime import load

    session = load(path, device="cpu", threads=THREADS, engine="onnxruntime")
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    photo = path.parent / "photo.jpg"
    out = {}
    for what, call in (("tensor", lambda: session.run(x)), ("image", lambda: session.predict([photo], topk=5))):
        for _ in range(5):
            call()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out[what] = _stats(times, sum(times))
    return out


def _stats(latencies: list[float], wall: float) -> dict:
    ms = np.asarray(latencies) * 1e3
    return {"rps": len(ms) / wall, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def _load(url: str, what: str, concurrency: int, n: int, jpeg: bytes) -> dict:
    """n requests from `concurrency` client threads; returns req/s, p50/p99 and the error count."""
    import requests
    import tritonclient.http as tritonhttp

    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    per = n // concurrency

    def client(_: int) -> tuple[list[float], int]:
        c = tritonhttp.InferenceServerClient(url, network_timeout=120)
        http = requests.Session()
        times, errors = [], 0
        for _ in range(per):
            t0 = time.perf_counter()
            try:
                if what == "tensor":
                    inp = tritonhttp.InferInput("input", list(x.shape), "FP32")
                    inp.set_data_from_numpy(x)
                    c.infer("t0", [inp])
                else:
                    r = http.post(f"http://{url}/v2/models/t0/classify", data=jpeg, timeout=120,
                                  headers={"Content-Type": "image/jpeg"})
                    errors += r.status_code != 200
            except Exception:  # noqa: BLE001 - counted, reported
                errors += 1
            times.append(time.perf_counter() - t0)
        return times, errors

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(client, range(concurrency)))
    wall = time.perf_counter() - t0
    stats = _stats([t for p in parts for t in p[0]], wall)
    stats["errors"] = sum(p[1] for p in parts)
    return stats


def _batch_mean(url: str) -> tuple[float, float]:
    import requests

    text = requests.get(f"http://{url}/metrics", timeout=10).text
    value = {k: 0.0 for k in ("fnx_batch_size_sum", "fnx_batch_size_count")}
    for line in text.splitlines():
        for k in value:
            if line.startswith(k + "{"):
                value[k] += float(line.rsplit(" ", 1)[1])
    return value["fnx_batch_size_sum"], value["fnx_batch_size_count"]


def _rss_mib(pid: int) -> float | None:
    """The server's resident memory (MiB) after its load: what it would take of a Pi's RAM (Linux only)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(ctx: Ctx) -> Section:
    from fnx.dev.serve_process import ServerProcess

    n = 96 if ctx.quick else 320
    path = _export(ctx)
    jpeg = _jpeg(ctx)
    base = _in_process(path, n)
    ctx.log(f"    in process: tensor {base['tensor']['rps']:.1f} req/s, image {base['image']['rps']:.1f} req/s")
    rows, headline, rss, rps = [], {}, {}, {}
    configs = (("batching (max 8, 5 ms)", 8, 5), ("batching (max 8, 0 ms)", 8, 0), ("no batching", 1, 0))
    for label, max_batch, delay in configs:
        with ServerProcess(f"t0={path}", "--threads", str(THREADS), "--engine", "onnxruntime", "--max-batch",
                           str(max_batch), "--max-delay-ms", str(delay), "--queue", "256", omp_threads=THREADS) as server:
            for what in ("tensor", "image"):
                for conc in CONCURRENCY:
                    before = _batch_mean(server.url)
                    s = _load(server.url, what, conc, n, jpeg)
                    after = _batch_mean(server.url)
                    mean_batch = (after[0] - before[0]) / max(after[1] - before[1], 1)
                    ratio = s["rps"] / base[what]["rps"]
                    headline[(label, what, conc)] = ratio
                    rps[(label, what, conc)] = s["rps"]
                    rows.append([label, what, conc, f(s["rps"], 1), f(s["p50"], 1), f(s["p99"], 1),
                                 f(mean_batch, 2), f(ratio, 2, "x"), s["errors"]])
                    ctx.log(f"    {label} {what} c={conc}: {s['rps']:.1f} req/s p50 {s['p50']:.1f} ms, batch "
                            f"{mean_batch:.2f}, {ratio:.2f}x in-process")
            rss[label] = _rss_mib(server.proc.pid)
            server.stop()
    for what in ("tensor", "image"):
        b = base[what]
        rows.append(["in process", f"{what} (Session.{'run' if what == 'tensor' else 'predict'})", 1, f(b["rps"], 1),
                     f(b["p50"], 1), f(b["p99"], 1), "1", "1.00x", 0])
    sec = Section(NAME, TITLE)
    sec.intro = (f"FasterNet-T0 224 ONNX fp32 (dynamic batch), ONNX Runtime, {THREADS} engine threads, server and "
                 f"clients on the same machine. Tensor requests carry one 1x3x224x224 input (binary tensor data); image "
                 f"requests one 640x480 JPEG, preprocessed as `fnx run` does. {n} requests per row.")
    sec.tables.append(Table(
        "Requests per second and latency by concurrency, with and without dynamic batching",
        ["server", "request", "concurrency", "req/s", "p50 ms", "p99 ms", "mean batch", "vs in process", "errors"], rows,
        "vs in process: req/s over the same request type's in-process loop (Session.run or Session.predict, batch 1). "
        "Mean batch: samples per engine call during that row (from /metrics)."))
    gains = [f"{what} requests at concurrency {conc}: batching with no window {rps[('batching (max 8, 0 ms)', what, conc)] / rps[('no batching', what, conc)]:.2f}x, "
             f"with a 5 ms window {rps[('batching (max 8, 5 ms)', what, conc)] / rps[('no batching', what, conc)]:.2f}x the "
             f"requests/s of no batching" for what in ("tensor", "image") for conc in (1, 16)]
    sec.notes = ["Batching gain, same run: " + "; ".join(gains) + ". Client threads share the server's cores here: "
                 "on a device with a remote client the engine has the cores to itself."] + [f"Server resident memory after its rows ({label}): {f(mib, 0)} MiB (VmRSS: Python, starlette, uvicorn, "
                 f"ONNX Runtime and the model)" for label, mib in rss.items()]
    sec.headline = {"ratio": headline, "rss_mib": rss}
    return sec
