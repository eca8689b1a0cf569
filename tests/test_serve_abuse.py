"""fnx serve against slow and abusive clients (issue #37): the header and body-stall timeouts, the connection budget
and bounded logs. In process, fnx's protocol on uvicorn's h11 with a tiny ASGI app; then live, `fnx serve` under a
lowered open-file limit. Only 127.0.0.1; every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
import time

import numpy as np
import pytest
import requests

from fnx.dev.serve_process import ServerProcess

uvicorn = pytest.importorskip("uvicorn")

from fnx.serve.connections import ConnectionLimits, GuardedH11Protocol, guarded_protocol  # noqa: E402

GET_READY = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"


async def tiny_app(scope, receive, send):
    """Read the whole request body; answer 200 with the path and the body's size."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size, more = size + len(message.get("body", b"")), message.get("more_body", False)
    body = json.dumps({"path": scope["path"], "size": size}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def run_server(limits: ConnectionLimits, client, keep_alive: float = 5.0) -> list[str]:
    """Serve tiny_app with fnx's protocol on 127.0.0.1 in this process, run `await client(port)`, and return the
    reasons the protocol recorded for the connections it ended."""
    from uvicorn.server import ServerState

    reasons: list[str] = []
    config = uvicorn.Config(tiny_app, http=guarded_protocol(limits, reasons.append), ws="none", lifespan="off",
                            timeout_keep_alive=keep_alive, log_level="warning")
    config.load()

    async def main():
        state = ServerState()
        factory = lambda: config.http_protocol_class(config=config, server_state=state, app_state={})  # noqa: E731
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        try:
            await asyncio.wait_for(client(server.sockets[0].getsockname()[1]), 20)
        finally:
            server.close()
            for c in list(state.connections):
                c.transport.abort()

    asyncio.run(main())
    return reasons


async def talk(port: int, parts: list[bytes], gap_s: float = 0.0, read_s: float = 5.0) -> tuple[bytes, float]:
    """Connect, send parts gap_s apart, read until the server closes; return what it sent and the seconds taken."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i, part in enumerate(parts):
        if i and gap_s:
            await asyncio.sleep(gap_s)
        writer.write(part)
    data = await asyncio.wait_for(reader.read(), read_s)  # to EOF
    writer.close()
    return data, time.monotonic() - t0


def post(length: int, path: str = "/v2/models/m/infer") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n".encode()


def test_uvicorn_still_has_the_hooks_the_protocol_relies_on():
    """fnx.serve.connections subclasses uvicorn's H11Protocol: if these change, the timeouts silently stop working."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for hook in ("connection_made", "data_received", "on_response_complete", "connection_lost",
                 "_unset_keepalive_if_required"):
        assert hook in vars(H11Protocol), f"uvicorn's H11Protocol has no {hook} any more: review fnx.serve.connections"
    import inspect

    source = inspect.getsource(H11Protocol.handle_events)
    assert "self.app" in source and "self.timeout_keep_alive" in inspect.getsource(H11Protocol.on_response_complete)
    assert issubclass(guarded_protocol(ConnectionLimits()), GuardedH11Protocol)


