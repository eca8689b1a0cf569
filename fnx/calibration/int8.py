"""int8 artifacts: static PT2E quantization traced by litert-torch (TFLite), ONNX Runtime QDQ (ONNX).

Both share one calibration sample, one held-out report and one accuracy guard: when the guard's
bound is broken, the layers with the largest int8 error are kept in float, a few at a time.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from fnx.calibration.data import CalibrationSet, load_calibration
from fnx.calibration.sensitivity import layer_errors, make_quantizer
from fnx.errors import FnxError
from fnx.parity import BOUNDS, check
from fnx.progress import Steps

METHODS = ("minmax", "percentile", "entropy")
GUARD_STEP = 4  # layers returned to float per guard step
GUARD_MAX_STEPS = 3


def convert_int8(built, deployed: torch.nn.Module, fmt: str, opts, tmp: Path, steps: Steps, manifest: dict) -> None:
    """Write an int8 artifact of deployed to tmp, guard its accuracy, and record calibration + report in manifest."""
    cal = opts.calibration
    method = (cal.get("method") or "minmax").lower()
    if method not in METHODS:
        raise FnxError(f"unknown --calib-method {method!r}; use one of {', '.join(METHODS)}")
    io = (cal.get("io") or "int8").lower()
    if io not in ("int8", "float"):
        raise FnxError(f"unknown --io {io!r}; use int8 or float")
    if fmt == "tflite" and io == "float":
        raise FnxError("--io float is not available for TFLite with litert-torch's PT2E path (it always emits int8 "
                       "input/output); use --io int8 (fnx's runtime quantizes inputs for you) or --format onnx")
    if built.features:
        raise FnxError("int8 export of the --features backbone is not supported yet; export it as fp32 or fp16")
    if "calibration" not in built.cache:  # shared by the TFLite and ONNX int8 artifacts of one export
        bar, task = steps.progress("reading calibration images", None)
        with bar:
            data = load_calibration(cal.get("data"), built.preprocessing, size=int(cal.get("size") or 256), progress=(bar, task))
        steps.info(f"calibration: {len(data.calib)} images from {data.source}, {len(data.held_out)} held out"
                   + (f", {len(data.skipped)} unreadable files skipped" if data.skipped else ""))
        with steps.step("rank layers by int8 error (PT2E fake-quant vs fp32)"):
            ranking = layer_errors(deployed, data.calib[:32], data.held_out[:8])
        built.cache["calibration"] = (data, ranking, _torch_logits(built.model, data.held_out))
    data, ranking, refs = built.cache["calibration"]
    min_cosine = cal.get("min_cosine") or BOUNDS["int8"]["min_cosine"]
    max_drop = cal.get("max_top1_drop")
    keep_float: list[str] = []
    for attempt in range(GUARD_MAX_STEPS + 1):
        with steps.step(f"quantize to int8 {fmt} ({method}{', ' + str(len(keep_float)) + ' layers float' if keep_float else ''})"):
            if fmt == "tflite":
                _tflite_int8(deployed, data, tmp, keep_float, built.img_size, opts.batch)
            else:
                _onnx_int8(deployed, data, tmp, keep_float, method, built.img_size, opts)
        with steps.step("held-out report (int8 vs fp32)"):
            report = _report(tmp, fmt, data, refs, min_cosine, max_drop)
        if report["passed"] or attempt == GUARD_MAX_STEPS:
            break
        more = [r["layer"] for r in ranking if r["layer"] not in keep_float][:GUARD_STEP]
        if not more:
            break
        keep_float += more
        steps.info(f"[yellow]guard:[/] {'; '.join(report['failures'])} -> keeping {', '.join(more)} in float")
    if not report["passed"]:
        raise FnxError(f"int8 accuracy guard failed after {len(keep_float)} layers were returned to float: "
                       f"{'; '.join(report['failures'])}. Use more/better --calib-data, another --calib-method, or fp16")
    from fnx.runtime.engines import open_engine

    eng = open_engine(tmp)
    inp, out = eng.inputs[0], eng.outputs[0]
    manifest["input"].update(dtype=str(inp.dtype), quantization={"scale": inp.scale, "zero_point": inp.zero_point} if inp.quantized else None)
    manifest["outputs"][0].update(dtype=str(out.dtype), quantization={"scale": out.scale, "zero_point": out.zero_point} if out.quantized else None)
    manifest["calibration"] = {
        **data.summary(), "method": method if fmt == "onnx" else "minmax (PT2E observers)", "scheme":
        "static; weights int8 per-channel symmetric; activations int8", "io": io if fmt == "onnx" else "int8",
        "kept_float": keep_float, "guard": {"min_cosine": min_cosine, "max_top1_drop": max_drop, "steps": attempt},
        "report": {**report, "layer_errors": ranking[:10], "float_ops": float_ops(tmp, fmt)},
    }


def _torch_logits(model: torch.nn.Module, nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))).numpy()


def _report(path: Path, fmt: str, data: CalibrationSet, refs: np.ndarray, min_cosine: float, max_drop: float | None) -> dict:
    from fnx.exporter.pipeline import run_artifact

    outs = run_artifact(path, data.held_out, "NHWC" if fmt == "tflite" else "NCHW")[0]
    rep = check([refs], [outs], "int8", ["logits"], bounds={"min_cosine": min_cosine}, reference="pytorch fp32 (held-out)")
    o = rep.outputs[0]
    result = {"held_out": o.n, "cosine_min": o.cosine, "top1_agreement": o.top1_agreement, "max_abs": o.max_abs,
              "failures": list(rep.failures)}
    labels = [l for l in data.held_out_labels if l is not None]
    if len(labels) == len(data.held_out) and labels:
        y = np.array(labels)
        fp32_acc, int8_acc = float((refs.argmax(1) == y).mean()), float((outs.argmax(1) == y).mean())
        result.update(fp32_top1=fp32_acc, int8_top1=int8_acc, top1_drop_points=100 * (fp32_acc - int8_acc))
        if max_drop is not None and 100 * (fp32_acc - int8_acc) > max_drop:
            result["failures"].append(f"top-1 drop {100 * (fp32_acc - int8_acc):.2f} points exceeds {max_drop}")
    elif max_drop is not None:
        result["failures"].append("--max-top1-drop needs labelled calibration data (class subfolders)")
    result["passed"] = not result["failures"]
    return result


def _tflite_int8(deployed, data: CalibrationSet, tmp: Path, keep_float: list[str], size: int, batch: int) -> None:
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from fnx.exporter.tflite_export import _litert_torch, channel_last

    lt = _litert_torch()
    wrapped = channel_last(deployed, features=False)
    quantizer = make_quantizer(keep_float)
    sample = torch.from_numpy(data.calib[:batch].copy()) if len(data.calib) >= batch else torch.zeros(batch, size, size, 3)
    prepared = prepare_pt2e(torch.export.export(wrapped, (sample,)).module(), quantizer)
    with torch.no_grad():
        for i in range(0, len(data.calib) - batch + 1, batch):
            prepared(torch.from_numpy(data.calib[i : i + batch].copy()))
    converted = convert_pt2e(prepared, fold_quantize=False)
    lt.convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(tmp))


class _Reader:
    """ONNX Runtime's CalibrationDataReader over NHWC images, fed as NCHW."""

    def __init__(self, nhwc: np.ndarray, batch: int):
        self.items = iter([{"input": np.ascontiguousarray(nhwc[i : i + batch].transpose(0, 3, 1, 2))}
                           for i in range(0, len(nhwc) - batch + 1, batch)])

    def get_next(self):
        return next(self.items, None)


