"""What the server serves: each artifact's Session (opened once), its protocol description and its batcher."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fnx.errors import FnxError
from fnx.formats import detect_format
from fnx.serve.batcher import Batcher
from fnx.serve.protocol import ProtocolTensor

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class ServeConfig:
    """The server's limits and address; the CLI's options, one place for their defaults."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 8
    max_delay_ms: float = 0.0  # 0: a batch takes what queued while the engine was busy (docs/BENCHMARKS.md: a window
    # only added latency at low concurrency on a 2-core machine)
    queue_size: int = 64
    max_body_bytes: int = 16 * 2**20
    token: str | None = None
    graceful_timeout_s: float = 30.0
    access_log: bool = False
    header_timeout_s: float = 10.0  # a connection's request line and headers, from its first byte (or its opening)
    body_timeout_s: float = 10.0  # the longest pause between two parts of a request body
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this
    max_connections: int | None = None  # None: derived from the open-file limit (fnx.serve.budget)

    def check(self) -> None:
        """FnxError naming the option whose value cannot work (the timeouts and the connection budget)."""
        for option, value in (("--header-timeout", self.header_timeout_s), ("--body-timeout", self.body_timeout_s),
                              ("--keep-alive", self.keep_alive_s)):
            if not value > 0:
                raise FnxError(f"{option} must be more than 0 seconds (got {value:g})")
        if self.max_connections is not None and self.max_connections < 1:
            raise FnxError(f"--max-connections must be at least 1 (got {self.max_connections}); leave it out to derive "
                           f"it from the open-file limit")


@dataclass
class ServedModel:
    """One artifact behind the protocol: its Session, tensors as the protocol names them, and its batcher."""

    name: str
    session: object  # fnx.runtime.Session (typed loosely: the server never needs torch or an engine at import)
    batcher: Batcher
    inputs: list[ProtocolTensor]
    outputs: list[ProtocolTensor]
    batch_note: str  # how requests are batched for this artifact, for the start-up table and /config
    format: str  # the artifact's format (fnx.formats), read once at start

    @property
    def classifier(self) -> bool:
        return len(self.session.outputs[0].shape) == 2

    def metadata(self) -> dict:
        m = self.session.manifest
        return {"name": self.name, "versions": ["1"], "platform": f"fnx_{self.format}",
                "inputs": [t.metadata() for t in self.inputs], "outputs": [t.metadata() for t in self.outputs],
                "parameters": {"engine": self.session.engine_label, "layout": self.session.layout,
                               "precision": m.artifact.precision if m is not None else None,
                               "max_batch_size": self.batcher.max_batch}}


    def config(self) -> dict:
        """Triton's model-configuration view (tritonclient's get_model_config)."""
        dims = lambda t: list(t.shape[1:])  # noqa: E731
        return {"name": self.name, "platform": f"fnx_{self.format}", "max_batch_size": self.batcher.max_batch,
                "input": [{"name": t.name, "data_type": "TYPE_FP32", "dims": dims(t)} for t in self.inputs],
                "output": [{"name": t.name, "data_type": "TYPE_FP32", "dims": dims(t)} for t in self.outputs],
                "dynamic_batching": {"max_queue_delay_microseconds": int(self.batcher.max_delay_s * 1e6)},
                "parameters": {"batching": self.batch_note}}


def parse_model_args(args: list[str]) -> list[tuple[str, Path]]:
    """Return (name, path) for each `PATH` or `NAME=PATH`; a bare path is named after its file (stem)."""
    pairs = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = Path(arg).stem, arg
        if not NAME_PATTERN.match(name):
            raise FnxError(f"model name {name!r} (from {arg!r}) is not usable in a URL; name it: NAME=PATH with "
                           f"letters, digits, '_', '.' and '-'")
        pairs.append((name, Path(path)))
    names = [n for n, _ in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FnxError(f"two artifacts would both be served as {', '.join(dupes)}; name them apart: NAME=PATH")
    return pairs


def batch_note(fmt: str, fixed: int | None, config: ServeConfig) -> str:
    """How requests are batched for an artifact of format fmt whose graph has batch `fixed` (None or 0: dynamic),
    with the advice that applies to its format."""
    if not fixed:
        return f"dynamic: up to {config.max_batch} samples or {config.max_delay_ms:g} ms"
    note = f"fixed batch {fixed} in the graph: requests are batched up to {fixed}"
    if fixed == 1:
        from fnx.formats import file_formats

        takers = [f for f in file_formats().values() if f.dynamic_batch]
        note += ("; export with --dynamic-batch to batch more" if file_formats()[fmt].dynamic_batch else
                 f"; a {fmt} export keeps the batch it was exported with (fnx export --dynamic-batch makes "
                 f"{' and '.join(f.description.split()[0] for f in takers)} artifacts that batch more)")
    return note


def served_model(name: str, session, config: ServeConfig, observe=None, depth=None) -> ServedModel:
    """Return the ServedModel of an open Session; a graph of fixed batch B is batched up to B, not max_batch."""
    fixed = session.inputs[0].shape[0]
    max_batch = int(fixed) if fixed else config.max_batch
    fmt = session.manifest.artifact.format if session.manifest is not None else detect_format(session.path).name
    note = batch_note(fmt, fixed, config)
    batcher = Batcher(name, session, max_batch, config.max_delay_ms / 1e3, config.queue_size, observe, depth)
    spec = lambda t: ProtocolTensor(t.name, (-1, *(int(d) for d in t.shape[1:])))  # noqa: E731
    return ServedModel(name, session, batcher, [spec(session.inputs[0])], [spec(o) for o in session.outputs], note, fmt)

