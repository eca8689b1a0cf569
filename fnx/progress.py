"""Step-by-step feedback for long work: each step shown as it runs, with its time; silent when quiet."""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from typing import Callable, Iterator

from rich.console import Console

_PHASE: ContextVar[Callable[[str], None] | None] = ContextVar("fnx_step_phase", default=None)


def phase(text: str) -> None:
    """Say what the running step is doing now (shown beside its spinner and elapsed time); a no-op outside a step.

    For long work below the CLI (a converter's minute of tracing) that has no Steps object of its own."""
    show = _PHASE.get()
    if show is not None:
        show(text)


class Steps:
    """Prints "✓ step (1.2 s)" lines (a spinner while a step runs) to stderr; no output when quiet."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        if self.quiet:
            yield
        else:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console,
                            transient=True)
            task = live.add_task(f"{name} ...", total=None)
            token = _PHASE.set(lambda text: live.update(task, description=f"{name}: {text} ..."))
            try:
                with live:
                    yield
            except BaseException:
                self.console.print(f"[red]✗[/] {name} ({time.perf_counter() - t0:.1f} s)")
                raise
            finally:
                _PHASE.reset(token)
        dt = time.perf_counter() - t0
        self.timings[name] = self.timings.get(name, 0.0) + dt
        if not self.quiet:
            self.console.print(f"[green]✓[/] {name} [dim]({dt:.1f} s)[/]")

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started

    def progress(self, description: str, total: int | None):
        """Return a rich Progress-bar context (a no-op one when quiet) and its task id."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=self.console, disable=self.quiet, transient=False)
        return bar, bar.add_task(description, total=total)
