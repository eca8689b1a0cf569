"""Ctrl-C that is never lost: libraries can swallow the KeyboardInterrupt it raises (JAX, which litert-torch loads,
runs Python callbacks during garbage collection, and an exception raised in one is printed and dropped)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator


@contextlib.contextmanager
def keep_interrupts() -> Iterator[None]:
    """Within the block, remember every SIGINT; if its KeyboardInterrupt got swallowed, raise one at the end.

    A no-op where SIGINT is ignored (a background job: Unix's convention, kept) or off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield
        return
    hits: list[int] = []

    def handler(signum, frame):
        hits.append(signum)
        raise KeyboardInterrupt

    def unraisable(info) -> None:  # "Exception ignored in <gc callback>": ours, remembered in hits, not printed
        if not (isinstance(info.exc_value, KeyboardInterrupt) and hits):
            previous_hook(info)

    previous_hook = sys.unraisablehook
    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
    if hits:  # reached only when the interrupt was swallowed on its way up
        raise KeyboardInterrupt


def caused_by_interrupt(error: BaseException) -> bool:
    """Return whether a KeyboardInterrupt is behind an exception: Ctrl-C landing in a library's import can come out
    wrapped (dataclasses' `__set_name__` turns it into a RuntimeError while ai_edge_litert imports)."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False
