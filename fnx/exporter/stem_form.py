"""How an export writes FasterNet's stem (the 4x4 stride-4 patch-embedding conv): as a conv, or as space-to-depth(4)
then a 1x1 conv over 16 x in_chans channels.

The two compute the same sums: each output pixel of the stem reads one 4x4 block of the input, and space-to-depth
lays that block out as 48 channels (pixel_unshuffle's order: channel c, row i, column j -> c*16 + i*4 + j), which is
the order of the conv's weight flattened. An NPU compiler that handles strides up to 3 (Arm's Vela) splits the
stride-4 conv into one op per output pixel; the 1x1 form is one op. A target takes the form that runs fastest on
it (`ArtifactFormat.stem_form`; figures: docs/BENCHMARKS.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from fnx.errors import FnxError

STEM_FORMS = ("conv", "space_to_depth")


class SpaceToDepthConv(nn.Module):
    """A kxk stride-k conv (no padding, no dilation, no groups) as space-to-depth(k) then a 1x1 conv."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        k = conv.kernel_size[0]
        if (conv.kernel_size != (k, k) or conv.stride != (k, k) or conv.padding != (0, 0) or conv.dilation != (1, 1)
                or conv.groups != 1):
            raise FnxError(f"space-to-depth rewrites a kxk stride-k conv without padding or groups; got kernel "
                           f"{conv.kernel_size}, stride {conv.stride}, padding {conv.padding}, groups {conv.groups}")
        self.block = k
        self.conv = nn.Conv2d(conv.in_channels * k * k, conv.out_channels, 1, bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight.detach().reshape(conv.out_channels, -1, 1, 1))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pixel_unshuffle(x, self.block))


def with_stem_form(deployed: nn.Module, form: str) -> nn.Module:
    """Return deployed with its stem in form ("conv": deployed itself; "space_to_depth": a copy, SpaceToDepthConv)."""
    if form == "conv":
        return deployed
    if form != "space_to_depth":
        raise FnxError(f"unknown stem form {form!r}; use one of {', '.join(STEM_FORMS)}")
    model = copy.deepcopy(deployed)
    model.patch_embed.proj = SpaceToDepthConv(model.patch_embed.proj)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
