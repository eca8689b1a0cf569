"""TFLite: the deploy-form model traced by litert-torch with NHWC input and outputs (no Transpose ops).

fp16 through ai-edge-quantizer (float16 weights); int8 through PT2E inside PyTorch (litert-torch's
quantizer, per-channel symmetric weights, int8 I/O), with layers kept in float on the guard's word.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from fnx.errors import FnxError
from fnx.exporter.formats import register_format
from fnx.formats import FILE_FORMATS
from fnx.install import pip_install
from fnx.progress import phase
from fnx.quiet import import_quietly

# litert-torch prints a progress tree and TF-style logs unless told not to.
os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def litert_torch():
    """Return the litert_torch module (FnxError naming the extra when it is missing)."""
    import logging

    # torchao logs missing optional CUDA kernels and torch logs pytree deprecations on import: noise here.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        lt = import_quietly("litert_torch")
    except ImportError as e:
        raise FnxError(f"TFLite export needs litert-torch: {pip_install('export')}") from e
    return lt


def channel_last(model, n_outputs_nchw: int = 0):
    """Return model wrapped to take NHWC input (and give its first n_outputs_nchw outputs as NHWC)."""
    outputs = list(range(n_outputs_nchw)) or None
    return litert_torch().to_channel_last_io(model, args=[0], outputs=outputs).eval()


def export_tflite(model, path: Path, sample_nhwc, n_feature_maps: int = 0, quant_config=None) -> None:
    """Write model (NCHW deploy form) to path as an NHWC TFLite flatbuffer."""
    edge = litert_torch().convert(channel_last(model, n_feature_maps), (sample_nhwc,), quant_config=quant_config)
    edge.export(str(path))


def _feature_maps(built) -> int:
    """How many of the model's outputs are feature maps (a --features backbone: NHWC in the TFLite file)."""
    return sum(o.kind == "feature_map" for o in built.output_specs())


def to_fp16(src: Path, dest: Path) -> None:
    """Write src with float16 weights (dequantized to float at run time, or run in fp16 where the engine can)."""
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    from fnx.quiet import quiet

    q = quantizer.Quantizer(str(src))
    q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                             algorithm_key=AlgorithmName.FLOAT_CASTING)
    quiet(lambda: q.quantize().export_model(str(dest), overwrite=True))


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


class Pt2eQuantizer:
    """PT2E static int8 of the NHWC-wrapped model, converted by litert-torch (fnx.calibration's Quantizer)."""

    scheme = "minmax (PT2E observers)"
    description = "PT2E (XNNPACK quantizer); activations int8 asymmetric per-tensor; weights int8 per-channel symmetric"
    notes: tuple[str, ...] = ()
    io = "int8"  # litert-torch's PT2E path always emits int8 input and output tensors

    def __init__(self, model, data, batch: int, n_feature_maps: int = 0):
        self.wrapped, self.data, self.batch = channel_last(model, n_feature_maps), data, batch

    def __enter__(self) -> "Pt2eQuantizer":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        import torch
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        from fnx.calibration.sensitivity import make_quantizer
        from fnx.quiet import quiet

        quantizer, calib, b = make_quantizer(keep_float), self.data.calib, self.batch
        sample = torch.from_numpy(calib[:b].copy())
        phase("tracing the model (torch.export) and inserting observers")
        prepared = prepare_pt2e(torch.export.export(self.wrapped, (sample,)).module(), quantizer)
        with torch.no_grad():
            for i in range(0, len(calib) - b + 1, b):
                phase(f"observing ranges, image {i + b} of {len(calib)}")
                prepared(torch.from_numpy(calib[i : i + b].copy()))
        converted = convert_pt2e(prepared, fold_quantize=False)
        phase("converting the int8 graph to TFLite (litert-torch; the longest part)")
        quiet(lambda: litert_torch().convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
              .export(str(out)))

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray):
        from fnx.calibration.sensitivity import layer_errors

        return layer_errors(self.wrapped, self.data.calib[:32], probe_nhwc)

    def float_ops(self, out: Path) -> dict[str, int]:
        return float_ops(out)


