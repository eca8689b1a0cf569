"""`fnx serve`: artifacts behind an Open Inference Protocol v2 HTTP endpoint (torch-free: fnx[runtime] + fnx[serve])."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import (Device, DeviceChoice, Engine, InferencePrecision, SkipCheck, Threads, command, err_console,
                            run_options)
from fnx.errors import FnxError
from fnx.serve.budget import DEFAULT_MAX
from fnx.serve.models import ServeConfig

DEFAULTS = ServeConfig()


@command(app, "serve")
def serve_cmd(
    artifacts: list[str] = typer.Argument(..., help="Artifacts to serve, as PATH (named after the file) or NAME=PATH."),
    host: str = typer.Option(DEFAULTS.host, "--host", help="Address to listen on (loopback only unless you say otherwise)."),
    port: int = typer.Option(DEFAULTS.port, "--port", min=0, max=65535, help="Port (0: any free port, printed at start)."),
    max_batch: int = typer.Option(DEFAULTS.max_batch, "--max-batch", min=1, help="Samples per engine call at most (dynamic-batch artifacts; a fixed-batch graph batches up to its own batch)."),
    max_delay_ms: float = typer.Option(DEFAULTS.max_delay_ms, "--max-delay-ms", min=0.0, help="How long a batch waits for more requests after its first (0, the default: it takes what queued while the engine was busy)."),
    queue: int = typer.Option(DEFAULTS.queue_size, "--queue", min=1, help="Requests waiting per model at most; past it the server answers 503 with Retry-After."),
    max_body_mb: float = typer.Option(DEFAULTS.max_body_bytes / 2**20, "--max-body-mb", min=0.001, help="Largest request body (MiB); larger ones get 413."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help="A file holding a bearer token every request but the health probes must send (Authorization: Bearer TOKEN)."),
    graceful_timeout: float = typer.Option(DEFAULTS.graceful_timeout_s, "--graceful-timeout", min=0.0, help="Seconds SIGTERM / Ctrl-C waits for in-flight requests before cancelling them."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (uvicorn's access log)."),
    header_timeout: float = typer.Option(DEFAULTS.header_timeout_s, "--header-timeout", help="Seconds a client has to send its request line and headers (from connecting, or from a kept-alive request's first byte); then 408 and the connection is closed."),
    body_timeout: float = typer.Option(DEFAULTS.body_timeout_s, "--body-timeout", help="Longest pause in seconds while a request body arrives; then 408 and the connection is closed."),
    keep_alive: float = typer.Option(DEFAULTS.keep_alive_s, "--keep-alive", help="Seconds an idle kept-alive connection stays open."),
    max_connections: Optional[int] = typer.Option(DEFAULTS.max_connections, "--max-connections", help=f"Open connections at most; past it a new one gets 503 (health probes still answered). Default: up to {DEFAULT_MAX}, below the open-file limit (raised to the hard limit at start)."),
    device: Device = DeviceChoice("auto"),
    threads: Threads = None,
    engine: Engine = None,
    inference_precision: InferencePrecision = None,
    skip_manifest_check: SkipCheck = False,
) -> None:
    """Serve artifacts over HTTP on the Open Inference Protocol v2 (KServe/Triton clients), with dynamic batching,
    /metrics for Prometheus and POST /v2/models/NAME/classify for encoded images."""
    from fnx.serve.budget import connection_budget
    from fnx.serve.metrics import ServeMetrics
    from fnx.serve.models import parse_model_args
    from fnx.serve.server import (bind, check_files, check_installed, is_loopback, open_models, per_artifact_runs,
                                  serve)

    check_installed()
    pairs = parse_model_args(artifacts)
    config = ServeConfig(host=host, port=port, max_batch=max_batch, max_delay_ms=max_delay_ms, queue_size=queue,
                         max_body_bytes=int(max_body_mb * 2**20), token=read_token(token_file),
                         graceful_timeout_s=graceful_timeout, access_log=access_log, header_timeout_s=header_timeout,
                         body_timeout_s=body_timeout, keep_alive_s=keep_alive, max_connections=max_connections)
    config.check()
    if not is_loopback(host) and config.token is None:
        err_console.print(f"[yellow]warning:[/] listening on {host} without --token-file: anyone who can reach this "
                          f"address can use the models", highlight=False, soft_wrap=True)
    check_files(pairs)
    runs = per_artifact_runs([p for _, p in pairs], run_options(device, threads, engine, inference_precision))
    budget = connection_budget(config.max_connections)  # raises the open-file limit; refuses a budget over it
    sock = bind(host, port)  # the address is taken (or refused) before the models are opened
    metrics = ServeMetrics(name for name, _ in pairs)
    try:
        models = open_models(pairs, config, runs, check_manifest=not skip_manifest_check, metrics=metrics)
    except BaseException:
        sock.close()
        raise
    for m in models:
        err_console.print(f"  {m.name}: {m.session.path.name} on {m.session.engine_label}, input "
                          f"{list(m.inputs[0].shape)} {m.session.layout}; batching {m.batch_note}",
                          highlight=False, soft_wrap=True)
    say = lambda line: err_console.print(line, highlight=False, soft_wrap=True)  # noqa: E731
    stopped_by = serve(models, config, metrics, sock, announce=say, budget=budget)
    say(f"fnx serve: stopped{f' by {stopped_by}' if stopped_by else ''} after {metrics.total()} request(s)")

def read_token(path: Path | None) -> str | None:
    """Return the bearer token in path (surrounding whitespace removed); FnxError if unreadable, empty or not one
    line of printable ASCII."""
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise FnxError(f"cannot read the token file {path} ({e}); pass a readable file with one line") from e
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        why = "it is empty" if not token else "it holds spaces or characters that are not printable ASCII"
        raise FnxError(f"the token file {path} must hold one token of printable ASCII without spaces ({why})")
    return token
