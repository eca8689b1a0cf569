"""The server's Prometheus metrics (prometheus-client), in a registry of its own per app."""

from __future__ import annotations

from typing import Iterable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """Requests, errors, queue depth, batch sizes and latency, labelled by model and endpoint; open connections and
    the ones the server ended (timeouts, over the connection budget).

    Model labels only ever take the served models' names (an unknown name counts as ""), so a client cannot
    grow the label set.
    """

    def __init__(self, models: Iterable[str]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.models = set(models)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("fnx_requests", "HTTP requests answered, by model, endpoint and status code",
                                ["model", "endpoint", "code"], registry=r)
        self.errors = Counter("fnx_request_errors", "Requests answered with an error status (4xx/5xx)",
                              ["model", "endpoint", "code"], registry=r)
        self.latency = Histogram("fnx_request_latency_seconds", "Time from request received to response ready",
                                 ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("fnx_queue_depth", "Requests waiting for a batch", ["model"], registry=r)
        self.batch_size = Histogram("fnx_batch_size", "Samples per engine call", ["model"], buckets=BATCH_BUCKETS,
                                    registry=r)
        self.inference = Histogram("fnx_inference_seconds", "Engine time per batch", ["model"],
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("fnx_rejected", "Requests refused with 503 because the model's queue was full",
                                ["model"], registry=r)
        self.connections = Gauge("fnx_connections", "Open client connections", registry=r)
        self.connections_closed = Counter("fnx_connections_closed", "Connections the server ended: header_timeout, "
                                          "body_timeout, over_limit (503: past --max-connections)", ["reason"],
                                          registry=r)

    def label(self, model: str | None) -> str:
        return model if model in self.models else ""

    def answered(self, model: str | None, endpoint: str, code: int, seconds: float) -> None:
        m = self.label(model)
        self.requests.labels(m, endpoint, str(code)).inc()
        if code >= 400:
            self.errors.labels(m, endpoint, str(code)).inc()
        self.latency.labels(m, endpoint).observe(seconds)

    def batch(self, model: str, size: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.inference.labels(model).observe(seconds)

    def total(self) -> int:
        """Requests answered so far, all endpoints and codes."""
        return int(sum(s.value for m in self.requests.collect() for s in m.samples if s.name.endswith("_total")))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
