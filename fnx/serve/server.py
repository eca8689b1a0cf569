"""Open the artifacts, bind the address and serve until SIGTERM or Ctrl-C (uvicorn), finishing in-flight requests."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
from pathlib import Path
from typing import Callable

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.serve.models import ServeConfig, ServedModel, served_model

NEEDS = ("starlette", "uvicorn", "prometheus_client", "multipart")  # the fnx[serve] extra's top-level modules


def check_installed() -> None:
    """Raise FnxError naming the extra when a module of fnx[serve] is missing (before any model is opened)."""
    import importlib.util

    missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        raise FnxError(f"fnx serve needs {', '.join(missing)}: {pip_install('serve')}")


def open_models(pairs: list[tuple[str, Path]], config: ServeConfig, runs: list, check_manifest: bool = True,
                metrics=None) -> list[ServedModel]:
    """Open one Session per (name, artifact) with its RunOptions (per_artifact_runs, after check_files) and wrap
    it for serving; FnxError at the first that cannot open."""
    from fnx.runtime import load

    models = []
    for (name, path), run_here in zip(pairs, runs):
        session = load(path, check_manifest=check_manifest, run=run_here)
        observe = depth = None
        if metrics is not None:
            observe = lambda size, secs, n=name: metrics.batch(n, size, secs)  # noqa: E731
            depth = lambda d, n=name: metrics.queue_depth.labels(n).set(d)  # noqa: E731
        models.append(served_model(name, session, config, observe, depth))
    return models


def check_files(pairs: list[tuple[str, Path]]) -> None:
    """Refuse a missing artifact or one of no known format, all before the first (slow) open."""
    from fnx.formats import detect_format

    for _, path in pairs:
        detect_format(path)


def per_artifact_runs(paths: list[Path], run):
    """Return the RunOptions for each artifact: a forced --engine applies to the artifacts of the formats it runs, the
    others keep their default engine; FnxError if it runs none of them."""
    import dataclasses

    from fnx.formats import detect_format
    from fnx.runtime.engines import get_engine

    if run is None or run.engine is None:
        return [run] * len(paths)
    engine = get_engine(run.engine)
    fits = [detect_format(p).name in engine.formats for p in paths]
    if not any(fits):
        raise FnxError(f"--engine {run.engine} runs {', '.join(engine.formats)} artifacts, and none of these is one")
    return [run if fit else dataclasses.replace(run, engine=None) for fit in fits]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on host:port (port 0: a free port the OS picks); FnxError if it cannot bind."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        raise FnxError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host") from e
    sock.set_inheritable(True)
    return sock


def serve(models: list[ServedModel], config: ServeConfig, metrics, sock: socket.socket,
          announce: Callable[[str], None] = print, budget=None) -> str | None:
    """Serve models on the bound socket until a signal; return the signal's name that stopped it (None if stopped
    otherwise). budget: fnx.serve.budget.Budget (read from the descriptor limit if None)."""
    import logging
    import sys
    import warnings

    import uvicorn

    from fnx.runtime.preprocess import SmallImageWarning
    from fnx.serve import logs
    from fnx.serve.app import create_app
    from fnx.serve.budget import ACCEPT_BATCH, LISTEN_QUEUE, connection_budget
    from fnx.serve.connections import ConnectionLimits, guarded_protocol

    budget = budget or connection_budget(config.max_connections)
    throttle = logs.Throttle()

    class Server(uvicorn.Server):
        stopped_by: list[int] = []

        @contextlib.contextmanager
        def capture_signals(self):  # stop gracefully on the signal, then exit normally (uvicorn re-raises it)
            with super().capture_signals():
                try:
                    yield
                finally:
                    captured = getattr(self, "_captured_signals", [])
                    Server.stopped_by = list(captured)
                    captured.clear()

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            for s in sockets or []:  # asyncio listened with Config.backlog (ACCEPT_BATCH): give the kernel its queue
                s.listen(LISTEN_QUEUE)

        async def on_tick(self, counter: int) -> bool:  # uvicorn calls it every 0.1 s
            if counter % 10 == 0:
                throttle.flush()
            return await super().on_tick(counter)

    warnings.filterwarnings("ignore", category=SmallImageWarning)  # the image route says it per image instead
    host, port = sock.getsockname()[:2]
    app = create_app(models, config, metrics)
    limits = ConnectionLimits(config.header_timeout_s, config.body_timeout_s, budget.max_connections,
                              budget.health_lane)
    record = lambda reason: metrics.connections_closed.labels(reason).inc()  # noqa: E731
    server = Server(uvicorn.Config(app, log_level="warning", access_log=config.access_log, lifespan="on",
                                   timeout_graceful_shutdown=int(config.graceful_timeout_s), server_header=False,
                                   http=guarded_protocol(limits, record), ws="none", backlog=ACCEPT_BATCH,
                                   timeout_keep_alive=config.keep_alive_s))  # type: ignore[arg-type]
    metrics.connections.set_function(lambda: len(server.server_state.connections))
    own = logging.getLogger("fnx.serve")  # the app's internal errors (fnx.serve.app), one line and a traceback
    if not own.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fnx serve: %(message)s"))
        own.addHandler(handler)
        own.propagate = False
    remove = logs.install(throttle)
    shown = f"[{host}]" if ":" in host else host
    announce(f"fnx serve: listening on http://{shown}:{port} (Open Inference Protocol v2; {budget.describe()}; "
             f"Ctrl-C or SIGTERM stops after in-flight requests)")
    try:
        server.run(sockets=[sock])
    finally:
        remove()
    return signal.Signals(Server.stopped_by[0]).name if Server.stopped_by else None
