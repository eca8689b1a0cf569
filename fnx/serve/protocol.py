"""The Open Inference Protocol (KServe v2) REST bodies: infer requests in, infer responses out.

Both the JSON tensor form and Triton's binary tensor data extension (a JSON header of
`Inference-Header-Content-Length` bytes followed by raw tensors, what `tritonclient` sends by default) are read
and written, as is Triton's classification extension (a `classification` count on a requested output: the top classes as
"score:index:label" strings). Bad input raises ProtocolError with the HTTP status and the protocol's error text.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

# The protocol's datatype names for the numpy dtypes fnx's Sessions take and give (float in, float out).
DATATYPES = {"FP32": np.dtype(np.float32)}
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(Exception):
    """A request the protocol cannot serve: `status` is the HTTP status, the message the `{"error": ...}` text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ProtocolTensor:
    """A model tensor as the protocol describes it; -1 for a dimension of any size (the batch)."""

    name: str
    shape: tuple[int, ...]
    datatype: str = "FP32"

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class RequestedOutput:
    name: str
    binary: bool
    class_count: int = 0


@dataclass
class InferRequest:
    """One parsed infer request: its id, the input batch (model-ready float32) and what to send back."""

    id: str | None
    array: np.ndarray
    outputs: list[RequestedOutput] = field(default_factory=list)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Return the request body without its Content-Encoding (gzip or deflate), refusing more than limit bytes."""
    if not encoding or encoding == "identity":
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding.lower())
    if wbits is None:
        raise ProtocolError(415, f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise ProtocolError(400, f"the {encoding} body cannot be decompressed ({e})") from e
    if len(out) > limit or inflater.unconsumed_tail:
        raise ProtocolError(413, f"the decompressed body is over the server's limit of {limit} bytes")
    return out


def parse_infer_request(body: bytes, header_length: str | None, inputs: Sequence[ProtocolTensor],
                        outputs: Sequence[ProtocolTensor]) -> InferRequest:
    """Return the request in body for a model with these input and output specs; ProtocolError (400) if it does
    not fit them: names, datatypes, shapes, data sizes and values are all checked."""
    head, binary = _split(body, header_length)
    try:
        req = json.loads(head)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(400, f"the request is not valid JSON ({e})") from e
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list):
        raise ProtocolError(400, "the request must be a JSON object with an 'inputs' list")
    given = {t.get("name") if isinstance(t, dict) else None: t for t in req["inputs"]}
    want = {t.name: t for t in inputs}
    if set(given) != set(want) or len(given) != len(req["inputs"]):
        raise ProtocolError(400, f"the model takes the input(s) {sorted(want)}, the request gave "
                                 f"{[t.get('name') if isinstance(t, dict) else t for t in req['inputs']]}")
    arrays, offset = {}, 0
    for tensor in req["inputs"]:  # binary chunks follow the inputs' order in the request
        arrays[tensor["name"]], offset = _input_array(tensor, want[tensor["name"]], binary, offset)
    if offset != len(binary):
        raise ProtocolError(400, f"the request carries {len(binary) - offset} byte(s) of binary data that no input "
                                 f"claims (binary_data_size)")
    params = req.get("parameters") if isinstance(req.get("parameters"), dict) else {}
    requested = _requested_outputs(req.get("outputs"), outputs, bool(params.get("binary_data_output", False)))
    rid = req.get("id")
    return InferRequest(str(rid) if rid is not None else None, arrays[inputs[0].name], requested)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 <= n <= len(body):
        raise ProtocolError(400, f"Inference-Header-Content-Length {header_length!r} is not a length within the "
                                 f"{len(body)}-byte body")
    return body[:n], body[n:]


def _input_array(tensor: dict, spec: ProtocolTensor, binary: bytes, offset: int) -> tuple[np.ndarray, int]:
    name, dtype = spec.name, tensor.get("datatype")
    if dtype not in DATATYPES or dtype != spec.datatype:
        raise ProtocolError(400, f"input {name!r} is {spec.datatype}, the request sent {dtype!r}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or len(shape) != len(spec.shape)
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or shape[0] < 1 or any(w not in (-1, d) for w, d in zip(spec.shape[1:], shape[1:]))):
        raise ProtocolError(400, f"input {name!r} takes shape {list(spec.shape)} (-1: any batch of 1 or more), "
                                 f"the request sent {shape!r}")
    count = math.prod(shape)  # Python ints: a huge batch cannot overflow
    params = tensor.get("parameters") if isinstance(tensor.get("parameters"), dict) else {}
    _known_parameters(params, ("binary_data_size",), f"input {name!r}")
    size = params.get("binary_data_size")
    if size is not None:
        want = count * DATATYPES[dtype].itemsize
        if not isinstance(size, int) or isinstance(size, bool) or size != want or offset + size > len(binary):
            raise ProtocolError(400, f"input {name!r} of shape {shape} {dtype} is {want} bytes; binary_data_size says "
                                     f"{size!r} and {len(binary) - offset} byte(s) of binary data are left")
        array = np.frombuffer(binary, DATATYPES[dtype], count, offset).reshape(shape)
        offset += size
    else:
        if "data" not in tensor:
            raise ProtocolError(400, f"input {name!r} has neither 'data' nor a binary_data_size parameter")
        try:
            array = np.asarray(tensor["data"], dtype=DATATYPES[dtype])
        except (TypeError, ValueError) as e:
            raise ProtocolError(400, f"input {name!r}: 'data' is not a list of numbers ({e})") from e
        if array.size != count:
            raise ProtocolError(400, f"input {name!r} of shape {shape} needs {count} values, 'data' has {array.size}")
        array = array.reshape(shape)
    if not np.isfinite(array).all():
        raise ProtocolError(400, f"input {name!r} contains NaN or infinity")
    return array, offset


def _requested_outputs(asked: Any, outputs: Sequence[ProtocolTensor], binary_default: bool) -> list[RequestedOutput]:
    if asked is None:
        return [RequestedOutput(o.name, binary_default) for o in outputs]
    known = {o.name for o in outputs}
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise ProtocolError(400, "'outputs' must be a list of objects with a 'name'")
    result = []
    for o in asked:
        if o.get("name") not in known:
            raise ProtocolError(400, f"the model has no output {o.get('name')!r}; it has {sorted(known)}")
        params = o.get("parameters") if isinstance(o.get("parameters"), dict) else {}
        _known_parameters(params, ("binary_data", "classification"), f"output {o['name']!r}")
        count = params.get("classification", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ProtocolError(400, f"classification for output {o['name']!r} must be a whole number >= 0, not "
                                     f"{count!r}")
        result.append(RequestedOutput(o["name"], bool(params.get("binary_data", binary_default)), count))
    return result


def _known_parameters(params: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        extra = " (shared memory is not supported: send the tensor in the body)" if any(
            k.startswith("shared_memory") for k in unknown) else ""
        raise ProtocolError(400, f"{where}: parameter(s) {unknown} not supported; this server reads "
                                 f"{list(known)}{extra}")


def encode_infer_response(model: str, request: InferRequest, results: dict[str, np.ndarray],
                          labels: Sequence[str] | None = None) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) of the response for request given each output's float32 result."""
    head: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": []}
    if request.id is not None:
        head["id"] = request.id
    chunks = []
    for want in request.outputs:
        value = results[want.name]
        if want.class_count:
            value = classes(value, want.class_count, labels)
        out: dict[str, Any] = {"name": want.name, "datatype": "BYTES" if want.class_count else "FP32",
                               "shape": list(value.shape)}
        if want.binary:
            raw = _bytes_tensor(value) if want.class_count else np.ascontiguousarray(value, np.float32).tobytes()
            out["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            out["data"] = value.ravel().tolist()
        head["outputs"].append(out)
    text = json.dumps(head).encode()
    if not chunks:
        return text, {"content-type": "application/json"}
    return text + b"".join(chunks), {"content-type": "application/octet-stream",
                                      "inference-header-content-length": str(len(text))}


def classes(logits: np.ndarray, count: int, labels: Sequence[str] | None) -> np.ndarray:
    """Return the top `count` classes of each row of logits as "score:index[:label]" strings (Triton's
    classification extension: the score is the output's own value, here the logit)."""
    logits = logits.reshape(len(logits), -1)
    k = min(count, logits.shape[1])
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    rows = [[f"{row[i]:f}:{i}" + (f":{labels[i]}" if labels and i < len(labels) else "") for i in idx]
            for row, idx in zip(logits, order)]
    return np.array(rows, dtype=object)


def _bytes_tensor(value: np.ndarray) -> bytes:
    """Triton's binary BYTES layout: each element as a 4-byte little-endian length, then its UTF-8 bytes."""
    parts = []
    for s in value.ravel():
        b = str(s).encode()
        parts += [len(b).to_bytes(4, "little"), b]
    return b"".join(parts)
