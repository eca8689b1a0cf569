"""`fnx bench`, by mode: `latency` (ART..., the default), `e2e` (ART... FOLDER: file -> label) and `all` (MODEL:
every format x precision x engine here). Each mode takes only its own options (fnx.cli.bench_modes)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from fnx.cli.app import app
from fnx.cli.bench_modes import BenchGroup, ModeCommand
from fnx.cli.common import (AsJson, CalibData, CalibSize, Device, DeviceChoice, Engine, InferencePrecision, Int8Form,
                            Int8FormChoice, MinCosine, SkipCheck, command, console, err_console, need_file, print_json,
                            run_options)
from fnx.calibration.options import AUTO_FORM
from fnx.errors import FnxError

bench_app = typer.Typer(cls=BenchGroup, no_args_is_help=True, help=(
    "Time artifacts. Modes: fnx bench ART... (latency, the default), fnx bench e2e ART... FOLDER (file -> label), "
    "fnx bench all MODEL (every format x precision x engine here, ranked)."))
app.add_typer(bench_app, name="bench")

Artifacts = typer.Argument(..., help="One or more exported artifacts.")
ThreadCounts = typer.Option("1", "--threads", help="Comma-separated thread counts, e.g. 1,2,4: each is measured.")
PAPER_PROTOCOL = {"threads": "1", "batch": 1, "warmup": 10, "runs": 200}


def thread_counts(text: str) -> list[int]:
    """Return the counts of a --threads list like 1,2,4."""
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise FnxError(f"--threads takes comma-separated integers like 1,2,4; got {text!r}") from None
    if not counts or min(counts) < 1:
        raise FnxError(f"--threads takes thread counts of at least 1, like 1,2,4; got {text!r}")
    return counts


@command(bench_app, "latency", cls=ModeCommand)
def latency_cmd(
    ctx: typer.Context,
    artifacts: list[Path] = Artifacts,
    threads: str = ThreadCounts,
    batch: int = typer.Option(1, "--batch", min=1, help="Batch size."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed warm-up runs."),
    runs: int = typer.Option(50, "--runs", min=1, help="Timed runs."),
    paper_protocol: bool = typer.Option(False, "--paper-protocol", help="The paper's protocol: batch 1, one thread, 10 warm-up, 200 timed runs, mean."),
    device: Device = DeviceChoice("cpu"),
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    skip_manifest_check: SkipCheck = False,
    as_json: AsJson = False,
) -> None:
    """Latency, throughput and achieved GFLOPS (GOPS for int8) per artifact x thread count (the default mode)."""
    from fnx.runtime.bench import bench, estimated

    if paper_protocol:
        given = [f"--{k}" for k in PAPER_PROTOCOL if ctx.get_parameter_source(k).name == "COMMANDLINE"]
        if given:
            raise FnxError(f"--paper-protocol fixes batch 1, one thread, 10 warm-up and 200 timed runs: drop "
                           f"{', '.join(given)} or --paper-protocol")
        threads, batch, warmup, runs = PAPER_PROTOCOL.values()
    counts = thread_counts(threads)
    check_artifacts(artifacts, engine)
    estimates = {a: row for a in artifacts if (row := estimated(a)) is not None}  # NPU files: no engine here
    rows = []
    for a in (a for a in artifacts if a not in estimates):
        for t in counts:
            with err_console.status(f"bench {a.name}, {t} thread(s)"):
                rows.append(bench(a, run_options(device, t, engine, inference_precision), batch=batch, warmup=warmup,
                                  runs=runs, check_manifest=not skip_manifest_check))
    if as_json:
        print_json(rows + list(estimates.values()))
        return
    if estimates:
        from fnx.cli.tables import estimates_table

        console.print(estimates_table(list(estimates.values())))
    if not rows:
        return
    table = Table(title=f"fnx bench (batch {batch}, {warmup} warm-up, {runs} runs; ms)",
                  caption="achieved: the model's multiply-adds per second, GFLOPS for float, GOPS for int8; all "
                          "figures, p99 and peak RSS included: --json")
    table.add_column("artifact / engine", overflow="fold", ratio=1)
    for col in ("thr", "mean", "p50", "p90", "img/s", "achieved", "MB"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        gf = "-" if r["gflops"] is None else f"{r['gflops']:.1f} {r['ops_unit']}"
        table.add_row(f"{r['artifact']}\n[dim]{r['engine']}[/]", str(r["threads"]), f"{r['mean_ms']:.2f}",
                      f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['throughput_ips']:.1f}", gf, f"{r['file_mb']:.1f}")
    console.print(table)


@command(bench_app, "e2e", cls=ModeCommand)
def e2e_cmd(
    artifacts: list[Path] = Artifacts,
    folder: Path = typer.Argument(..., help="Image folder to time file -> label on."),
    threads: str = typer.Option("auto", "--threads", help="auto (sized with --workers to this machine's cores, per mode, as fnx run does) or comma-separated engine thread counts, e.g. 1,2: each is measured."),
    limit: Optional[int] = typer.Option(None, "--limit", min=2, help="Use at most N images of the folder."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Decode threads of the pipelined run (default: sized with the engine threads, as fnx run does)."),
    device: Device = DeviceChoice("cpu"),
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    skip_manifest_check: SkipCheck = False,
    as_json: AsJson = False,
) -> None:
    """File -> label: decode, preprocess, invoke and post-process times, sequential and pipelined, per mode, and the
    pipelined run's share of its compute bound (the cores over one image's CPU time, measured in the same run)."""
    from fnx.runtime import load
    from fnx.runtime.e2e import e2e
    from fnx.runtime.preprocess import PREPROCESS_MODES
    from fnx.runtime.sizing import size_pipeline, usable_cores

    cores = usable_cores()
    if threads.strip().lower() == "auto":  # per mode, as `fnx run` sizes it; modes sized alike share one session
        plan: dict[int, list[str]] = {}
        for mode in PREPROCESS_MODES:
            plan.setdefault(size_pipeline(cores, mode, None, workers).threads, []).append(mode)
    else:
        plan = {t: list(PREPROCESS_MODES) for t in thread_counts(threads)}
    check_artifacts(artifacts, engine)
    reports = []
    for a in artifacts:
        for t, modes in plan.items():
            s = load(a, check_manifest=not skip_manifest_check,
                     run=run_options(device, t, engine, inference_precision))
            with err_console.status(f"end to end: {a.name} on {folder}, {t} thread(s)"):
                reports.append({"artifact": a.name, **e2e(s, folder, tuple(modes), workers=workers, limit=limit,
                                                          cores=cores)})
    if as_json:
        print_json(reports)
        return
    for rep in reports:
        console.print(e2e_table(rep))


def e2e_table(rep: dict) -> Table:
    """Return one e2e report (an artifact at one engine thread count) as a table: stage times, img/s and bound."""
    pools = ", ".join(f"{r['mode']} {r['workers']}" for r in rep["rows"])
    table = Table(title=f"{rep['artifact']}, {rep['threads']} engine thread(s): file -> label on {rep['images']} "
                        "images (ms per image: median wall, and CPU)",
                  caption=f"{rep['engine']}; engine alone {rep['invoke_only_ips']:.0f} img/s. piped: batch "
                          f"{rep['batch_size']}, decode workers {pools}. bound: {rep['cores']} core(s) / the CPU ms "
                          "one image took (every stage, the whole process, in the sequential pass of this run)")
    for col in ("mode", "decode", "prep", "invoke", "CPU", "img/s\nseq", "img/s\npiped", "img/s\nbound", "of\nbound"):
        table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=True)
    busy = [r["other_load"] for r in rep["rows"] if r.get("other_load") is not None]
    if busy and max(busy) >= 0.05:
        table.caption += (f". Other processes used up to {max(busy):.0%} of the CPUs during the piped runs: "
                          "the fraction understates what this machine reaches alone")
    for r in rep["rows"]:
        table.add_row(r["mode"], f"{r['decode_ms']:.1f}", f"{r['preprocess_ms']:.1f}", f"{r['invoke_ms']:.2f}",
                      f"{r['cpu_ms']:.1f}", f"{r['sequential_ips']:.1f}", f"{r['pipelined_ips']:.1f}",
                      f"{r['bound_ips']:.1f}", f"{r['fraction']:.0%}")
    return table


@command(bench_app, "all", cls=ModeCommand)
def all_cmd(
    model: str = typer.Argument(..., help="A variant name, e.g. fasternet-t2."),
    threads: int = typer.Option(1, "--threads", min=1, help="Engine threads for every row."),
    warmup: int = typer.Option(10, "--warmup", min=0, help="Untimed warm-up runs."),
    runs: int = typer.Option(50, "--runs", min=1, help="Timed runs."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="The weights to export (as fnx export's --weights)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=32, help="Input size (default: the variant's)."),
    precisions: str = typer.Option("fp32,fp16,int8", "--precisions", help="Comma-separated precisions to export."),
    calib_data: CalibData = None,
    calib_size: CalibSize = 256,
    min_cosine: MinCosine = None,
    int8_form: Int8Form = Int8FormChoice(AUTO_FORM),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled image folder (class per subfolder): parity inputs and top-1."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where the artifacts go (default: ./fnx-bench-all)."),
    as_json: AsJson = False,
) -> None:
    """Export MODEL to every format x precision installed here, run each on every engine that can, and rank them."""
    from fnx.cli.bench_all import bench_all_cmd

    bench_all_cmd(model, threads, runs, warmup, weights, img_size, calib_data, calib_size, data, out, precisions,
                  as_json, min_cosine, int8_form.value)


def check_artifacts(artifacts: list[Path], engine) -> None:
    """Every artifact exists and the forced engine runs each, before the first is timed."""
    from fnx.runtime.engines import check_engine_fits

    for a in artifacts:
        need_file(a, "model file")
    check_engine_fits(artifacts, engine.value if engine is not None else None)
