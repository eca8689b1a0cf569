"""The connection budget: how many connections `fnx serve` takes, below the process's open-file limit (raised to
the hard limit at start), so that a flood of connections never makes accept() fail with EMFILE.

Standard library only: the CLI reads it before opening anything (fnx.serve.connections enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass

from fnx.errors import FnxError

ACCEPT_BATCH = 16  # connections asyncio accepts per loop pass (uvicorn's Config.backlog)
LISTEN_QUEUE = 2048  # the kernel's queue of connections not yet accepted (re-set after asyncio's listen)
RESERVE = 64 + 4 * ACCEPT_BATCH  # descriptors kept from connections: model files, pipes, logs, the listening
# socket, and connections accepted but not yet counted (a few loop passes of ACCEPT_BATCH)
HEALTH_LANE = 16  # connections past the budget that may still ask /v2/health/* (others get 503)
DEFAULT_MAX = 1024  # the budget when the descriptor limit allows more


@dataclass(frozen=True)
class Budget:
    """How many connections the server takes, and the descriptor limit that bounds it (None: unknown)."""

    max_connections: int
    descriptor_limit: int | None
    raised_from: int | None = None  # the soft limit before fnx raised it to the hard limit
    health_lane: int = HEALTH_LANE

    def describe(self) -> str:
        if self.descriptor_limit is None:
            return f"up to {self.max_connections} connections"
        raised = f", raised from {self.raised_from}" if self.raised_from else ""
        return f"up to {self.max_connections} connections; descriptor limit {self.descriptor_limit}{raised}"


def connection_budget(requested: int | None) -> Budget:
    """Raise the open-file limit to the hard limit where allowed and return the connection budget under it: the
    requested one (FnxError if the limit cannot hold it) or the largest up to DEFAULT_MAX that leaves RESERVE."""
    try:
        import resource
    except ImportError:  # not a Unix: no limit to read
        return Budget(requested or DEFAULT_MAX, None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised_from = None
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            raised_from, soft = soft, hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return Budget(requested or DEFAULT_MAX, None)
    room = soft - RESERVE - HEALTH_LANE
    if room < 1:
        raise FnxError(f"the open-file limit is {soft} (hard limit {hard}), and fnx serve keeps "
                       f"{RESERVE + HEALTH_LANE} descriptors for itself: raise it (ulimit -n "
                       f"{RESERVE + HEALTH_LANE + 64}) and start again")
    if requested is not None and requested > room:
        raise FnxError(f"--max-connections {requested} needs {requested + RESERVE + HEALTH_LANE} open files, over this "
                       f"process's limit of {soft} (hard limit {hard}): pass --max-connections {room} or less, or "
                       f"raise the limit (ulimit -n)")
    return Budget(requested or min(DEFAULT_MAX, room), soft, raised_from)
