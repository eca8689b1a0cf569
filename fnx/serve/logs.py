"""Bounded logs: a message that repeats is logged once, then as one summary line with a count per interval.

A flood of one error (asyncio's `socket.accept() out of system resource`, uvicorn's `Invalid HTTP request
received.`, an engine fault on every request) would otherwise write a line per event: on a device with an SD card
a log flood is a second failure.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Callable, Iterable

INTERVAL_S = 60.0  # one summary per kind of message and minute at most
KINDS = 256  # kinds remembered; past it every new kind counts as one ("other messages")
WATCHED = ("asyncio", "uvicorn.error", "fnx.serve")  # the loggers a flood can come through
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


class Throttle(logging.Filter):
    """Let the first record of a kind through, count its repeats, and log one summary per kind and interval
    (`flush`, called about once a second by the server, and once more at the end).

    A record's kind: its logger, level, the first line of its message template with numbers blanked (socket
    reprs, fds, addresses), and its exception's type and errno. A kind quiet for a whole interval is logged in
    full again when it comes back.
    """

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._kinds: dict[tuple, list] = {}  # kind -> [window start, repeats, logger name, level, first line]
        self._lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple:
        first = str(record.msg).split("\n", 1)[0][:200]
        exc = record.exc_info[1] if record.exc_info else None
        return (record.name, record.levelno, _NUMBERS.sub("#", first), type(exc).__name__ if exc else "",
                getattr(exc, "errno", None))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "fnx_summary", False):
            return True
        now, kind = self.clock(), self.kind(record)
        with self._lock:
            if kind not in self._kinds and len(self._kinds) >= KINDS:
                kind = (record.name, record.levelno, "other messages", "", None)
            entry = self._kinds.get(kind)
            if entry is None or (entry[1] == 0 and now - entry[0] >= self.interval_s):
                first = record.getMessage().split("\n", 1)[0][:200]
                self._kinds[kind] = [now, 0, record.name, record.levelno, first]
                return True
            entry[1] += 1
            return False

    def flush(self, force: bool = False) -> None:
        """Log one summary line for each kind with repeats whose interval is over (every such kind if force)."""
        now, due = self.clock(), []
        with self._lock:
            for entry in self._kinds.values():
                if entry[1] and (force or now - entry[0] >= self.interval_s):
                    due.append((entry[2], entry[3], entry[4], entry[1], now - entry[0]))
                    entry[0], entry[1] = now, 0
        for name, level, first, count, seconds in due:
            logging.getLogger(name).log(level, "%s (repeated %d more time%s in %.0f s; fnx serve logs a repeated "
                                        "message once per %g s)", first, count, "" if count == 1 else "s",
                                        seconds, self.interval_s, extra={"fnx_summary": True})


def install(throttle: Throttle, names: Iterable[str] = WATCHED) -> Callable[[], None]:
    """Attach throttle to the named loggers; return the function that detaches it (after a last flush)."""
    loggers = [logging.getLogger(n) for n in names]
    for logger in loggers:
        logger.addFilter(throttle)

    def remove() -> None:
        throttle.flush(force=True)
        for logger in loggers:
            logger.removeFilter(throttle)

    return remove
