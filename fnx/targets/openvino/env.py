"""Importing OpenVINO and NNCF for fnx: without usage telemetry unless the user said yes to it.

OpenVINO's converter and NNCF send usage events to an outside server (a forked process per event) unless
their consent file says no or CI=true: fnx works offline and sends nothing of its own, so it loads them
with their telemetry stubbed (both fall back to a stub when `openvino_telemetry` cannot be imported), except
where the user accepted it (`opt_in_out --opt_in`: the consent file holds "1") or sets FNX_OPENVINO_TELEMETRY=1.
Torch-free.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

CONSENT_FILE = Path("intel") / "openvino_telemetry"  # under the home folder (Linux, macOS)


def telemetry_accepted() -> bool:
    """True when the user opted in to OpenVINO's telemetry (its consent file says 1) or asked fnx to allow it."""
    if os.environ.get("FNX_OPENVINO_TELEMETRY") == "1":
        return True
    try:
        lines = (Path.home() / CONSENT_FILE).read_text().splitlines()
    except (OSError, RuntimeError):
        return False
    return bool(lines) and lines[0].strip() == "1"


def _block_telemetry() -> None:
    if "openvino_telemetry" not in sys.modules and not telemetry_accepted():
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # its importers use their stubs


def openvino() -> ModuleType:
    """Return the openvino module (telemetry off unless accepted)."""
    _block_telemetry()
    import openvino as ov

    return ov


def nncf() -> ModuleType:
    """Return the nncf module (telemetry off unless accepted)."""
    _block_telemetry()
    import nncf as module

    return module
