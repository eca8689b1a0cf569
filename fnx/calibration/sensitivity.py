"""PT2E int8 (litert-torch's quantizer): a quantizer that can keep layers in float, and per-layer int8 errors.

Each conv/linear output of the PT2E fake-quantized model is compared with the fp32 one. Takes the
NHWC-input module the TFLite format converts; imports nothing from fnx.exporter.
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


def make_quantizer(keep_float=(), qat: bool = False):
    """Return litert-torch's PT2E quantizer (static, per-channel symmetric int8) that leaves keep_float layers in float.

    qat: its quantization-aware form (fake-quant modules whose ranges follow training)."""
    from fnx.quiet import import_quietly

    import_quietly("litert_torch")  # its first import prints TensorFlow's C++ start-up logs
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    class PartialQuantizer(PT2EQuantizer):
        # Its QAT-only conv+BN patterns fail to trace on torch 2.13, and fnx's QAT graph has no BN (deploy form).
        STATIC_QAT_ONLY_OPS = ()

        # PT2EQuantizer cannot exclude modules (set_module_name(name, None) asserts): drop their annotations instead.
        def annotate(self, model):
            model = super().annotate(model)
            if keep_float:
                for node in model.graph.nodes:
                    path = module_path(node)
                    if path and any(path == k or path.startswith(k + ".") for k in keep_float):
                        node.meta.pop("quantization_annotation", None)
            return model

    return PartialQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))


def quantized_graph(wrapped: torch.nn.Module, calib_nhwc: np.ndarray, keep_float: list[str] = ()):
    """Return (fp32 graph module, PT2E int8 fake-quant graph module) of an NHWC-input model."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = torch.from_numpy(calib_nhwc[:1].copy())
    float_gm = torch.export.export(wrapped, (sample,)).module()
    quantizer = make_quantizer(keep_float)
    prepared = prepare_pt2e(torch.export.export(wrapped, (sample,)).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calib_nhwc)):
            prepared(torch.from_numpy(calib_nhwc[i : i + 1].copy()))
    return float_gm, convert_pt2e(prepared, fold_quantize=False)


def layer_errors(wrapped_nhwc: torch.nn.Module, calib_nhwc: np.ndarray, probe_nhwc: np.ndarray) -> list[LayerError]:
    """Return every conv/linear layer's int8 error (PT2E fake-quant vs fp32) on the probe images, worst first."""
    float_gm, quant_gm = quantized_graph(wrapped_nhwc, calib_nhwc)
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
