"""Silence third-party chatter (prints, progress bars, C++ logs, warnings) around a call or a block."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from typing import Iterator


def quiet(fn):
    """Return fn() with its Python-level stdout, stderr and log warnings swallowed."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return fn()
    finally:
        logging.root.setLevel(level)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Silence a block down to the file descriptors: Python warnings and logging, and C++ writes to fds 1 and 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
        logging.root.setLevel(level)


def import_quietly(name: str):
    """Return the module `name`, imported with its C++ start-up logs silenced (litert-torch loads TensorFlow's
    libraries, which print absl's "WARNING: All log messages before absl::InitializeLog()" and a oneDNN notice)."""
    import importlib

    if name in sys.modules:
        return sys.modules[name]
    with silenced():
        return importlib.import_module(name)
