"""TFLite int8 through PT2E inside PyTorch (litert-torch's quantizer, symmetric weights per channel or per tensor,
int8 I/O), with layers kept in float on the guard's word; and int8 from the ranges `fnx train --qat` learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnx.calibration.forms import Int8Form
from fnx.progress import phase
from fnx.targets.tflite.convert import channel_last, litert_torch
from fnx.targets.tflite.graph import float_ops


ACTIVATIONS = "PT2E (XNNPACK quantizer); activations int8 asymmetric per-tensor"
# What litert-torch's PT2E quantizer offers for static int8: weights per channel or per tensor. XNNPACK runs both at
# the same speed (measured here: T0 and T2 224 within 1.5%), and per-tensor is less accurate, so auto leaves it out.
FORMS = (
    Int8Form("per-channel", f"{ACTIVATIONS}; weights int8 per-channel symmetric"),
    Int8Form("per-tensor", f"{ACTIVATIONS}; weights int8 per-tensor symmetric", auto=False,
             not_auto="as fast as per-channel on XNNPACK and less accurate (docs/BENCHMARKS.md): force it with "
                      "--int8-form per-tensor"),
)
DESCRIPTIONS = {f.name: f.description for f in FORMS}


class Pt2eQuantizer:
    """PT2E static int8 of the NHWC-wrapped model, converted by litert-torch (fnx.calibration's Quantizer)."""

    scheme = "minmax (PT2E observers)"
    notes: tuple[str, ...] = ()
    io = "int8"  # litert-torch's PT2E path always emits int8 input and output tensors

    def __init__(self, model, data, batch: int, n_feature_maps: int = 0, form: str = "auto"):
        self.wrapped, self.data, self.batch = channel_last(model, n_feature_maps), data, batch
        self.form = form if form in DESCRIPTIONS else FORMS[0].name  # auto: the default until a measured one is set

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.form]

    def __enter__(self) -> "Pt2eQuantizer":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        import torch
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        from fnx.calibration.sensitivity import make_quantizer, observed
        from fnx.quiet import quiet

        quantizer = make_quantizer(keep_float, per_channel=self.form == "per-channel")
        sample = torch.from_numpy(self.data.calib[: self.batch].copy())
        phase("tracing the model (torch.export) and inserting observers")
        converted = convert_pt2e(observed(self.wrapped, self.data.calib, quantizer, phase), fold_quantize=False)
        phase("converting the int8 graph to TFLite (litert-torch; the longest part)")
        quiet(lambda: litert_torch().convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
              .export(str(out)))

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray):
        from fnx.calibration.sensitivity import layer_errors

        return layer_errors(self.wrapped, self.data.calib[:32], probe_nhwc, per_channel=self.form == "per-channel")

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
