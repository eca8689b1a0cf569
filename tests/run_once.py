"""A costly session fixture made once per test run, not once per pytest-xdist worker (`make test` runs two)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def once_across_workers(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """Return a folder that make(folder) filled once for the whole run.

    Under pytest-xdist the first worker to ask makes it under the run's shared temp root while the others wait on
    a file lock, then all read it; without workers, a folder of this session's. A make that failed half-way leaves
    no `.done` mark, so the next worker to ask starts the folder over (and fails the same way, in its own tests)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    root = Path(tmp_path_factory.getbasetemp()).parent  # shared by this run's workers
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder
