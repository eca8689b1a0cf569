"""The ASGI application: the Open Inference Protocol's REST routes, fnx's image route and /metrics (starlette)."""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from typing import Awaitable, Callable

from fnx import __version__
from fnx.errors import FnxError
from fnx.serve.batcher import Overloaded
from fnx.serve.guards import BearerToken, BodyLimit, BodyTooLarge
from fnx.serve.metrics import ServeMetrics
from fnx.serve.models import ServeConfig, ServedModel
from fnx.serve.protocol import HEADER_LENGTH, ProtocolError, decompress, encode_infer_response, parse_infer_request

EXTENSIONS = ["binary_tensor_data", "classification", "fnx_image_classify"]


def create_app(models: list[ServedModel], config: ServeConfig, metrics: ServeMetrics | None = None):
    """Return the server's Starlette app for models (their Sessions already open); batchers start with it."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    by_name = {m.name: m for m in models}
    metrics = metrics or ServeMetrics(by_name)
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for m in models:
            await m.batcher.start()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            for m in models:
                await m.batcher.stop(config.graceful_timeout_s)

    def model_of(request) -> ServedModel:
        name = request.path_params["model"]
        version = request.path_params.get("version", "1")
        if name not in by_name or version not in ("1", ""):
            what = f"model {name!r}" + (f" version {version!r}" if version not in ("1", "") else "")
            raise ProtocolError(404, f"{what} is not served here; served: {sorted(by_name)} (version 1)")
        return by_name[name]

    def route(endpoint: str, handler: Callable[..., Awaitable], methods=("GET",)):
        async def answer(request):
            t0, model = time.perf_counter(), request.path_params.get("model")
            try:
                response = await handler(request)
            except ProtocolError as e:
                response = JSONResponse({"error": str(e)}, e.status)
            except BodyTooLarge as e:
                response = JSONResponse({"error": str(e)}, 413, headers={"connection": "close"})
            except Overloaded as e:
                metrics.rejected.labels(metrics.label(model)).inc()
                response = JSONResponse({"error": str(e)}, 503, headers={"retry-after": str(e.retry_after)})
            except FnxError as e:  # the runtime refused the input (a bad image, a shape the engine would not take)
                response = JSONResponse({"error": str(e)}, 400)
            except ClientDisconnect:  # the client left while sending its body: nobody to answer
                response = Response(status_code=499)
            except Exception as e:  # a fault of the server or engine, not of the request: say so, keep serving
                traceback.print_exc(file=sys.stderr)
                response = JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, 500)
            metrics.answered(model, endpoint, response.status_code, time.perf_counter() - t0)
            return response

        return answer

    async def live(request):
        return JSONResponse({"live": True})

    async def ready(request):
        ok = state["ready"] and all(m.batcher.running for m in models)
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    async def server_metadata(request):
        return JSONResponse({"name": "fnx", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(request):
        return JSONResponse(model_of(request).metadata())

    async def model_config(request):
        return JSONResponse(model_of(request).config())

    async def model_ready(request):
        m = model_of(request)
        ok = state["ready"] and m.batcher.running
        return JSONResponse({"name": m.name, "ready": ok}, 200 if ok else 503)

    async def infer(request):
        m = model_of(request)
        body = decompress(await request.body(), request.headers.get("content-encoding"), config.max_body_bytes)
        req = parse_infer_request(body, request.headers.get(HEADER_LENGTH), m.inputs, m.outputs)
        if any(o.class_count for o in req.outputs) and not m.classifier:
            raise ProtocolError(400, f"model {m.name!r} has no classifier head: classification does not apply")
        outs = await m.batcher.submit(req.array)
        content, headers = encode_infer_response(m.name, req, {t.name: o for t, o in zip(m.outputs, outs)},
                                                 m.session.labels)
        return Response(content, headers=headers)

    async def classify(request):
        from fnx.serve.images import classify_images

        return JSONResponse(await classify_images(model_of(request), request, config.max_body_bytes))

    async def metrics_page(request):
        for m in models:  # the gauge is also set as the queue moves; read it once more for the scrape
            metrics.queue_depth.labels(m.name).set(m.batcher.depth)
        content, kind = metrics.exposition()
        return Response(content, media_type=kind)

    model = "/v2/models/{model}"
    version = "/v2/models/{model}/versions/{version}"
    routes = [Route("/v2/health/live", route("live", live)), Route("/v2/health/ready", route("ready", ready)),
              Route("/v2", route("server_metadata", server_metadata)), Route("/metrics", route("metrics", metrics_page))]
    for base in (model, version):
        routes += [Route(base, route("model_metadata", model_metadata)),
                   Route(f"{base}/config", route("model_config", model_config)),
                   Route(f"{base}/ready", route("model_ready", model_ready)),
                   Route(f"{base}/infer", route("infer", infer), methods=["POST"]),
                   Route(f"{base}/classify", route("classify", classify), methods=["POST"])]
    middleware = [Middleware(BearerToken, token=config.token), Middleware(BodyLimit, limit=config.max_body_bytes)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.metrics = metrics
    return app


async def _not_found(request, exc):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": f"no route {request.url.path}; the server speaks the Open Inference Protocol v2 "
                                  f"(/v2/health/live, /v2/models/NAME/infer, ...)"}, 404)


async def _not_allowed(request, exc):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, 405)

