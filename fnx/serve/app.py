"""The ASGI application: the Open Inference Protocol's REST routes, fnx's image route and /metrics (starlette).

Imported only to serve (fnx.serve.server, after checking that fnx[serve] is installed)."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fnx import __version__
from fnx.errors import FnxError
from fnx.serve.batcher import Overloaded
from fnx.serve.guards import BearerToken, BodyLimit, BodyTooLarge
from fnx.serve.metrics import ServeMetrics
from fnx.serve.models import ServeConfig, ServedModel
from fnx.serve.protocol import HEADER_LENGTH, ProtocolError, decompress, encode_infer_response, parse_infer_request

EXTENSIONS = ["binary_tensor_data", "classification", "fnx_image_classify"]
log = logging.getLogger("fnx.serve")  # a repeated fault is logged once per interval (fnx.serve.logs)


def create_app(models: list[ServedModel], config: ServeConfig, metrics: ServeMetrics | None = None):
    """Return the server's Starlette app for models (their Sessions already open); batchers start with it."""
    h = Handlers(models, config, metrics or ServeMetrics(m.name for m in models))
    routes = [Route("/v2/health/live", h.route("live", h.live)), Route("/v2/health/ready", h.route("ready", h.ready)),
              Route("/v2", h.route("server_metadata", h.server_metadata)),
              Route("/metrics", h.route("metrics", h.metrics_page))]
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [Route(base, h.route("model_metadata", h.model_metadata)),
                   Route(f"{base}/config", h.route("model_config", h.model_config)),
                   Route(f"{base}/ready", h.route("model_ready", h.model_ready)),
                   Route(f"{base}/infer", h.route("infer", h.infer), methods=["POST"]),
                   Route(f"{base}/classify", h.route("classify", h.classify), methods=["POST"])]
    middleware = [Middleware(BearerToken, token=config.token), Middleware(BodyLimit, limit=config.max_body_bytes)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=h.lifespan,
                    exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.metrics = h.metrics
    return app


class Handlers:
    """The routes' handlers over the served models; `route` wraps each with error answers and metrics."""

    def __init__(self, models: list[ServedModel], config: ServeConfig, metrics: ServeMetrics):
        self.models, self.config, self.metrics = models, config, metrics
        self.by_name = {m.name: m for m in models}
        self.is_ready = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        for m in self.models:
            await m.batcher.start()
        self.is_ready = True
        try:
            yield
        finally:
            self.is_ready = False
            for m in self.models:
                await m.batcher.stop(self.config.graceful_timeout_s)

    def model_of(self, request) -> ServedModel:
        name = request.path_params["model"]
        version = request.path_params.get("version", "1")
        if name not in self.by_name or version not in ("1", ""):
            what = f"model {name!r}" + (f" version {version!r}" if version not in ("1", "") else "")
            raise ProtocolError(404, f"{what} is not served here; served: {sorted(self.by_name)} (version 1)")
        return self.by_name[name]

    def route(self, endpoint: str, handler: Callable[..., Awaitable]):
        async def answer(request):
            t0, model = time.perf_counter(), request.path_params.get("model")
            try:
                response = await handler(request)
            except ProtocolError as e:
                response = JSONResponse({"error": str(e)}, e.status)
            except BodyTooLarge as e:
                response = JSONResponse({"error": str(e)}, 413, headers={"connection": "close"})
            except Overloaded as e:
                self.metrics.rejected.labels(self.metrics.label(model)).inc()
                response = JSONResponse({"error": str(e)}, 503, headers={"retry-after": str(e.retry_after)})
            except FnxError as e:  # the runtime refused the input (a bad image, a shape the engine would not take)
                response = JSONResponse({"error": str(e)}, 400)
            except ClientDisconnect:  # the client left while sending its body: nobody to answer
                response = Response(status_code=499)
            except Exception as e:  # a fault of the server or engine, not of the request: say so, keep serving
                log.error("internal error answering %s: %s: %s", endpoint, type(e).__name__, e, exc_info=True)
                response = JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, 500)
            self.metrics.answered(model, endpoint, response.status_code, time.perf_counter() - t0)
            return response

        return answer

    async def live(self, request):
        return JSONResponse({"live": True})

    async def ready(self, request):
        ok = self.is_ready and all(m.batcher.running for m in self.models)
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    async def server_metadata(self, request):
        return JSONResponse({"name": "fnx", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(self, request):
        return JSONResponse(self.model_of(request).metadata())

    async def model_config(self, request):
        return JSONResponse(self.model_of(request).config())

    async def model_ready(self, request):
        m = self.model_of(request)
        ok = self.is_ready and m.batcher.running
        return JSONResponse({"name": m.name, "ready": ok}, 200 if ok else 503)

    async def infer(self, request):
        m = self.model_of(request)
        body = decompress(await request.body(), request.headers.get("content-encoding"), self.config.max_body_bytes)
        req = parse_infer_request(body, request.headers.get(HEADER_LENGTH), m.inputs, m.outputs)
        if any(o.class_count for o in req.outputs) and not m.classifier:
            raise ProtocolError(400, f"model {m.name!r} has no classifier head: classification does not apply")
        outs = await m.batcher.submit(req.array)
        content, headers = encode_infer_response(m.name, req, {t.name: o for t, o in zip(m.outputs, outs)},
                                                 m.session.labels)
        return Response(content, headers=headers)

    async def classify(self, request):
        from fnx.serve.images import classify_images

        return JSONResponse(await classify_images(self.model_of(request), request, self.config.max_body_bytes))

    async def metrics_page(self, request):
        for m in self.models:  # the gauge also moves with the queue; read it once more for the scrape
            self.metrics.queue_depth.labels(m.name).set(m.batcher.depth)
        content, kind = self.metrics.exposition()
        return Response(content, media_type=kind)


async def _not_found(request, exc):
    return JSONResponse({"error": f"no route {request.url.path}; the server speaks the Open Inference Protocol v2 "
                                  f"(/v2/health/live, /v2/models/NAME/infer, ...)"}, 404)


async def _not_allowed(request, exc):
    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, 405)
