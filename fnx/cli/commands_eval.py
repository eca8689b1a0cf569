"""`fnx eval`: accuracy of checkpoints and artifacts on a labelled folder, here or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import (AsJson, Engine, InferencePrecision, PreprocessChoice, Threads, command, console,
                            err_console, escape, print_json, report_failures, run_options)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _print_results(r: dict, per_class: bool) -> None:
    from fnx.cli.tables import compact_table

    results, ref = r["results"], r["reference"]
    if len(results) == 1 and not ref and not per_class:
        one = results[0]
        for mode, figures in (one.get("modes") or {one["preprocess"]: one}).items():
            console.print(f"{escape(Path(one['target']).name)} \\[{escape(one['kind'])}, {mode}]: top-1 "
                          f"{_pct(figures['top1'])}, top-5 {_pct(figures['top5'])} on {one['n']} images")
    else:
        columns = ("target", "kind", "images", "top-1", "top-5") + (("agrees with ref",) if ref else ())
        caption = f"{r['images']} images, {len(r['classes'])} classes, {r['runner']}" + (
            f"; reference: {Path(ref).name}" if ref else "")
        table = compact_table("fnx eval", caption, columns, left=("target", "kind"))
        for col in table.columns[:2]:  # long file names and engine names wrap; the figures never do
            col.no_wrap, col.overflow = False, "fold"
        for one in results:
            table.add_row(escape(Path(one["target"]).name), escape(one["kind"]), str(one["n"]), _pct(one["top1"]),
                          _pct(one["top5"]), *((_pct(one.get("reference_agreement")),) if ref else ()))
        console.print(table)
    if per_class:
        from fnx.cli.tables import compact_table

        table = compact_table("top-1 per class", "", ("class", "images", *(Path(o["target"]).name for o in results)),
                              left=("class",))
        for name in r["classes"]:
            n = results[0]["per_class"][name]["n"]
            table.add_row(escape(name), str(n), *(_pct(o["per_class"][name]["top1"]) for o in results))
        console.print(table)
    for one in results:
        if "agreement" in one:
            console.print(f"{escape(Path(one['target']).name)}: fast and exact preprocessing agree on the top-1 class "
                          f"of {_pct(one['agreement'])} of the images")


@command(app, "eval")
def eval_cmd(
    targets: List[Path] = typer.Argument(..., help="Checkpoints from fnx train and/or exported artifacts."),
    data: Path = typer.Option(..., "--data", help="Labelled image folder (one subfolder per class)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Also evaluate this checkpoint or artifact and say how often each target's top-1 class agrees with it."),
    per_class: bool = typer.Option(False, "--per-class", help="Print top-1 per class (always in --json)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate an evenly spaced subset of N images."),
    threads: Threads = None,
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    preprocess: PreprocessChoice = typer.Option(PreprocessChoice("exact"), "--preprocess", help="fast: also score the fast preprocessing and say how often it agrees with exact.", case_sensitive=False),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS", help="Run on a Ray cluster (needs the scale extra): auto (RAY_ADDRESS, the cluster this machine belongs to, else a local one) or its address."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="With --ray: actors per target (default: the cluster's CPUs / --threads)."),
    as_json: AsJson = False,
) -> None:
    """Top-1 / top-5 accuracy (and per class) over an image folder, through the runtime's preprocessing."""
    from fnx.errors import FnxError
    from fnx.evaluation import evaluate_many
    from fnx.progress import Steps

    if workers is not None and ray is None:
        raise FnxError("--workers sets the Ray actor pool: use it with --ray")
    r = evaluate_many(targets, data, limit=limit, run=run_options("cpu", threads, engine, inference_precision),
                      steps=Steps(quiet=as_json, console=err_console), mode=preprocess.value, reference=reference,
                      ray=ray, workers=workers)
    if as_json:
        print_json(r["results"][0] if len(r["results"]) == 1 and not reference else r)
    else:
        _print_results(r, per_class)
    failed = {e["source"]: e for one in r["results"] for e in one["errors"]}
    report_failures(list(failed.values()), r["images"], "scored")
