"""How an export writes FasterNet's GELU (T0/T1): exact, or as x * sigmoid(1.702 x) for int8 engines without GELU.

XNNPACK has no int8 GELU: an int8 T0 TFLite runs its 14 GELUs on TFLite's own kernels between 15 XNNPACK
partitions, and int8-only accelerators (NPU delegates) cannot take them at all. The sigmoid form quantizes to
int8 MUL and LOGISTIC, which XNNPACK runs, so the whole graph is one partition with no float op; it differs
from GELU by at most 0.0203 (at x ~ -1.8 and 1.8), within the int8 guard's bound (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fnx.errors import FnxError

SIGMOID_SLOPE = 1.702  # gelu(x) ~ x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016)
SIGMOID_MAX_ERROR = 0.0203  # max |x * sigmoid(1.702 x) - gelu(x)| over all x, measured on a dense grid


class SigmoidGelu(nn.Module):
    """x * sigmoid(1.702 x); the slope is a (1,1,1,1) tensor: a Python scalar makes litert-torch add TRANSPOSE ops."""

    def __init__(self):
        super().__init__()
        self.register_buffer("slope", torch.full((1, 1, 1, 1), SIGMOID_SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x * self.slope)


def with_gelu_form(deployed: nn.Module, form: str) -> nn.Module:
    """Return deployed with its GELUs written in form ("exact": deployed itself; "sigmoid": a copy, SigmoidGelu)."""
    if form == "exact":
        return deployed
    if form != "sigmoid":
        raise FnxError(f"unknown GELU form {form!r}; use exact or sigmoid")
    model = copy.deepcopy(deployed)
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.GELU):
                setattr(module, name, SigmoidGelu())
                swapped += 1
    if not swapped:
        raise FnxError("--gelu-form sigmoid rewrites GELU, and this model has none (FasterNet-T2/S/M/L use ReLU)")
    return model


def gelu_form_note(form: str) -> str | None:
    """Return the manifest note of a non-exact GELU form (None for exact)."""
    if form == "exact":
        return None
    return (f"GELU written as x * sigmoid({SIGMOID_SLOPE} x) (the sigmoid GELU form): int8 MUL and LOGISTIC, which XNNPACK "
            f"and int8-only delegates run; at most {SIGMOID_MAX_ERROR} from GELU, checked against the exact-GELU model")