class QatQuantizer(Pt2eQuantizer):
    """int8 from the fake-quant graph `fnx train --qat` learned: its ranges, converted as they are.

    If the guard keeps layers in float, those ranges no longer fit the graph: it calibrates the QAT weights as PTQ
    does (and says so in the record)."""

    scheme = "qat (PT2E fake-quant ranges learned in training)"

    def __init__(self, model, data, batch: int, state: dict, source: Path):
        super().__init__(model, data, batch)
        self.state, self.source = state, source  # the trained graph's state_dict, and the file it came from

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        if keep_float:
            self.scheme = "minmax (PT2E observers) on the QAT weights: layers kept in float leave the learned ranges"
            return super().quantize(out, keep_float)
        import torch
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        from fnx.calibration.qat import load_graph_state, qat_graph, set_observing, set_training
        from fnx.calibration.sensitivity import make_quantizer
        from fnx.quiet import quiet

        sample = torch.from_numpy(self.data.calib[: self.batch].copy())
        graph = qat_graph(self.wrapped, sample)
        load_graph_state(graph, self.state, self.source)
        set_training(graph, False)
        set_observing(graph, False)
        converted = convert_pt2e(graph, fold_quantize=False)
        quiet(lambda: litert_torch().convert(converted, (sample,), quant_config=QuantConfig(
            pt2e_quantizer=make_quantizer(qat=True))).export(str(out)))


@register_format
class TFLiteFormat:
    """TFLite artifacts, NHWC, for LiteRT / tflite-runtime (XNNPACK on ARM and x86)."""

    name = "tflite"
    file = FILE_FORMATS["tflite"]
    pconv_form = "split_cat"  # slicing is at most 1% faster and adds TRANSPOSE ops (benchmarks/pconv_forms.py)
    converters = ("torch", "torchao", "litert-torch", "ai-edge-litert", "ai-edge-quantizer")  # torchao: PT2E int8
    requires = ("torch", "litert_torch")
    gelu_note = ("GELU variant: XNNPACK has no int8 GELU kernel, so the GELU ops run on TFLite's built-in int8 kernels "
                 "between XNNPACK partitions; still the fastest option measured for T0/T1 (docs/BENCHMARKS.md).")

    def check(self, opts) -> None:
        if opts.dynamic_batch:
            raise FnxError("--dynamic-batch applies to ONNX and OpenVINO IR; fnx's runtime runs a TFLite artifact on any "
                           "number of inputs in chunks of its batch")
        if opts.precision == "int8" and opts.int8.io == "float":
            raise FnxError("--io float is not available for TFLite: litert-torch's PT2E path always emits int8 input and "
                           "output tensors. Use --io int8 (fnx's runtime and examples/classify.py quantize inputs for "
                           "you) or --format onnx, whose QDQ model keeps float I/O")

    def export_float(self, model, path: Path, built, opts) -> None:
        import torch

        size, chans = built.img_size, built.model.in_chans
        export_tflite(model, path, torch.zeros(opts.batch, size, size, chans), n_feature_maps=_feature_maps(built))
        if opts.precision == "fp16":
            to_fp16(path, path)

    def int8_quantizer(self, model, built, opts, data, work: Path) -> Pt2eQuantizer:
        return Pt2eQuantizer(model, data, opts.batch, _feature_maps(built))

    def layer_tensors(self, path: Path, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.transpose(0, 3, 1, 2) if v.ndim == 4 else v for k, v in layer_tensors(path, batch_nhwc).items()}

    def wrap_io(self, model):
        return channel_last(model)

    def qat_quantizer(self, model, built, opts, data, work: Path) -> QatQuantizer:
        from fnx.calibration.qat import cached_ranges, ranges_path

        _, state = cached_ranges(built.cache.qat_ranges, opts.from_qat)
        return QatQuantizer(model, data, opts.batch, state, ranges_path(opts.from_qat))
