"""The `fnx` command line: thin typer commands over importable functions, printed with rich."""

from __future__ import annotations

import functools
import json
import sys
import warnings
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
    err_console.print(f"[yellow]warning:[/] {message}")


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
                err_console.print(f"[bold red]error:[/] {e}", highlight=False)
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
