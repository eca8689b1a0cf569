"""The `fnx` command line: this module only wires the commands; each lives in its own module."""

from __future__ import annotations

from fnx.cli import (commands_bench, commands_eval, commands_export, commands_models, commands_run, commands_serve,
                     commands_toolchains, commands_train)
from fnx.cli.app import app

__all__ = ["app", "main"]
_ = (commands_bench, commands_eval, commands_export, commands_models, commands_run, commands_serve, commands_toolchains,
     commands_train)  # imported for their @command registrations


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
