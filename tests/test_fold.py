"""BN folding: the deploy form equals the eval model, with no BatchNorm left."""

import pytest
import torch
from torch import nn

from fnx.exporter import deploy_form, fold_bn
from fnx.models import VARIANTS, create_model

from conftest import randomize_bn


def _assert_close_rel(a: torch.Tensor, b: torch.Tensor, rel: float) -> None:
    scale = max(1.0, b.abs().max().item())
    assert (a - b).abs().max().item() <= rel * scale, f"max diff {(a - b).abs().max().item()} vs scale {scale}"


def test_fold_bn_single_conv():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(8, 16, 3, padding=1, bias=False), randomize_bn(nn.Sequential(nn.BatchNorm2d(16)))[0]
    bn.eval()
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        _assert_close_rel(fold_bn(conv, bn)(x), bn(conv(x)), 1e-5)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_deploy_form_equals_eval_model(name):
    torch.manual_seed(0)
    model = randomize_bn(create_model(name, num_classes=10))
    folded = deploy_form(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_close_rel(folded(x), model(x), 1e-5)
    # the input model is untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_deploy_form_backbone_and_slicing():
    torch.manual_seed(0)
    model = randomize_bn(create_model("t0", features_only=True))
    folded = deploy_form(model, pconv_mode="slicing")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(folded(x), model(x)):
            _assert_close_rel(a, b, 1e-5)
