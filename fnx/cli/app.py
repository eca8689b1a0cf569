"""The typer application and its root options (`--version`)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fnx",
    help="FasterNet to the edge: export, quantize, run and verify FasterNet models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from fnx import __version__

        typer.echo(f"fnx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print fnx's version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    """FasterNet to the edge: export, quantize, run and verify FasterNet models."""
