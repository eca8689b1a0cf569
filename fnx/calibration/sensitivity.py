"""PT2E int8 (litert-torch's quantizer, or ExecuTorch's XNNPACK one): a quantizer that can keep layers in float,
and per-layer int8 errors.

Each conv/linear output of the PT2E fake-quantized model is compared with the fp32 one. Takes the module the format
converts (TFLite: NHWC-input; ExecuTorch: NCHW); imports nothing from fnx.exporter.
"""

from __future__ import annotations

import numpy as np
import torch

from fnx.manifest import LayerError

LAYER_OPS = ("conv2d", "linear")
CARRIERS = ("relu", "relu_")  # ops fused into the layer before its output is quantized


class _Capture(torch.fx.Interpreter):
    """Runs a graph module and keeps the outputs of its conv and linear nodes, by node name.

    In a fake-quant graph a layer's output is what the next layer sees: after the quantize/dequantize pair that
    follows it (through a fused ReLU), as the int8 file stores it. The raw conv output would leave out the
    layer's own output rounding, which measured about 10 dB of SQNR on FasterNet's worst layers.
    """

    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.outputs: dict[str, torch.Tensor] = {}
        self.layers: dict[str, str] = {}
        self._feeds: dict[str, str] = {}  # node name -> the layer whose output it carries (relu, quantize)

    def run_node(self, n):
        result = super().run_node(n)
        if n.op != "call_function":
            return result
        op = getattr(n.target, "__name__", "").split(".")[0]
        if op in LAYER_OPS:
            self.outputs[n.name] = result.detach()
            self.layers[n.name] = module_path(n) or n.name
            self._feeds[n.name] = n.name
        elif n.args and isinstance(n.args[0], torch.fx.Node) and n.args[0].name in self._feeds and (
                op in CARRIERS or "quantize_per_tensor" in str(n.target)):
            layer = self._feeds[n.args[0].name]
            self._feeds[n.name] = layer
            if op in CARRIERS or "dequantize_per_tensor" in str(n.target):  # float graph: after the fused ReLU too
                self.outputs[layer] = result.detach()  # the layer's int8 output, as the next layer reads it
        return result


def module_path(node) -> str | None:
    """Return the FasterNet module path a graph node comes from (without the channel-last wrapper's prefix)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path.split("wrapped.", 1)[-1] if "wrapped." in path else path


def keeping_float(quantizer_cls: type, keep_float=()) -> type:
    """Return a subclass of a PT2E quantizer class (XNNPACK's, or litert-torch's copy of it) that leaves keep_float
    layers (module paths) in float: neither can exclude a module (set_module_name(name, None) asserts), so their
    annotations are dropped instead."""

    class PartialQuantizer(quantizer_cls):
        def annotate(self, model):
            model = super().annotate(model)
            if keep_float:
                for node in model.graph.nodes:
                    path = module_path(node)
                    if path and any(path == k or path.startswith(k + ".") for k in keep_float):
                        node.meta.pop("quantization_annotation", None)
            return model

    return PartialQuantizer


def make_quantizer(keep_float=(), qat: bool = False, per_channel: bool = True):
    """Return litert-torch's PT2E quantizer (static, symmetric int8 weights per channel, or per tensor) that leaves
    keep_float layers in float.

    qat: its quantization-aware form (fake-quant modules whose ranges follow training)."""
    from fnx.quiet import import_quietly

    import_quietly("litert_torch")  # its first import prints TensorFlow's C++ start-up logs
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    class LiteRTQuantizer(keeping_float(PT2EQuantizer, keep_float)):
        # Its QAT-only conv+BN patterns fail to trace on torch 2.13, and fnx's QAT graph has no BN (deploy form).
        STATIC_QAT_ONLY_OPS = ()

    return LiteRTQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat))


MAX_BATCH = 4096  # the largest batch a dynamic-batch PT2E graph is traced for
CHUNK = 32  # calibration images per observed call: each call's histogram work is paid once per chunk, not per image


def batch_dynamic(module: torch.nn.Module) -> tuple:
    """Return torch.export's dynamic_shapes for a module taking one image batch of any size (positional, or *args:
    litert-torch's channel-last wrapper)."""
    import inspect

    dim = {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}
    varargs = any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(module.forward).parameters.values())
    return ((dim,),) if varargs else (dim,)


def observed(wrapped: torch.nn.Module, calib_nhwc: np.ndarray, quantizer, progress=None):
    """Return the PT2E graph of a model (NHWC-input for TFLite, NCHW for ExecuTorch: calib_nhwc in its layout)
    prepared with quantizer and observed on the calibration images.

    The graph is traced with a dynamic batch and fed CHUNK images per call: the activation observers' histogram
    work per call hardly grows with the batch, so this is several times faster than one image per call (T0 224:
    ~8x) for the same ranges, but for the histogram's binning. litert-torch converts it at the sample's batch."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    trace = torch.from_numpy(np.resize(calib_nhwc, (2, *calib_nhwc.shape[1:])).astype(np.float32))  # batch >= 2: dynamic
    prepared = prepare_pt2e(torch.export.export(wrapped, (trace,), dynamic_shapes=batch_dynamic(wrapped)).module(),
                            quantizer)
    with torch.no_grad():
        for i in range(0, len(calib_nhwc), CHUNK):
            if progress is not None:
                progress(f"observing ranges, images {i + 1}-{min(i + CHUNK, len(calib_nhwc))} of {len(calib_nhwc)}")
            prepared(torch.from_numpy(calib_nhwc[i : i + CHUNK].copy()))
    return prepared


def quantized_graph(wrapped: torch.nn.Module, calib_nhwc: np.ndarray, keep_float: list[str] = (),
                    per_channel: bool = True, make=make_quantizer):
    """Return (fp32 graph module, PT2E int8 fake-quant graph module) of a model, quantized by make(keep_float,
    per_channel=...) (litert-torch's quantizer by default)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    float_gm = torch.export.export(wrapped, (torch.from_numpy(calib_nhwc[:1].copy()),)).module()
    prepared = observed(wrapped, calib_nhwc, make(keep_float, per_channel=per_channel))
    return float_gm, convert_pt2e(prepared, fold_quantize=False)


def layer_errors(wrapped_nhwc: torch.nn.Module, calib_nhwc: np.ndarray, probe_nhwc: np.ndarray,
                 per_channel: bool = True, make=make_quantizer) -> list[LayerError]:
    """Return every conv/linear layer's int8 error (PT2E fake-quant vs fp32) on the probe images, worst first (the
    images in the model's layout; make: the quantizer, as for quantized_graph)."""
    float_gm, quant_gm = quantized_graph(wrapped_nhwc, calib_nhwc, per_channel=per_channel, make=make)
    f_cap, q_cap = _Capture(float_gm), _Capture(quant_gm)
    errs: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(len(probe_nhwc)):
            x = torch.from_numpy(probe_nhwc[i : i + 1].copy())
            f_cap.run(x)
            q_cap.run(x)
            for name, f in f_cap.outputs.items():
                q = q_cap.outputs.get(name)
                if q is not None and q.shape == f.shape:
                    errs.setdefault(name, []).append(float((q - f).norm() / (f.norm() + 1e-12)))
    rows = []
    for name, e in errs.items():
        rel = float(np.mean(e))
        rows.append(LayerError(f_cap.layers[name], rel, float(-20 * np.log10(max(rel, 1e-12)))))
    return sorted(rows, key=lambda r: -r.rel_error)
