"""Slow and abusive clients: a header timeout, a body-stall timeout and a connection budget below the process's
descriptor limit, in a subclass of uvicorn's h11 protocol (one instance per connection).

The hooks it relies on (uvicorn 0.55, h11 0.16; tests/test_serve_abuse.py checks them): uvicorn calls
`connection_made`, `data_received`, `on_response_complete` and `connection_lost`, reads `self.app` when a request's
headers are parsed, keeps every open connection in `self.connections` and closes an idle kept-alive one after
`Config.timeout_keep_alive` (`_unset_keepalive_if_required` stops that timer); h11's `their_state` says where the
client is (IDLE: before or inside the request line and headers, SEND_BODY: headers parsed, body coming). asyncio accepts up to `backlog` connections per loop pass
(`_accept_connection`), so fnx.serve.server sets uvicorn's `backlog` to budget.ACCEPT_BATCH: the descriptors open
but not yet (or no longer) counted in `connections` stay inside budget.RESERVE.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from fnx.serve.budget import DEFAULT_MAX, HEALTH_LANE
from fnx.serve.guards import HEALTH_PATHS, send_error

LANE_HEADER_TIMEOUT_S = 1.0  # a connection past the budget has this long to ask for a health probe (a probe asks at
# once; slow clients free the lane well before the budget)


@dataclass(frozen=True)
class ConnectionLimits:
    """The per-connection timeouts (seconds) and the budget the protocol enforces."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_connections: int = DEFAULT_MAX
    health_lane: int = HEALTH_LANE


def raw_response(status: int, reason: str, message: str, retry_after: bool = False) -> bytes:
    """A whole HTTP/1.1 response with the protocol's {"error": ...} body and Connection: close."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n" + ("retry-after: 1\r\n" if retry_after else "") + "\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a client slow to send its request line and headers (408 if it began
    one), or whose body stalls, and that refuses connections past the budget: the first `health_lane` ones past it
    may still ask /v2/health/* within LANE_HEADER_TIMEOUT_S (anything else: 503), the rest get 503 at once and are
    closed."""

    limits = ConnectionLimits()
    record: Callable[[str], None] = staticmethod(lambda reason: None)  # counts closes by reason (metrics)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._header_timeout_s = self.limits.header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        over = len(self.connections) - self.limits.max_connections
        if over > self.limits.health_lane:
            self.record("over_limit")
            transport.write(raw_response(503, "Service Unavailable", self._busy(), retry_after=True))
            transport.close()
            return
        if over > 0:
            self.app = health_only(self.app, self._busy(), self.record)
            self._header_timeout_s = min(self._header_timeout_s, LANE_HEADER_TIMEOUT_S)
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._expired, "header_timeout")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(new_data=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(new_data=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _busy(self) -> str:
        return (f"the server is at its connection limit ({self.limits.max_connections}, fnx serve --max-connections); "
                f"retry later")

    def _follow(self, new_data: bool) -> None:
        """Arm the timer for where the client is: headers (from the first byte of a request on a kept-alive
        connection; a new connection's runs from connection_made), body (restarted by each chunk), or none."""
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            self._cancel()
        elif state is h11.SEND_BODY:
            self._header_timer = _cancel(self._header_timer)
            if new_data or self._body_timer is None:
                _cancel(self._body_timer)
                self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._expired, "body_timeout")
        elif self._header_timer is None and (new_data or self.conn.trailing_data[0]):  # a request has begun (or
            self._unset_keepalive_if_required()  # was pipelined, in part): time its headers, not the idle connection
            self._header_timer = self.loop.call_later(self._header_timeout_s, self._expired, "header_timeout")

    def _expired(self, reason: str) -> None:
        if reason == "body_timeout" and self.flow.read_paused:  # the server stopped reading (the app has not taken
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._expired, reason)  # the body)
            return
        self._cancel()
        if self.transport.is_closing():
            return
        self.record(reason)
        if reason == "header_timeout":
            began = bool(self.conn.trailing_data[0])  # bytes of a request arrived (h11 holds them, unparsed)
            why = f"the request line and headers did not arrive within {self._header_timeout_s:g} s (--header-timeout)"
        else:
            began = self.cycle is not None and not self.cycle.response_started
            why = f"the request body paused for over {self.limits.body_timeout_s:g} s (--body-timeout)"
        if began:  # the client is inside a request: say why it ends
            self.transport.write(raw_response(408, "Request Timeout", f"{why}; fnx serve closed the connection"))
        self.transport.close()

    def _cancel(self) -> None:
        self._header_timer = _cancel(self._header_timer)
        self._body_timer = _cancel(self._body_timer)


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    if timer is not None:
        timer.cancel()
    return None


def health_only(app, message: str, record: Callable[[str], None]):
    """The ASGI app of a connection past the budget: the health probes (then the connection closes), 503 else."""

    async def lane(scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in HEALTH_PATHS:
            record("over_limit")
            return await send_error(send, 503, message, [(b"retry-after", b"1"), (b"connection", b"close")])

        async def closing(event):
            if event["type"] == "http.response.start":
                event = {**event, "headers": [*event.get("headers", []), (b"connection", b"close")]}
            await send(event)

        return await app(scope, receive, closing)

    return lane


def guarded_protocol(limits: ConnectionLimits, record: Callable[[str], None] | None = None) -> type[H11Protocol]:
    """Return the protocol class for uvicorn.Config(http=...) with these limits."""
    attrs = {"limits": limits}
    if record is not None:
        attrs["record"] = staticmethod(record)
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attrs)
