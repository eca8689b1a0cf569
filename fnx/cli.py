"""The `fnx` command line: thin typer commands over importable functions, printed with rich."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from fnx.errors import FnxError

app = typer.Typer(
    name="fnx",
    help="FasterNet to the edge: export, quantize, run and verify FasterNet models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print fnx's version and exit.", is_eager=True),
) -> None:
    """FasterNet to the edge: export, quantize, run and verify FasterNet models."""
    if version:
        from fnx import __version__

        typer.echo(f"fnx {__version__}")
        raise typer.Exit()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # fnx's own warnings speak to the user; third-party deprecation chatter does not.
    if f"{os.sep}fnx{os.sep}" in str(filename) or category.__module__.startswith("fnx"):
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def command(*args, **kwargs) -> Callable:
    """Register a typer command whose FnxError is printed as one line, with exit code 1."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            previous = warnings.showwarning
            warnings.showwarning = _show_warning
            try:
                return fn(*a, **kw)
            except FnxError as e:
                err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                err_console.print("[bold red]interrupted[/]: no partial files were left")
                raise typer.Exit(130) from None
            finally:
                warnings.showwarning = previous

        return app.command(*args, **kwargs)(wrapper)

    return register


def print_json(data) -> None:
    """Print data as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@command("models")
def models_cmd(
    img_size: int = typer.Option(224, "--img-size", help="Input size for the FLOPs figure (multiple of 32)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the FasterNet variants: params, GFLOPs, activation and the paper's ImageNet top-1."""
    from fnx.models import VARIANTS, check_img_size, describe

    check_img_size(img_size)
    rows = [describe(name, img_size) for name in VARIANTS]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"FasterNet variants (FLOPs = multiply-accumulates at {img_size}x{img_size})")
    for col in ("model", "params (M)", f"GFLOPs @{img_size}", "act", "embed", "depths", "paper top-1"):
        table.add_column(col, justify="left" if col in ("model", "act", "depths") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"].replace("_", "-"), f"{r['params'] / 1e6:.3f}", f"{r['flops'] / 1e9:.3f}",
                      r["act"].upper(), str(r["embed_dim"]), "-".join(map(str, r["depths"])), f"{r['paper_top1']:.1f}")
    console.print(table)


FORMAT_HELP = "onnx, tflite or all."


def _formats(fmt: str) -> tuple[str, ...]:
    from fnx.exporter.pipeline import FORMATS

    fmt = fmt.lower()
    if fmt == "all":
        return FORMATS
    if fmt not in FORMATS:
        raise FnxError(f"unknown format {fmt!r}; use onnx, tflite or all")
    return (fmt,)


def default_weights(model: str, weights: Optional[str]) -> str:
    """Return --weights, or when it was not given: "official" if it can be had, else "random" with a warning."""
    if weights:
        return weights
    from fnx.models import get_variant
    from fnx.models.weights import resolve

    try:
        resolve("official", get_variant(model))
        return "official"
    except FnxError as e:
        warnings.warn(f"no --weights given and the official weights cannot be had ({str(e).split(' (')[0]}): "
                      f"using RANDOM weights, whose outputs mean nothing. Pass --weights PATH|URL|official to require "
                      f"trained weights, or --weights random to silence this.")
        return "random"


@command("export")
def export_cmd(
    model: str = typer.Argument(..., help="fasternet-t0 ... fasternet-l (fasternet_t0 also accepted)."),
    fmt: str = typer.Option("tflite", "--format", "-f", help=FORMAT_HELP),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8 (int8 needs --calib-data)."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="PATH, URL, official or random [default: official if reachable, else random with a warning]."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Classifier size [default: from the checkpoint, else 1000]."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size, a multiple of 32 [default: the checkpoint's, else 224]."),
    batch: int = typer.Option(1, "--batch", help="Static batch size."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="ONNX: make the batch axis dynamic."),
    opset: int = typer.Option(20, "--opset", help="ONNX opset (>= 20 keeps GELU one op)."),
    out: Path = typer.Option(Path("exports"), "--out", "-o", help="Output directory."),
    data: Optional[Path] = typer.Option(None, "--data", help="Images for the parity check [default: 16 synthetic images]."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the parity check (the manifest says so)."),
    features: bool = typer.Option(False, "--features", help="Export the backbone: four normalized stage feature maps."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", help="int8: calibration image folder, or 'synthetic' (recorded as such)."),
    calib_size: int = typer.Option(256, "--calib-size", help="int8: number of calibration images (seeded sample)."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="int8 ONNX: minmax, percentile or entropy."),
    io: str = typer.Option("int8", "--io", help="int8 TFLite: int8 or float input/output tensors."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="int8: accuracy guard on held-out cosine vs fp32 [default 0.99]."),
    max_top1_drop: Optional[float] = typer.Option(None, "--max-top1-drop", help="int8 with labelled data: max top-1 drop in points."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest(s) as JSON instead of tables."),
) -> None:
    """Export a FasterNet to ONNX and/or TFLite, verified against PyTorch, with a manifest beside each file."""
    from fnx.cli_export import print_results, parity_table
    from fnx.exporter.pipeline import ExportOptions, ParityError, export_model
    from fnx.progress import Steps

    steps = Steps(quiet=False, console=err_console)
    opts = ExportOptions(
        formats=_formats(fmt), precision=precision.lower(), weights=default_weights(model, weights),
        num_classes=num_classes, img_size=img_size, batch=batch, dynamic_batch=dynamic_batch, opset=opset, out_dir=out,
        data=data, verify=not no_verify, features=features,
        calibration={"data": calib_data, "size": calib_size, "method": calib_method, "io": io,
                     "min_cosine": min_cosine, "max_top1_drop": max_top1_drop},
    )
    try:
        results = export_model(model, opts, steps)
    except ParityError as e:
        err_console.print(parity_table([("(rejected)", e.report)], title="Parity check FAILED"))
        raise
    if as_json:
        print_json([r.manifest for r in results] if len(results) > 1 else results[0].manifest)
    else:
        print_results(console, results, steps.total)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
