"""How many engine threads and decode workers a pipeline gets: chosen together from the cores this process may use.

A folder run does two kinds of work per image: decoding and resizing (Pillow, in a pool of worker threads that
release the GIL) and the engine's invoke (in the calling thread, plus the engine's own pool). Sized separately,
the two oversubscribe the cores: an engine pool spins while it waits for its partner threads, so every thread it
has beyond its share steals a core from decoding. `size_pipeline` splits the cores by each side's share of one
image's CPU; a user's explicit --threads or --workers always stands, and the other is sized around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError

# The engine's part of one image's CPU for a FasterNet on photo-sized JPEGs (decode + resize + invoke): exact
# decodes every pixel and resizes the whole picture, fast decodes at reduced size and resamples only the crop
# (docs/BENCHMARKS.md, end to end). Only the split of cores many enough to give the engine more than one thread
# depends on it.
ENGINE_SHARE = {"exact": 0.25, "fast": 0.5}


@dataclass(frozen=True)
class Sizing:
    """Engine threads and decode workers for a pipeline on `cores` cores, and how each was chosen."""

    threads: int
    workers: int
    cores: int
    reason: str

    def describe(self) -> str:
        """One line, e.g. "1 engine thread + 2 decode workers on 2 cores (both sized)"."""
        return (f"{self.threads} engine thread{'s' * (self.threads != 1)} + {self.workers} decode "
                f"worker{'s' * (self.workers != 1)} on {self.cores} core{'s' * (self.cores != 1)} ({self.reason})")


def size_pipeline(cores: int, mode: str = "fast", threads: int | None = None, workers: int | None = None) -> Sizing:
    """Return the engine threads and decode workers for `cores` cores; a given `threads` or `workers` is kept.

    The engine gets its share of the cores (ENGINE_SHARE, at least one thread) and the decode pool the rest, plus
    one where decoding is most of the work (spare_worker): the engine's calling thread then sleeps while it waits for
    decoded images, so one extra worker keeps every core busy. With workers=0 (decoding in the
    calling thread, one image after another) the engine may take every core.
    """
    if cores < 1:
        raise FnxError(f"a pipeline needs at least one core, got {cores}")
    if mode not in ENGINE_SHARE:
        raise FnxError(f"unknown preprocessing mode {mode!r}; use one of {', '.join(ENGINE_SHARE)}")
    if threads is not None and threads < 1:
        raise FnxError(f"--threads must be at least 1, got {threads}")
    if workers is not None and workers < 0:
        raise FnxError(f"--workers must be at least 0, got {workers}")
    given = [name for name, v in (("--threads", threads), ("--workers", workers)) if v is not None]
    if threads is None:
        if workers == 0:
            threads = cores
        elif workers is not None:
            threads = max(1, min(engine_threads(cores, mode), cores - workers))
        else:
            threads = engine_threads(cores, mode)
    if workers is None:
        workers = max(1, cores - threads + spare_worker(mode))
    reason = "both sized" if not given else f"{' and '.join(given)} given" + (", the other sized" if len(given) == 1 else "")
    return Sizing(threads, workers, cores, reason)


def spare_worker(mode: str) -> int:
    """Return 1 where the engine's calling thread waits on decoding most of the time (its share under half: one more
    worker keeps the cores busy then), else 0: with as much invoke as decoding (fast), the extra worker only competes
    for the GIL and the cores (600 1080p JPEGs, 2 cores: fast 1+1 91% of the bound, 1+2 85%; exact 1+2 100%, 1+1 76%)."""
    return 1 if ENGINE_SHARE[mode] < 0.5 else 0


def engine_threads(cores: int, mode: str) -> int:
    """Return the engine's share of `cores` for a preprocessing mode: at least one thread, never every core."""
    return max(1, min(cores - 1, math.floor(cores * ENGINE_SHARE[mode])))


def usable_cores(root: str | Path = "/") -> int:
    """Return how many cores this process may keep busy: its CPU affinity, lowered by a cgroup CPU quota (a
    container's --cpus), rounded up."""
    from fnx.devices import cpu_count

    quota = cgroup_quota(root)
    return max(1, min(cpu_count(), math.ceil(quota))) if quota is not None else cpu_count()


def cgroup_quota(root: str | Path = "/") -> float | None:
    """Return the CPU quota of this process's cgroup (and its parents) in cores, or None where none is set.

    Reads cgroup v2's cpu.max ("max 100000" or "200000 100000") and v1's cpu.cfs_quota_us / cpu.cfs_period_us.
    """
    root = Path(root)
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    found: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "":  # v2: one unified hierarchy
            found += _quotas(root / "sys/fs/cgroup", path, _v2)
        elif "cpu" in controllers.split(","):
            found += _quotas(root / "sys/fs/cgroup/cpu", path, _v1)
    return min(found) if found else None


def _quotas(mount: Path, path: str, read) -> list[float]:
    """Return the quotas set on the group at `path` under `mount` and on each of its parents."""
    out, parts = [], [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        q = read(mount.joinpath(*parts[:depth]))
        if q is not None:
            out.append(q)
    return out


def _v2(group: Path) -> float | None:
    try:
        quota, period = (group / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1(group: Path) -> float | None:
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        period = int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
