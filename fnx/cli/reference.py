"""`python -m fnx.cli.reference > docs/reference.md`: the command reference, generated from the CLI by typer's own
docs generator (tests/test_docs.py fails when the file is out of date)."""

from __future__ import annotations

HEADER = ("<!-- Generated from the CLI by `python -m fnx.cli.reference > docs/reference.md`; do not edit by hand "
          "(tests/test_docs.py checks it is current). -->\n\n")


def reference() -> str:
    """Return the Markdown reference of every fnx command and option."""
    import typer.cli
    from typer.testing import CliRunner

    r = CliRunner().invoke(typer.cli.app, ["--app", "app", "fnx.cli", "utils", "docs", "--name", "fnx",
                                           "--title", "fnx command reference"])
    if r.exit_code != 0:
        raise RuntimeError(f"typer could not generate the reference: {r.output}")
    return HEADER + r.stdout


if __name__ == "__main__":
    import sys

    sys.stdout.write(reference())