def onnx_scope(module_path: str) -> str:
    """Return the ONNX node-name scope of a module path ("stages.0.mlp.0" -> "/stages/stages.0/mlp/mlp.0/")."""
    out, prev = [], ""
    for part in module_path.split("."):
        if part.isdigit():
            out.append(f"{prev}.{part}")
        else:
            out.append(part)
            prev = part
    return "/" + "/".join(out) + "/"


def _onnx_int8(deployed, data: CalibrationSet, tmp: Path, keep_float: list[str], method: str, size: int, opts) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from fnx.exporter import onnx_export

    fp32 = tmp.with_name(tmp.stem + ".fp32.onnx")
    try:
        onnx_export.export_onnx(deployed, fp32, torch.zeros(opts.batch, 3, size, size), ["logits"], opts.dynamic_batch, opts.opset)
        onnx_export.simplify_onnx(fp32)
        import onnx

        names = [n.name for n in onnx.load(str(fp32)).graph.node]
        exclude = [n for n in names if any(n.startswith(onnx_scope(layer)) for layer in keep_float)]
        calib = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
        from fnx.exporter.tflite_export import _quiet  # ORT logs pre-processing advice at WARNING level

        _quiet(lambda: quantize_static(str(fp32), str(tmp), _Reader(data.calib, opts.batch), quant_format=QuantFormat.QDQ,
                                       per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                       calibrate_method=calib, nodes_to_exclude=exclude,
                                       extra_options={"ActivationSymmetric": False, "WeightSymmetric": True}))
    finally:
        for p in tmp.parent.glob(tmp.stem + ".fp32*"):
            p.unlink(missing_ok=True) if p.is_file() else shutil.rmtree(p, ignore_errors=True)
        for p in Path(os.getcwd()).glob("augmented_model*.onnx"):
            p.unlink(missing_ok=True)


def float_ops(path: Path, fmt: str) -> dict[str, int]:
    """Return {op type: count} of compute ops that run in float in an int8 artifact."""
    if fmt == "onnx":
        import onnx

        graph = onnx.load(str(path)).graph
        dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        skip = {"QuantizeLinear", "DequantizeLinear"}
        return dict(Counter(n.op_type for n in graph.node if n.op_type not in skip
                            and not any(i in dq_outputs for i in n.input if i)))
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dtypes = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    counts: Counter = Counter()
    for op in it._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(dtypes.get(i) == np.float32 for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0):
            counts[op["op_name"]] += 1
    return dict(counts)
