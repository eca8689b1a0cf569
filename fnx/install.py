"""What to type to install fnx or one of its extras: the one place for the distribution's name.

The import name and the command are `fnx`, but the package index's `fnx` is an unrelated project (0.0.2), so fnx
is distributed as `fnx-edge`. A user who installed from a checkout (`pip install -e .`) is told to install the
extra from that checkout, since `fnx-edge` from the index may be another version than the one they run.
"""

from __future__ import annotations

import functools
from pathlib import Path

DISTRIBUTION = "fnx-edge"  # `pip index versions fnx-edge` found no such project on 2026-12-04; `fnx` is taken


@functools.lru_cache(maxsize=1)
def _checkout() -> Path | None:
    """Return the source checkout this fnx runs from (pip install -e, or on PYTHONPATH), None for an installed wheel."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    try:
        return root if f'name = "{DISTRIBUTION}"' in pyproject.read_text() else None
    except OSError:
        return None


def pip_install(*extras: str) -> str:
    """Return the pip command that installs fnx with these extras, right for how this fnx was installed."""
    wanted = f"[{','.join(extras)}]" if extras else ""
    checkout = _checkout()
    if checkout is not None:
        return f"pip install -e '{checkout}{wanted}'"
    return f"pip install '{DISTRIBUTION}{wanted}'"
