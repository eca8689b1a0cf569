"""The stem's space-to-depth form: space-to-depth(4) then a 1x1 conv over 48 channels computes the 4x4 stride-4
conv's sums exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fnx.errors import FnxError


def test_space_to_depth_is_the_stride_4_conv_bit_for_bit():
    """On integer-valued inputs and weights every partial sum is an exact float32 integer (< 2**24), so any order of
    summation gives the same bits: equality tests the rewrite's index mapping exactly."""
    from fnx.exporter.stem_form import SpaceToDepthConv

    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 40, 4, 4, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-8, 9, conv.weight.shape, generator=g).float())
        conv.bias.copy_(torch.randint(-50, 51, conv.bias.shape, generator=g).float())
    x = torch.randint(-128, 128, (2, 3, 64, 96), generator=g).float()
    s2d = SpaceToDepthConv(conv)
    with torch.no_grad():
        assert torch.equal(s2d(x), conv(x))
    assert s2d.conv.kernel_size == (1, 1) and s2d.conv.in_channels == 48


def test_the_deploy_form_with_a_space_to_depth_stem_matches_the_model(t0):
    from fnx.exporter.fold import deploy_form
    from fnx.exporter.stem_form import SpaceToDepthConv, with_stem_form

    deployed = deploy_form(t0)
    s2d = with_stem_form(deployed, "space_to_depth")
    assert with_stem_form(deployed, "conv") is deployed and isinstance(s2d.patch_embed.proj, SpaceToDepthConv)
    assert isinstance(deployed.patch_embed.proj, nn.Conv2d)  # the input model is left as it was
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, got = t0(x), s2d(x)
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())  # float32: the sums' order differs


def test_a_conv_space_to_depth_cannot_rewrite_is_refused():
    from fnx.exporter.stem_form import SpaceToDepthConv, with_stem_form

    with pytest.raises(FnxError, match=r"kxk stride-k conv without padding or groups; got kernel \(3, 3\), stride \(1, 1\)"):
        SpaceToDepthConv(nn.Conv2d(3, 8, 3, 1, padding=1))
    with pytest.raises(FnxError, match="unknown stem form 'pixels'"):
        with_stem_form(nn.Identity(), "pixels")
