"""Reading a TFLite file's graph: op counts, the ops left in float, every conv/linear layer's output tensors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np


def _ops(path: Path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it, it._get_ops_details()


LAYER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def module_of(tensor_name: str) -> str:
    """Return the PyTorch module path in a litert-torch tensor name: its scopes are "pkg.Class_attr" under the I/O
    wrapper ("...ChannelLastIOWrapper/...FasterNet_wrapped/...Sequential_stages/...BasicStage_0/..." -> "stages.0...")."""
    scopes = tensor_name.split(";")[0].split("/")
    attrs = [scope.rsplit(".", 1)[-1].partition("_")[2] for scope in scopes]
    while attrs and attrs[0] in ("", "wrapped"):  # the wrappers around the model
        attrs.pop(0)
    return ".".join(attrs)


def layer_tensors(path: Path, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """Return {module path: float NHWC output} of every conv/linear op in a TFLite file, run on the batch one image
    at a time with every intermediate tensor kept (int8 ones dequantized with their own scale and zero point)."""
    from ai_edge_litert.interpreter import Interpreter

    from fnx.quiet import quiet

    it = quiet(lambda: Interpreter(model_path=str(path), experimental_preserve_all_tensors=True))
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    layers = {module_of(details[op["outputs"][0]]["name"]): op["outputs"][0] for op in it._get_ops_details()
              if op["op_name"] in LAYER_OPS}
    inp = it.get_input_details()[0]
    scale, zero = inp["quantization"]
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for image in batch_nhwc:
        x = image[None]
        if scale:
            x = np.clip(np.round(x / scale) + zero, -128, 127)
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        it.invoke()
        for name, index in layers.items():
            t, (s, z) = it.get_tensor(index), details[index]["quantization"]
            out[name].append((t.astype(np.float32) - z) * s if s else t.astype(np.float32))
    return {name: np.concatenate(v) for name, v in out.items()}


def tflite_op_counts(path: Path) -> Counter:
    """Return the number of ops of each type in a TFLite file (before any delegate rewrites the graph)."""
    return Counter(op["op_name"] for op in _ops(path)[1])


def float_ops(path: Path) -> dict[str, int]:
    """Return {op type: count} of the compute ops with a float input or output in an int8 TFLite file."""
    it, ops = _ops(path)
    dtypes = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    counts: Counter = Counter()
    for op in ops:
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and any(
                dtypes.get(i) == np.float32 for i in [*op["inputs"], *op["outputs"]] if i >= 0):
            counts[op["op_name"]] += 1
    return dict(counts)
