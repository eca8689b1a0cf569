"""`fnx run` and `fnx bench`: an artifact on this machine's engines (torch-free)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fnx.cli.app import app
from fnx.cli.common import AsJson, Device, DeviceChoice, Engine, Threads, command, console, err_console, need_file, print_json
from fnx.errors import FnxError


@command(app, "run")
def run_cmd(
    artifact: Path = typer.Argument(..., help="An exported artifact (its manifest, if beside it, is used)."),
    images: list[Path] = typer.Argument(..., help="Image files (a camera frame saved as a file works too)."),
    topk: int = typer.Option(5, "--topk", min=1, help="Classes to show per image."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A text file with one label per line (overrides the manifest's)."),
    device: Device = DeviceChoice("auto"),
    threads: Threads = None,
    engine: Engine = None,
    as_json: AsJson = False,
) -> None:
    """Classify images with an exported artifact (torch-free: needs numpy, Pillow and one engine)."""
    from fnx.runtime import load

    t0 = time.perf_counter()
    session = load(need_file(artifact, "model file"), device=device.value, threads=threads,
                   engine=engine.value if engine else None)
    if labels is not None:
        session.labels = [line.strip() for line in need_file(labels, "labels file").read_text().splitlines() if line.strip()]
    load_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    preds = session.predict([str(p) for p in images], topk=topk)
    run_ms = (time.perf_counter() - t1) * 1e3
    if as_json:
        print_json({"artifact": str(artifact), "engine": session.engine_label, "load_ms": load_ms, "predict_ms": run_ms,
                    "predictions": [p.to_dict() for p in preds]})
        return
    for p in preds:
        table = Table(title=p.source, title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("label")
        table.add_column("score", justify="right")
        for r, (lab, sc) in enumerate(zip(p.labels, p.scores), 1):
            table.add_row(str(r), lab, f"{sc:.4f}")
        console.print(table)
    console.print(f"[dim]{session.engine_label}: load {load_ms:.0f} ms, {len(preds)} image(s) in {run_ms:.1f} ms[/]")


@command(app, "bench")
def bench_cmd(
    artifacts: list[Path] = typer.Argument(..., help="One or more exported artifacts."),
    threads: str = typer.Option("1", "--threads", help="Comma-separated thread counts, e.g. 1,2,4."),
    batch: int = typer.Option(1, "--batch", min=1, help="Batch size."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed warm-up runs."),
    runs: int = typer.Option(50, "--runs", min=1, help="Timed runs."),
    paper_protocol: bool = typer.Option(False, "--paper-protocol", help="The paper's protocol: batch 1, one thread, 10 warm-up, 200 timed runs, mean."),
    device: Device = DeviceChoice("cpu"),
    engine: Engine = None,
    as_json: AsJson = False,
) -> None:
    """Latency, throughput and achieved GFLOPS (the paper's metric) per artifact x thread count."""
    from fnx.runtime.bench import bench

    if paper_protocol:
        threads, batch, warmup, runs = "1", 1, 10, 200
    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise FnxError(f"--threads takes comma-separated integers like 1,2,4; got {threads!r}") from None
    if not counts or min(counts) < 1:
        raise FnxError(f"--threads takes thread counts of at least 1, like 1,2,4; got {threads!r}")
    rows = []
    for a in artifacts:
        need_file(a, "model file")
        for t in counts:
            with err_console.status(f"bench {a.name}, {t} thread(s)"):
                rows.append(bench(a, threads=t, batch=batch, warmup=warmup, runs=runs, device=device.value,
                                  engine=engine.value if engine else None))
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"fnx bench (batch {batch}, {warmup} warm-up, {runs} runs)")
    for col in ("artifact", "engine", "thr", "mean ms", "p50", "p90", "p99", "img/s", "GFLOPS", "RSS MB", "file MB"):
        table.add_column(col, justify="left" if col in ("artifact", "engine") else "right", overflow="fold")
    for r in rows:
        gf = "-" if r["gflops"] is None else f"{r['gflops']:.1f}"
        table.add_row(r["artifact"], r["engine"], str(r["threads"]), f"{r['mean_ms']:.2f}", f"{r['p50_ms']:.2f}",
                      f"{r['p90_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['throughput_ips']:.1f}", gf,
                      f"{r['peak_rss_mb']:.0f}", f"{r['file_mb']:.2f}")
    console.print(table)
