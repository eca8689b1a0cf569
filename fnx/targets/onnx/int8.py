"""ONNX int8 with ONNX Runtime's quantize_static (QDQ, per-channel weights); torch-free.

`OrtQdqQuantizer` is the ONNX format's Quantizer: used by `fnx export --format onnx --precision
int8` and by `fnx quantize ARTIFACT.onnx`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from fnx.calibration.data import CalibrationSet
from fnx.calibration.options import AUTO_FORM
from fnx.manifest import LayerError
from fnx.targets.onnx import CALIBRATORS
from fnx.targets.onnx.int8_form import ONNX_INT8_FORMS, choose_onnx_int8_form

LAYER_OPS = ("Conv", "Gemm", "MatMul")


class OrtQdqQuantizer:
    """ONNX Runtime static QDQ int8 of an fp32 ONNX file (the Quantizer protocol of fnx.calibration), in any of the
    ONNX forms (`form`, set between calls): the calibration ranges are computed once and reused by every form and
    every guard step where ONNX Runtime keeps a range cache (its calibration_cache_path)."""

    def __init__(self, fp32: Path, data: CalibrationSet, method: str = "minmax", batch: int = 1, owns_fp32: bool = False,
                 form: str = AUTO_FORM, target: str | None = None):
        self.form = choose_onnx_int8_form(form, target).form  # "auto": the rule's form until a measured one is set
        self.fp32, self.data, self.method, self.batch, self.owns_fp32 = Path(fp32), data, method, batch, owns_fp32
        self.ranges = self.fp32.with_name(self.fp32.stem + ".ranges.json")
        self.notes: list[str] = []
        self.scheme, self.io = method, "float"  # a QDQ model takes and gives float tensors; the int8 work is inside

    @property
    def description(self) -> str:
        return f"{self.form}: {ONNX_INT8_FORMS[self.form]}"

    def __enter__(self) -> "OrtQdqQuantizer":
        return self

    def __exit__(self, *exc) -> None:
        self.ranges.unlink(missing_ok=True)
        if self.owns_fp32:
            self.fp32.unlink(missing_ok=True)

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        quantize_file(self.fp32, out, self.data, self.method, keep_float, self.batch, self.form, self.ranges)

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray) -> list[LayerError]:
        return layer_errors(self.fp32, out, probe_nhwc)

    def float_ops(self, out: Path) -> dict[str, int]:
        return float_ops(out)


class _Reader:
    """ONNX Runtime's CalibrationDataReader over NHWC images, fed as NCHW batches."""

    def __init__(self, nhwc: np.ndarray, batch: int, input_name: str):
        self.items = iter([{input_name: np.ascontiguousarray(nhwc[i : i + batch].transpose(0, 3, 1, 2))}
                           for i in range(0, len(nhwc) - batch + 1, batch)])

    def get_next(self):
        return next(self.items, None)


def module_path(node_name: str) -> str:
    """Return the module path of a TorchScript-exported node ("/stages/stages.4/mlp/mlp.0/Conv" -> "stages.4.mlp.0")."""
    parts: list[str] = []
    for p in node_name.strip("/").split("/")[:-1]:
        if parts and p.startswith(parts[-1] + "."):
            parts[-1] = p
        else:
            parts.append(p)
    return ".".join(parts) or node_name


def quantize_file(fp32: Path, out: Path, data: CalibrationSet, method: str = "minmax", keep_float: list[str] = (),
                  batch: int = 1, form: str = AUTO_FORM, ranges: Path | None = None) -> None:
    """Write the QDQ int8 model of fp32 to out in form (auto: the rule's, or one of ONNX_INT8_FORMS); nodes of
    keep_float layers stay float. ranges: a file for the calibration ranges, read if it exists, else written (where
    this ONNX Runtime has the cache), so that other forms and guard steps reuse one calibration."""
    form = choose_onnx_int8_form(form).form
    import inspect

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    graph = onnx.load(str(fp32)).graph
    exclude = [n.name for n in graph.node if module_path(n.name) in keep_float]
    calib = getattr(CalibrationMethod, CALIBRATORS[method])
    from fnx.quiet import quiet

    cache = {"calibration_cache_path": str(ranges)} if ranges is not None and "calibration_cache_path" in \
        inspect.signature(quantize_static).parameters else {}  # 1.32 has the range cache, 1.24 not yet
    quiet(lambda: quantize_static(
        str(fp32), str(out), _Reader(data.calib, batch, graph.input[0].name), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8 if form.startswith("qdq-u8") else QuantType.QInt8, weight_type=QuantType.QInt8,
        reduce_range=form.endswith("r"), calibrate_method=calib, nodes_to_exclude=exclude,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True}, **cache))


