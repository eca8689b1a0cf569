"""`fnx bench`'s modes as one click group: `fnx bench ART...` means `fnx bench latency ART...`, the old flags
(`--all`, `--e2e`) still work with a deprecation line, and an option of another mode is refused naming that mode."""

from __future__ import annotations

import importlib

import typer
from typer.core import TyperCommand, TyperGroup

from fnx.cli.common import err_console

# click's exceptions as typer raises them (recent typer vendors its own copy of click, so `import click` would not
# catch them): found beside typer's public BadParameter.
_errors = importlib.import_module(typer.BadParameter.__module__)

DEFAULT_MODE = "latency"
# The old single-command spellings: flag -> (mode, the flag's value becomes the mode's last positional argument).
OLD_FLAGS = {"--all": ("all", False), "--e2e": ("e2e", True)}
RENAMED = {"e2e": {"--e2e-limit": "--limit"}}  # options the new mode spells otherwise


class BenchGroup(TyperGroup):
    """The `fnx bench` group: picks the mode, translates the old spellings."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = translate_old_spelling(args)
            if args[0] not in self.commands:
                args = [DEFAULT_MODE, *args]
        return super().parse_args(ctx, args)


def translate_old_spelling(args: list[str]) -> list[str]:
    """Return args of `fnx bench [--all|--e2e FOLDER] ...` rewritten as `fnx bench MODE ...` (saying so once)."""
    for flag, (mode, takes_value) in OLD_FLAGS.items():
        for i, a in enumerate(args):
            if a == "--":
                break
            if a != flag and not a.startswith(flag + "="):
                continue
            rest = args[:i] + args[i + 1:]
            value: list[str] = []
            if takes_value:
                if "=" in a:
                    value = [a.split("=", 1)[1]]
                elif i + 1 < len(args):
                    value, rest = [args[i + 1]], args[:i] + args[i + 2:]
            rest = [RENAMED.get(mode, {}).get(x, x) for x in rest]
            err_console.print(f"[yellow]note:[/] `fnx bench {flag}` is now `fnx bench {mode}` "
                              f"({'fnx bench e2e ARTIFACT... FOLDER' if takes_value else 'fnx bench all MODEL'}); "
                              "the old spelling will be removed", highlight=False, soft_wrap=True)
            return [mode, *rest, *value]
    return args


class ModeCommand(TyperCommand):
    """One mode of `fnx bench`: an option that belongs to another mode is refused, naming it."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _errors.NoSuchOption as e:
            owners = modes_with_option(ctx, e.option_name)
            if not owners:
                raise
            where = " or ".join(f"`fnx bench {m}`" for m in owners)
            raise _errors.UsageError(f"{e.option_name} belongs to {where}, not to `fnx bench {self.name}` "
                                   f"(fnx bench {self.name} --help lists its options)", ctx) from None


def modes_with_option(ctx, option: str) -> list[str]:
    """Return the names of `fnx bench`'s modes that take option."""
    commands = getattr(ctx.parent.command, "commands", {}) if ctx.parent is not None else {}
    return [name for name, cmd in commands.items()
            if any(option in p.opts or option in p.secondary_opts for p in cmd.params)]
