"""Shared fixtures: small FasterNets with non-default BatchNorm statistics, images, CLI runner."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=".*random weights.*")


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-default statistics and affine weights, so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 1.0 + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


@pytest.fixture
def t0():
    from fnx.models import create_model

    torch.manual_seed(0)
    return randomize_bn(create_model("fasternet_t0", num_classes=10))


@pytest.fixture
def cli():
    from typer.testing import CliRunner

    from fnx.cli import app

    runner = CliRunner()

    def invoke(*args: str, **kw):
        return runner.invoke(app, [str(a) for a in args], **kw)

    return invoke


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
