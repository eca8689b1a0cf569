"""ExecuTorch int8 through PT2E with XNNPACK's quantizer (torchao's prepare_pt2e/convert_pt2e), weights per channel
or per tensor, float I/O (the quantize/dequantize ops are inside the delegate), layers kept in float on the guard's
word; then the same XNNPACK lowering as fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.calibration.forms import Int8Form
from fnx.manifest import LayerError
from fnx.progress import phase
from fnx.targets.executorch.lower import executorch_exir, write_pte

ACTIVATIONS = "PT2E (ExecuTorch's XNNPACK quantizer); activations int8 asymmetric per-tensor"
# Both forms are measured by auto: which one XNNPACK runs faster here has not been settled for ExecuTorch.
FORMS = (
    Int8Form("per-channel", f"{ACTIVATIONS}; weights int8 per-channel symmetric"),
    Int8Form("per-tensor", f"{ACTIVATIONS}; weights int8 per-tensor symmetric"),
)
DESCRIPTIONS = {f.name: f.description for f in FORMS}
LAYERS = ("conv2d", "linear")


def xnnpack_quantizer(keep_float=(), per_channel: bool = True):
    """Return ExecuTorch's XNNPACK PT2E quantizer (static, symmetric int8 weights) leaving keep_float layers in float."""
    executorch_exir()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)

    from fnx.calibration.sensitivity import keeping_float

    return keeping_float(XNNPACKQuantizer, keep_float)().set_global(
        get_symmetric_quantization_config(is_per_channel=per_channel))


def nchw(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))


class XnnpackPt2eQuantizer:
    """PT2E static int8 of the NCHW deploy-form model, lowered to XNNPACK (fnx.calibration's Quantizer)."""

    scheme = "minmax (PT2E observers)"
    notes: tuple[str, ...] = ()
    io = "float"  # the program takes and gives float tensors; XNNPACK quantizes inside

    def __init__(self, model, data, batch: int, form: str = "auto"):
        self.model, self.data, self.batch = model, data, batch
        self.calib = nchw(data.calib)
        self.form = form if form in DESCRIPTIONS else FORMS[0].name  # auto: the default until a measured one is set
        self._float_ops: dict[Path, dict[str, int]] = {}

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.form]

    def __enter__(self) -> "XnnpackPt2eQuantizer":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        import torch

        quantizer = xnnpack_quantizer(keep_float, per_channel=self.form == "per-channel")  # imports ExecuTorch quietly
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        from fnx.calibration.sensitivity import observed

        phase("tracing the model (torch.export) and inserting observers")
        converted = convert_pt2e(observed(self.model, self.calib, quantizer, phase))
        self._float_ops[Path(out)] = float_layers(converted)
        phase("lowering the int8 graph to ExecuTorch's XNNPACK delegate")
        write_pte(converted, (torch.from_numpy(self.calib[: self.batch].copy()),), out)

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray) -> list[LayerError]:
        from fnx.calibration.sensitivity import layer_errors

        return layer_errors(self.model, self.calib[:32], nchw(probe_nhwc), per_channel=self.form == "per-channel",
                            make=xnnpack_quantizer)

    def float_ops(self, out: Path) -> dict[str, int]:
        return self._float_ops.get(Path(out), {})


def float_layers(converted) -> dict[str, int]:
    """Return {op: count} of the conv/linear nodes of a converted PT2E graph whose weights are not int8 (in float)."""
    counts: dict[str, int] = {}
    for node in converted.graph.nodes:
        op = getattr(node.target, "__name__", "").split(".")[0]
        if node.op == "call_function" and op in LAYERS and "dequantize" not in str(getattr(node.args[1], "target", "")):
            counts[op] = counts.get(op, 0) + 1
    return counts
