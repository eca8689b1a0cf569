"""`fnx run` and `fnx bench`: an artifact on this machine's engines (torch-free)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fnx.cli.app import app
from fnx.cli.common import (AsJson, CalibData, CalibSize, Device, DeviceChoice, Engine, InferencePrecision, MinCosine,
                            PreprocessChoice, SkipCheck, Threads, command, console, err_console, need_file, print_json,
                            report_failures)
from fnx.errors import FnxError


@command(app, "run")
def run_cmd(
    artifact: Path = typer.Argument(..., help="An exported artifact (its manifest, if beside it, is used)."),
    inputs: list[str] = typer.Argument(..., help="Images, folders (recursive), globs, @list.txt files of paths, videos, camera:N."),
    topk: int = typer.Option(5, "--topk", min=1, help="Classes to show per image."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A text file with one label per line (overrides the manifest's)."),
    device: Device = DeviceChoice("auto"),
    threads: Threads = None,
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    preprocess: PreprocessChoice = typer.Option(PreprocessChoice("fast"), "--preprocess", help="fast: JPEGs decoded at reduced size (2x the resize target kept); exact: the evaluation transform.", case_sensitive=False),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per engine call."),
    workers: int = typer.Option(2, "--workers", min=0, help="Threads decoding and preprocessing ahead of the engine (0: none)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Write one JSON line per input as it is done."),
    as_csv: bool = typer.Option(False, "--csv", help="Write one CSV row per input (top-1) as it is done."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write --jsonl / --csv records to this file instead of stdout."),
    skip_manifest_check: SkipCheck = False,
    as_json: AsJson = False,
) -> None:
    """Classify images, folders and videos with an artifact, streaming (torch-free: numpy, Pillow and one engine)."""
    from fnx.cli.run_output import Writer
    from fnx.runtime import load

    if sum((jsonl, as_csv, as_json)) > 1:
        raise FnxError("choose one of --json, --jsonl and --csv")
    t0 = time.perf_counter()
    session = load(need_file(artifact, "model file"), device=device.value, threads=threads,
                   engine=engine.value if engine else None, check_manifest=not skip_manifest_check,
                   inference_precision=inference_precision.value if inference_precision else None)
    if labels is not None:
        set_labels(session, labels)
    load_ms = (time.perf_counter() - t0) * 1e3
    if session.manifest is not None and session.manifest.weights.kind == "random":
        err_console.print("[yellow]warning:[/] this artifact was exported from RANDOM weights (--weights random): "
                          "its predictions mean nothing", highlight=False, soft_wrap=True)
    fmt = "jsonl" if jsonl else "csv" if as_csv else "json" if as_json else "table"
    sink = open(out, "w", newline="") if out else None
    writer = Writer(console, fmt, sink)
    errors, n, t1 = [], 0, time.perf_counter()
    try:
        with progress(fmt) as (bar, task):
            for r in session.stream(inputs, batch_size=batch_size, workers=workers, topk=topk, mode=preprocess.value):
                n += 1
                writer.add(r)
                if r.error is not None:
                    errors.append({"source": r.source, "error": r.error})
                bar.update(task, advance=1, description=f"{n} input(s), {n / (time.perf_counter() - t1):.1f} img/s")
    finally:
        writer.close()
        if sink:
            sink.close()
    secs = time.perf_counter() - t1
    summary = {"artifact": str(artifact), "engine": session.engine_label, "inputs": n, "failed": len(errors),
               "seconds": secs, "images_per_s": (n - len(errors)) / secs if secs else None, "load_ms": load_ms,
               "preprocess": preprocess.value, "batch_size": batch_size, "workers": workers,
               "engine_choice": session.engine_choice}
    if fmt == "json":
        print_json({**summary, "predictions": [r.prediction.to_dict() for r in writer.buffer if r.prediction],
                    "errors": errors})
    else:
        err_console.print(f"[dim]{n} input(s), {len(errors)} failed, {secs:.2f} s ({summary['images_per_s'] or 0:.1f} "
                          f"img/s) on {session.engine_label}; preprocess {preprocess.value}, batch {batch_size}, "
                          f"{workers} worker(s); model load {load_ms:.0f} ms[/]", highlight=False)
        if session.engine_choice:
            err_console.print(f"[dim]engine chosen by --device auto: {session.engine_choice}[/]", highlight=False)
    if n == 0:
        raise FnxError("no inputs: pass image files, folders, globs, @list.txt files, videos or camera:N")
    report_failures(errors, n)


def set_labels(session, labels: Path) -> None:
    """Replace the session's labels with a file's (one per line, as many as the model has classes)."""
    names = [line.strip() for line in need_file(labels, "labels file").read_text().splitlines() if line.strip()]
    classes = session.outputs[0].shape[-1]
    if len(names) != classes:
        raise FnxError(f"labels file {labels} has {len(names)} labels but the model has {classes} classes; give one "
                       f"label per line, in class order")
    session.labels = names


@contextlib.contextmanager
def progress(fmt: str):
    """A live count and rate on stderr (only where stderr is a terminal; records and tables go to stdout)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                   transient=True, disable=not err_console.is_terminal)
    with bar:
        yield bar, bar.add_task("starting", total=None)


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
    inference_precision: InferencePrecision = None,
    all_paths: bool = typer.Option(False, "--all", help="The argument is a model name: export it to every format x precision installed here and rank every engine on it (--weights, --calib-data, --data, --out)."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="--all: the weights to export (as fnx export's --weights)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=32, help="--all: input size (default: the variant's)."),
    calib_data: CalibData = None,
    calib_size: CalibSize = 256,
    min_cosine: MinCosine = None,
    data: Optional[Path] = typer.Option(None, "--data", help="--all: labelled image folder (class per subfolder): parity inputs and top-1."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="--all: where the artifacts go (default: ./fnx-bench-all)."),
    precisions: str = typer.Option("fp32,fp16,int8", "--precisions", help="--all: comma-separated precisions to export."),
    e2e_folder: Optional[Path] = typer.Option(None, "--e2e", help="Also time file -> label on this image folder: decode, preprocess, invoke, post-process, sequential and pipelined."),
    e2e_limit: Optional[int] = typer.Option(None, "--e2e-limit", min=2, help="Use at most N images of the --e2e folder."),
    workers: int = typer.Option(2, "--workers", min=0, help="--e2e: decode threads of the pipelined run."),
    skip_manifest_check: SkipCheck = False,
    as_json: AsJson = False,
) -> None:
    """Latency, throughput and achieved GFLOPS (the paper's metric) per artifact x thread count; --e2e: file -> label."""
    from fnx.runtime.bench import bench

    if paper_protocol:
        threads, batch, warmup, runs = "1", 1, 10, 200
    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise FnxError(f"--threads takes comma-separated integers like 1,2,4; got {threads!r}") from None
    if not counts or min(counts) < 1:
        raise FnxError(f"--threads takes thread counts of at least 1, like 1,2,4; got {threads!r}")
    if min_cosine is not None and not all_paths:
        raise FnxError("--min-cosine belongs to fnx bench --all (the int8 guard of the exports it makes)")
    if all_paths:
        from fnx.cli.bench_all import bench_all_cmd

        if len(artifacts) != 1:
            raise FnxError("--all takes one model name, e.g. fnx bench --all fasternet-t2 --calib-data photos/")
        return bench_all_cmd(str(artifacts[0]), counts[0], runs, warmup, weights, img_size, calib_data, calib_size,
                             data, out, precisions, as_json, min_cosine)
    if e2e_folder is not None:
        return e2e_cmd(artifacts, e2e_folder, counts[0], e2e_limit, workers, device.value, engine, skip_manifest_check,
                       as_json)
    rows = []
    for a in artifacts:
        need_file(a, "model file")
        for t in counts:
            with err_console.status(f"bench {a.name}, {t} thread(s)"):
                rows.append(bench(a, threads=t, batch=batch, warmup=warmup, runs=runs, device=device.value,
                                  engine=engine.value if engine else None, check_manifest=not skip_manifest_check,
                                  inference_precision=inference_precision.value if inference_precision else None))
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"fnx bench (batch {batch}, {warmup} warm-up, {runs} runs; ms)",
                  caption="all figures, p99 and peak RSS included: --json")
    table.add_column("artifact / engine", overflow="fold", ratio=1)
    for col in ("thr", "mean", "p50", "p90", "img/s", "GFLOPS", "MB"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        gf = "-" if r["gflops"] is None else f"{r['gflops']:.1f}"
        table.add_row(f"{r['artifact']}\n[dim]{r['engine']}[/]", str(r["threads"]), f"{r['mean_ms']:.2f}",
                      f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['throughput_ips']:.1f}", gf, f"{r['file_mb']:.1f}")
    console.print(table)


def e2e_cmd(artifacts: list[Path], folder: Path, threads: int, limit: int | None, workers: int, device: str, engine,
            skip_manifest_check: bool, as_json: bool) -> None:
    """`fnx bench --e2e FOLDER`: where the time from file to label goes, per preprocessing mode."""
    from fnx.runtime import load
    from fnx.runtime.e2e import e2e

    reports = []
    for a in artifacts:
        s = load(need_file(a, "model file"), device=device, threads=threads,
                 engine=engine.value if engine else None, check_manifest=not skip_manifest_check)
        with err_console.status(f"end to end: {a.name} on {folder}"):
            reports.append({"artifact": a.name, **e2e(s, folder, workers=workers, limit=limit)})
    if as_json:
        print_json(reports)
        return
    for rep in reports:
        table = Table(title=f"{rep['artifact']}: file -> label on {rep['images']} images (ms per image, median)",
                      caption=f"{rep['engine']}; engine alone {rep['invoke_only_ips']:.0f} img/s; pipelined: "
                              f"{rep['workers']} decode worker(s), batch {rep['batch_size']}")
        for col in ("mode", "decode", "preprocess", "invoke", "post", "img/s seq", "img/s piped"):
            table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=True)
        for r in rep["rows"]:
            table.add_row(r["mode"], f"{r['decode_ms']:.2f}", f"{r['preprocess_ms']:.2f}", f"{r['invoke_ms']:.2f}",
                          f"{r['post_ms']:.3f}", f"{r['sequential_ips']:.1f}", f"{r['pipelined_ips']:.1f}")
        console.print(table)
