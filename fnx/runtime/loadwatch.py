"""How busy other processes kept the machine while something was timed: a throughput under load means little.

"Other" is every process but this one and the children it has waited for (a command it ran and timed).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


class OtherLoad:
    """Started on creation; `share()` is the part of the machine's CPUs other processes used since then."""

    def __init__(self) -> None:
        self.busy0, self.own0, self.t0 = busy_seconds(), own_seconds(), time.perf_counter()

    def share(self) -> float | None:
        """Return other processes' CPU seconds per second of wall time per CPU (0..1); None where /proc is absent."""
        busy = busy_seconds()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        others = (busy - self.busy0) - (own_seconds() - self.own0)
        return max(0.0, min(1.0, others / (wall * (os.cpu_count() or 1)))) if wall > 0 else None


def busy_seconds() -> float | None:
    """Return the CPU seconds the whole machine has spent busy since boot (/proc/stat), None where unreadable."""
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """Return the CPU seconds this process has used (every thread), and its children that have ended."""
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime
