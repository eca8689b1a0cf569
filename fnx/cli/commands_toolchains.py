"""`fnx toolchains`: the isolated environments of targets whose converters pin other versions than fnx's."""

from __future__ import annotations

import typer

from fnx.cli.app import app
from fnx.cli.common import AsJson, command, console, err_console, print_json

toolchains_app = typer.Typer(help="List the targets' isolated toolchains (state, size, path); create or remove one.",
                             invoke_without_command=True)
app.add_typer(toolchains_app, name="toolchains")


@toolchains_app.callback()
def list_cmd(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List every registered toolchain: what it is for, whether it is created here, its size and path."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from fnx.toolchains import registered_toolchains

    rows = [{"name": t.name, "purpose": t.purpose, "state": t.state(), "requirements": [*t.no_deps, *t.requirements],
             "size_mb": round(t.size_bytes() / 1e6, 1) if t.path.exists() else None, "path": str(t.path)}
            for t in registered_toolchains().values()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no target here needs a toolchain of its own (targets declare theirs)")
        return
    table = Table(title="Toolchains (created on first use, kept per machine)")
    for col in ("name", "purpose", "state", "size", "path"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["purpose"], r["state"], "-" if r["size_mb"] is None else f"{r['size_mb']:.0f} MB",
                      r["path"])
    console.print(table)


@command(toolchains_app, "create")
def create_cmd(name: str = typer.Argument(..., help="A toolchain of `fnx toolchains`.")) -> None:
    """Create a toolchain's environment now (it is otherwise made on first use), from the package index."""
    from fnx.progress import Steps, phase
    from fnx.toolchains import get_toolchain
    from fnx.toolchains.env import create

    tc = get_toolchain(name)
    if tc.ready:
        console.print(f"toolchain {name} is ready: {tc.path}")
        return
    packages = ", ".join((*tc.no_deps, *tc.requirements)) or "no packages"
    with Steps(console=err_console).step(f"create toolchain {name} ({packages})"):
        create(tc, phase)
    console.print(f"toolchain {name} is ready: {tc.path} ({tc.size_bytes() / 1e6:.0f} MB)")


@command(toolchains_app, "remove")
def remove_cmd(name: str = typer.Argument(..., help="A toolchain of `fnx toolchains`.")) -> None:
    """Delete a toolchain's environment (the next use creates it again)."""
    from fnx.toolchains import get_toolchain
    from fnx.toolchains.env import remove

    tc = get_toolchain(name)
    console.print(f"removed {tc.path}" if remove(tc) else f"toolchain {name} was not created here")
