"""Silence third-party chatter (prints, progress bars, WARNING logs) around a call."""

from __future__ import annotations

import contextlib
import io
import logging


def quiet(fn):
    """Return fn() with its stdout, stderr and log warnings swallowed."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return fn()
    finally:
        logging.root.setLevel(level)
