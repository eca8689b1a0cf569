"""Parameters and FLOPs (multiply-accumulates of conv and linear layers, the paper's convention)."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Return the number of parameters, BatchNorm's affine weights included (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, img_size: int | tuple[int, int] = 224) -> int:
    """Return the multiply-accumulates of every Conv2d and Linear for one image of img_size.

    Runs the model on a meta-device copy of the input, so it costs no real compute.
    """
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    in_chans = getattr(model, "in_chans", 3)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, h, w, device=device))
    finally:
        for hk in hooks:
            hk.remove()
    return total
