"""`fnx run`: an artifact on this machine's engines (torch-free)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import (AsJson, Device, DeviceChoice, Engine, InferencePrecision, PreprocessChoice, SkipCheck,
                            command, console, err_console, need_file, print_json, report_failures, run_options)
from fnx.errors import FnxError
from fnx.runtime.preprocess import RUN_MODE


@command(app, "run")
def run_cmd(
    artifact: Path = typer.Argument(..., help="An exported artifact (its manifest, if beside it, is used)."),
    inputs: list[str] = typer.Argument(..., help="Images, folders (recursive), globs, @list.txt files of paths, videos, camera:N."),
    topk: int = typer.Option(5, "--topk", min=1, help="Classes to show per image."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A text file with one label per line (overrides the manifest's)."),
    device: Device = DeviceChoice("auto"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Engine threads (default: sized with --workers to this machine's cores)."),
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    preprocess: PreprocessChoice = typer.Option(PreprocessChoice(RUN_MODE), "--preprocess", help="fast: JPEGs decoded at reduced size (2x the resize target kept); exact: the evaluation transform.", case_sensitive=False),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per engine call."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Threads decoding and preprocessing ahead of the engine (default: sized with --threads to this machine's cores; 0: none)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Write one JSON line per input as it is done."),
    as_csv: bool = typer.Option(False, "--csv", help="Write one CSV row per input (top-1) as it is done."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write --jsonl / --csv records to this file instead of stdout."),
    skip_manifest_check: SkipCheck = False,
    as_json: AsJson = False,
) -> None:
    """Classify images, folders and videos with an artifact, streaming (torch-free: numpy, Pillow and one engine)."""
    from fnx.cli.run_output import Writer
    from fnx.runtime import load
    from fnx.runtime.sizing import size_pipeline, usable_cores

    if sum((jsonl, as_csv, as_json)) > 1:
        raise FnxError("choose one of --json, --jsonl and --csv")
    if out is not None:
        from fnx.fileio import check_output_file

        check_output_file(out, "--out file")  # before the model loads
    sizing = size_pipeline(usable_cores(), preprocess.value, threads, workers)
    t0 = time.perf_counter()
    session = load(need_file(artifact, "model file"), check_manifest=not skip_manifest_check,
                   run=run_options(device, sizing.threads, engine, inference_precision))
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
            for r in session.stream(inputs, batch_size=batch_size, workers=sizing.workers, topk=topk,
                                    mode=preprocess.value):
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
               "preprocess": preprocess.value, "batch_size": batch_size, "threads": sizing.threads,
               "workers": sizing.workers, "sizing": sizing.describe(),
               "engine_choice": session.engine_choice, "inference_precision": session.inference_precision}
    if fmt == "json":
        print_json({**summary, "predictions": [r.prediction.to_dict() for r in writer.buffer if r.prediction],
                    "errors": errors})
    else:
        err_console.print(f"[dim]{n} input(s), {len(errors)} failed, {secs:.2f} s ({summary['images_per_s'] or 0:.1f} "
                          f"img/s) on {session.engine_label}; preprocess {preprocess.value}, batch {batch_size}, "
                          f"{sizing.describe()}; model load {load_ms:.0f} ms[/]", highlight=False, soft_wrap=True)
        if session.engine_choice:
            err_console.print(f"[dim]chosen by --device auto: {session.engine_choice}[/]", highlight=False)
    if n == 0:
        raise FnxError("no inputs: pass image files, folders, globs, @list.txt files, videos or camera:N")
    report_failures(errors, n, "classified")


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
