"""fnx's image extension: POST encoded images to /v2/models/NAME/classify, get top-k labels back.

The body is one image (Content-Type image/* or application/octet-stream) or multipart/form-data with one or more
image files. Images are decoded and preprocessed exactly as `fnx run` does (its default mode unless
`?preprocess=exact`), then batched with every other request for the model.
"""

from __future__ import annotations

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.preprocess import PREPROCESS_MODES, RUN_MODE, FAST_MARGIN, decode_image, preprocess, small_image_note, to_layout
from fnx.serve.models import ServedModel
from fnx.serve.protocol import ProtocolError

MAX_FILES = 64  # images in one multipart request


def _query(request, model: ServedModel) -> tuple[int, str]:
    topk, mode = request.query_params.get("topk", "5"), request.query_params.get("preprocess", RUN_MODE)
    if not topk.isdigit() or int(topk) < 1:
        raise ProtocolError(400, f"topk must be a whole number >= 1, not {topk!r}")
    if mode not in PREPROCESS_MODES:
        raise ProtocolError(400, f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, not {mode!r}")
    return int(topk), mode


async def _images(request, limit: int) -> list[tuple[str, bytes]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES, max_part_size=limit)
        images = []
        for key, value in form.multi_items():
            if isinstance(value, str):
                raise ProtocolError(400, f"form field {key!r} is not a file; send images as file parts (options go "
                                         f"in the query: ?topk=5&preprocess=exact)")
            images.append((value.filename or key, await value.read()))
        if not images:
            raise ProtocolError(400, "the multipart body has no image file")
        return images
    if kind.startswith("image/") or kind in ("application/octet-stream", ""):
        data = await request.body()
        if not data:
            raise ProtocolError(400, "the body is empty; send an encoded image (JPEG, PNG, BMP, WebP)")
        return [("body", data)]
    raise ProtocolError(415, f"Content-Type {kind!r} is not an image; send image/jpeg, image/png, ... or "
                             f"multipart/form-data here, or tensors as JSON to /v2/models/NAME/infer")


def _prepare(images: list[tuple[str, bytes]], model: ServedModel, mode: str) -> tuple[np.ndarray, list[str | None]]:
    spec = model.session.preprocessing
    arrays, notes = [], []
    for name, data in images:
        image = decode_image(data, name, int(FAST_MARGIN * spec.resize_short) if mode == "fast" else None)
        notes.append(small_image_note(*image.size, spec))
        arrays.append(preprocess(image, spec, mode))
    return to_layout(np.stack(arrays), model.session.layout), notes


async def classify_images(model: ServedModel, request, limit: int) -> dict:
    """Return {"model_name", "predictions": [{"source", "top": [{"label", "index", "score"}]}]} for the request."""
    from starlette.concurrency import run_in_threadpool

    if not model.classifier:
        raise ProtocolError(400, f"model {model.name!r} has no classifier head (a backbone export); send tensors to "
                                 f"/v2/models/{model.name}/infer for its feature maps")
    topk, mode = _query(request, model)
    images = await _images(request, limit)
    try:
        batch, notes = await run_in_threadpool(_prepare, images, model, mode)
    except FnxError as e:
        raise ProtocolError(400, str(e)) from e
    (logits, *_) = await model.batcher.submit(batch)
    predictions = []
    for (name, _), row, note in zip(images, logits, notes):
        pred = model.session.top(row, topk, name).to_dict()
        if note:
            pred["warning"] = note
        predictions.append(pred)
    return {"model_name": model.name, "preprocess": mode, "predictions": predictions}