def _layer_outputs(path: Path, names: list[str], nchw: np.ndarray) -> list[dict[str, np.ndarray]]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    for n in names:
        if n not in have:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    inp = sess.get_inputs()[0].name
    return [dict(zip(out_names, sess.run(None, {inp: nchw[i : i + 1]}))) for i in range(len(nchw))]


def onnx_layer_tensors(path: Path, nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Return {module path: output} of every Conv/Gemm/MatMul node of an ONNX file (fnx's export names nodes by
    module), run on the batch one image at a time."""
    import onnx

    layers = {module_path(n.name): n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type in LAYER_OPS}
    runs = _layer_outputs(path, list(layers.values()), nchw)
    return {name: np.concatenate([r[t] for r in runs]) for name, t in layers.items() if all(t in r for r in runs)}


def layer_errors(fp32: Path, int8: Path, probe_nhwc: np.ndarray) -> list[LayerError]:
    """Return every Conv/Gemm's error: the int8 model's output vs fp32's, worst first.

    Layers are matched by node name, and compared on the int8 node's output tensor: the quantizer fuses
    Conv+ReLU, so that tensor is the ReLU's output, which the fp32 model has under the same name.
    """
    import onnx

    q_out = {n.name: n.output[0] for n in onnx.load(str(int8)).graph.node if n.op_type in LAYER_OPS}
    f_nodes = onnx.load(str(fp32)).graph.node
    f_tensors = {o for n in f_nodes for o in n.output}
    pairs = [(n.name, q_out[n.name]) for n in f_nodes
             if n.op_type in LAYER_OPS and q_out.get(n.name) in f_tensors]
    names = [t for _, t in pairs]
    nchw = np.ascontiguousarray(probe_nhwc.transpose(0, 3, 1, 2))
    f_runs, q_runs = _layer_outputs(fp32, names, nchw), _layer_outputs(int8, names, nchw)
    rows = []
    for node, name in pairs:
        errs = [float(np.linalg.norm(q[name] - f[name]) / (np.linalg.norm(f[name]) + 1e-12))
                for f, q in zip(f_runs, q_runs) if name in q and name in f]
        if errs:
            rel = float(np.mean(errs))
            rows.append(LayerError(module_path(node), rel, float(-20 * np.log10(max(rel, 1e-12))), node))
    return sorted(rows, key=lambda r: -r.rel_error)


# Ops that ONNX Runtime's CPU provider fuses with their Q/DQ neighbours into int8 kernels (or, for data
# movement, runs on int8 tensors). Any other op between DequantizeLinear and QuantizeLinear - GELU among
# them - is computed in float.
ORT_INT8_OPS = {"Conv", "Gemm", "MatMul", "Add", "Mul", "Concat", "Split", "Slice", "GlobalAveragePool", "AveragePool",
                "MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Resize", "Relu", "Clip",
                "LeakyRelu", "Sigmoid", "Softmax", "Gather"}


def float_ops(path: Path) -> dict[str, int]:
    """Return {op type: count} of compute nodes that ONNX Runtime runs in float in a QDQ model."""
    import onnx

    graph = onnx.load(str(path)).graph
    dq_out = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    q_in = {i for n in graph.node if n.op_type == "QuantizeLinear" for i in n.input}
    counts: Counter = Counter()
    for n in graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        wrapped = any(i in dq_out for i in n.input if i) and all(o in q_in for o in n.output)
        if not wrapped or n.op_type not in ORT_INT8_OPS:
            counts[n.op_type] += 1
    return dict(counts)