def test_a_client_slow_with_its_headers_gets_408_and_a_silent_one_is_closed():
    limits = ConnectionLimits(header_timeout_s=0.3, body_timeout_s=5)

    async def client(port):
        (partial, t1), (silent, t2) = await asyncio.gather(
            talk(port, [b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\n"]), talk(port, []))
        assert partial.startswith(b"HTTP/1.1 408 ") and b"(--header-timeout)" in partial and 0.25 < t1 < 2
        assert silent == b"" and 0.25 < t2 < 2  # sent nothing: closed without an answer

    assert run_server(limits, client) == ["header_timeout"] * 2


def test_a_stalled_body_gets_408_and_a_slow_but_valid_client_is_served():
    limits = ConnectionLimits(header_timeout_s=0.6, body_timeout_s=0.3)

    async def client(port):
        stalled, t = await talk(port, [post(1000) + b"0123456789"])
        assert stalled.startswith(b"HTTP/1.1 408 ") and b"(--body-timeout)" in stalled and 0.25 < t < 2
        head = post(40)  # headers in 3 pieces within 0.6 s, then the body in 4 pieces over 0.6 s: each gap < 0.3 s
        slow, t = await talk(port, [head[:10], head[10:30], head[30:], b"x" * 10, b"x" * 10, b"x" * 10, b"x" * 10],
                             gap_s=0.15)
        assert slow.startswith(b"HTTP/1.1 200 ") and slow.endswith(b'"size": 40}'), slow
        assert t > 0.9  # longer than either timeout in all

    assert run_server(limits, client) == ["body_timeout"]


def test_keep_alive_closes_an_idle_connection_and_times_the_next_requests_headers():
    limits = ConnectionLimits(header_timeout_s=0.3, body_timeout_s=5)

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(GET_READY)
        assert (await reader.readuntil(b'"size": 0}')).startswith(b"HTTP/1.1 200 ")
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b"" and 0.4 < time.monotonic() - t0 < 2  # keep-alive 0.5
        writer.close()
        for pipelined in (False, True):  # the next request, begun after the answer or sent with the first
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            unended = b"GET /v2/health/live HTTP/1.1\r\n"
            writer.write(GET_READY + (unended if pipelined else b""))
            assert (await reader.readuntil(b'"size": 0}')).startswith(b"HTTP/1.1 200 ")
            t0 = time.monotonic()
            if not pipelined:
                await asyncio.sleep(0.3)  # idle, within keep-alive (0.5 s)
                writer.write(unended)
                t0 = time.monotonic()
            ended = await asyncio.wait_for(reader.read(), 5)  # keep-alive would close it silently at 0.5 s
            assert ended.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 0.45, (pipelined, ended)
            writer.close()

    assert run_server(limits, client, keep_alive=0.5) == ["header_timeout"] * 2


def test_past_the_budget_health_probes_are_answered_and_the_rest_get_503():
    limits = ConnectionLimits(header_timeout_s=3, body_timeout_s=3, max_connections=2, health_lane=1)

    async def client(port):
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]  # the budget, taken
        for _, w in slow:
            w.write(b"GET / HTTP/1.1\r\n")
        await asyncio.sleep(0.1)
        probe, _ = await talk(port, [GET_READY])  # in the lane: answered, then closed
        assert probe.startswith(b"HTTP/1.1 200 ") and b"connection: close" in probe.lower()
        work, _ = await talk(port, [post(3) + b"abc"])
        assert work.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in work.lower() and b"--max-connections" in work
        lane = await asyncio.open_connection("127.0.0.1", port)  # takes the lane, says nothing
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        refused, _ = await talk(port, [GET_READY])  # past budget and lane: 503 at once, closed
        assert refused.startswith(b"HTTP/1.1 503 ") and time.monotonic() - t0 < 1
        assert await asyncio.wait_for(lane[0].read(), 3) == b""  # the lane's header timeout is 1 s
        for _, w in [*slow, lane]:
            w.close()

    reasons = run_server(limits, client)
    assert sorted(reasons) == ["header_timeout", "over_limit", "over_limit"]


RUN = ("--threads", "1", "--engine", "onnxruntime")
NOFILE = 256  # the server's open-file limit here (1,024 on a Raspberry Pi OS image)
HEADER_S = 2.0


@pytest.fixture(scope="module")
def session(t0_dynamic):
    from fnx.runtime import load

    return load(t0_dynamic, device="cpu", threads=1, engine="onnxruntime")


@pytest.fixture(scope="module")
def server(t0_dynamic):
    with ServerProcess(f"t0={t0_dynamic}", *RUN, "--header-timeout", str(HEADER_S), "--body-timeout", str(HEADER_S),
                       nofile=NOFILE) as s:
        yield s
        assert s.stop() == 0 and "Traceback" not in s.log, s.log


def infer_body(x: np.ndarray) -> tuple[bytes, dict]:
    head = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    return head + x.tobytes(), {"Inference-Header-Content-Length": str(len(head))}


def logits(r: requests.Response) -> np.ndarray:
    (out,) = r.json()["outputs"]
    return np.asarray(out["data"], np.float32).reshape(out["shape"])


@pytest.mark.skipif(sys.platform != "linux", reason="counts the server's descriptors in /proc")
def test_a_flood_of_slow_clients_leaves_the_server_answering_within_the_header_timeout(server, session):
    budget = int(re.search(r"up to (\d+) connections; descriptor limit (\d+)", server.log).group(1))
    assert f"descriptor limit {NOFILE}" in server.log and 1 <= budget < NOFILE, server.log
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    want = session.run(x)[0]
    body, headers = infer_body(x)
    kept = requests.Session()  # a client that is already connected when the flood comes
    assert kept.post(server.http("/v2/models/t0/infer"), data=body, headers=headers, timeout=10).status_code == 200
    baseline, lines = server.descriptors(), len(server.lines)
    slow = []
    t0 = time.monotonic()
    for i in range(300):  # more than the open-file limit: 40 stalled bodies, then 260 unfinished headers
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.append(s)
        with contextlib.suppress(OSError):  # past the budget the server may have closed it already
            s.sendall(b"POST /v2/models/t0/infer HTTP/1.1\r\nHost: x\r\n"
                      + (b"Content-Length: 1000\r\n\r\n0123456789" if i < 40 else b""))
    flooded = time.monotonic()
    assert flooded - t0 < HEADER_S, "the flood took longer than the header timeout: the test proves nothing"
    r = kept.post(server.http("/v2/models/t0/infer"), data=body, headers=headers, timeout=10)
    assert r.status_code == 200 and np.array_equal(logits(r), want)  # its connection is in the budget
    codes: dict[str, float] = {}
    while time.monotonic() - t0 < HEADER_S + 3:  # at most ~60 tries, one new connection each
        for path in ("/v2/health/ready", "/v2/models/t0/infer"):
            try:
                r = requests.post(server.http(path), data=body, headers=headers, timeout=5) if "infer" in path \
                    else requests.get(server.http(path), timeout=5)
                codes.setdefault(f"{path} {r.status_code}", time.monotonic() - t0)
            except requests.ConnectionError:  # refused past the budget before its request was read
                codes.setdefault(f"{path} reset", time.monotonic() - t0)
        if "/v2/models/t0/infer 200" in codes:
            break
        time.sleep(0.05)
    assert codes.get("/v2/models/t0/infer 200", 99) < HEADER_S + 1.5, codes
    assert np.array_equal(logits(r), want)
    assert codes.get("/v2/health/ready 200", 99) < codes["/v2/models/t0/infer 200"], codes  # the lane frees first
    ended: dict[bytes, int] = {}
    for s in slow:  # every slow client was closed: after a 408 (timed out) or a 503 (past the budget)
        s.settimeout(max(0.1, t0 + HEADER_S + 3 - time.monotonic()))
        try:
            data = s.recv(4096)
            first = data.split(b" ", 2)[1] if data else b"EOF"
            while data:
                data = s.recv(4096)
        except ConnectionResetError:
            first = b"reset"
        except TimeoutError:
            first = b"still open"
        ended[first] = ended.get(first, 0) + 1
        s.close()
    assert sum(ended.values()) == 300 and set(ended) <= {b"408", b"503", b"reset", b"EOF"}, ended
    assert ended.get(b"408", 0) >= budget - 2, ended  # the slow clients in the budget (all but the kept one)
    log = "".join(server.lines[lines:])
    assert len(server.lines) - lines < 24 and "Too many open files" not in log, log
    for _ in range(40):
        if server.descriptors() <= baseline + 2:
            break
        time.sleep(0.05)
    assert server.descriptors() <= baseline + 2, (baseline, server.descriptors())
    metrics = requests.get(server.http("/metrics"), timeout=5).text
    closed = {m[0]: float(m[1]) for m in re.findall(r'fnx_connections_closed_total\{reason="(\w+)"\} (\S+)', metrics)}
    assert closed["header_timeout"] >= 1 and closed["body_timeout"] >= 1 and closed["over_limit"] >= 1, closed


def test_a_slow_but_valid_client_within_the_timeouts_is_served(server, session):
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    body, headers = infer_body(x)
    head = (f"POST /v2/models/t0/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    parts = [head[:20], head[20:], *(body[i:i + 16384] for i in range(0, len(body), 16384))]
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for part in parts:  # 0.6 s apart: each gap well within the 2 s timeouts, the whole longer than either
            s.sendall(part)
            time.sleep(0.6)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert time.monotonic() - t0 > HEADER_S + 1  # longer than either timeout in all
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    (out,) = json.loads(answer[answer.index(b"\r\n\r\n") + 4:])["outputs"]
    np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(out["shape"]), session.run(x)[0])


def test_a_flood_of_malformed_requests_is_logged_once(server):
    lines = len(server.lines)
    for _ in range(100):  # uvicorn warns 'Invalid HTTP request received.' for each
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    assert requests.get(server.http("/v2/health/live"), timeout=5).status_code == 200  # the log is written by now
    log = server.lines[lines:]
    assert len(log) == 1 and "Invalid HTTP request received." in log[0], log  # the summary comes after 60 s
