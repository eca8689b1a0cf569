"""The model zoo: figures against the official code, PConv modes, shapes, errors."""

import json

import pytest
import torch

from fnx.errors import FnxError
from fnx.models import VARIANTS, FasterNet, canonical_name, create_model, describe, get_variant

# Official model code's figures at 224x224 (every parameter counted; FLOPs = conv/linear MACs).
OFFICIAL = {
    "fasternet_t0": (3.906e6, 0.335e9),
    "fasternet_t1": (7.595e6, 0.851e9),
    "fasternet_t2": (14.983e6, 1.904e9),
    "fasternet_s": (31.181e6, 4.550e9),
    "fasternet_m": (53.521e6, 8.722e9),
    "fasternet_l": (93.465e6, 15.494e9),
}


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_params_and_flops_match_official_code(name):
    d = describe(name)
    params, flops = OFFICIAL[name]
    # the official figures are rounded to three decimals (M params, G FLOPs)
    assert abs(d["params"] - params) <= 0.00051e6
    assert abs(d["flops"] - flops) <= 0.00051e9


@pytest.mark.parametrize("name", list(VARIANTS))
def test_table_arithmetic_equals_counting_the_built_model(name):
    """describe() computes params/FLOPs from the variant table (torch-free); they equal hooks on the real network."""
    from fnx.models import count_flops, count_params

    for num_classes, size in ((1000, 224), (10, 96), (0, 64)):
        model = create_model(name, num_classes=num_classes)
        d = describe(name, size, num_classes)
        assert (d["params"], d["flops"]) == (count_params(model), count_flops(model, size))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_backbone_weights_count_the_conv_weights_of_the_stem_blocks_and_merges(name):
    """backbone_weights (torch-free, what a device's memory check counts) equals the conv weights of the built model
    outside its pre-head conv and classifier; BatchNorm and biases are not weights."""
    from fnx.models.costs import backbone_weights

    model = create_model(name, num_classes=10)
    counted = sum(m.weight.numel() for n, m in model.named_modules()
                  if isinstance(m, torch.nn.Conv2d) and not n.startswith("avgpool_pre_head"))
    assert backbone_weights(get_variant(name)) == counted > 0


def test_models_command_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from fnx.cli import app;"
            "r = CliRunner().invoke(app, ['models']); print(r.exit_code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stdout + out.stderr


def test_flops_scale_with_input_size():
    assert describe("t0", img_size=448)["flops"] == pytest.approx(4 * describe("t0")["flops"], rel=0.01)


def test_models_cli_json(cli):
    res = cli("models", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == list(VARIANTS)
    for r in rows:
        assert r["params"] == pytest.approx(OFFICIAL[r["name"]][0], rel=1e-3)
        assert r["flops"] == pytest.approx(OFFICIAL[r["name"]][1], rel=2e-3)


def test_models_cli_table(cli):
    res = cli("models")
    assert res.exit_code == 0
    assert "fasternet-t2" in res.stdout and "1.904" in res.stdout and "78.9" in res.stdout


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_pconv_modes_agree(name):
    torch.manual_seed(1)
    model = create_model(name, num_classes=7)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a = model.set_pconv_mode("split_cat")(x)
        b = model.set_pconv_mode("slicing")(x)
        c = model.set_pconv_mode("slice_cat")(x)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_slicing_leaves_the_residual_input_intact():
    from fnx.models.fasternet import PartialConv

    pc = PartialConv(16, 4, "slicing")
    x = torch.randn(1, 16, 8, 8)
    before = x.clone()
    y = pc(x)
    assert torch.equal(x, before)
    assert torch.equal(y[:, 4:], x[:, 4:]) and not torch.equal(y[:, :4], x[:, :4])


def test_pconv_touches_only_first_quarter():
    from fnx.models.fasternet import PartialConv

    pc = PartialConv(40, 4)
    assert pc.partial_conv3.in_channels == 10 and pc.dim_untouched == 30


def test_num_classes_zero_gives_pooled_features_and_in_chans():
    m = create_model("t0", num_classes=0, in_chans=1)
    with torch.no_grad():
        y = m(torch.randn(3, 1, 96, 64))
    assert y.shape == (3, 1280)


def test_backbone_returns_four_normalized_stages():
    m = create_model("t1", features_only=True)
    assert all(hasattr(m, f"norm{i}") for i in (0, 2, 4, 6))
    with torch.no_grad():
        feats = m(torch.randn(1, 3, 128, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 32, 24), (1, 128, 16, 12), (1, 256, 8, 6), (1, 512, 4, 3)]


def test_input_not_multiple_of_32_is_a_clear_error():
    m = create_model("t0", num_classes=3)
    with pytest.raises(FnxError, match="multiple of 32"):
        m(torch.randn(1, 3, 100, 96))


def test_names_accept_hyphens_and_list_valid_ones():
    assert canonical_name("fasternet-t2") == canonical_name("FasterNet_T2") == "fasternet_t2"
    with pytest.raises(FnxError, match="fasternet-t0.*fasternet-l"):
        get_variant("fasternet-xl")


def test_variant_table_is_the_papers():
    assert {n: (v.embed_dim, v.depths, v.act) for n, v in VARIANTS.items()} == {
        "fasternet_t0": (40, (1, 2, 8, 2), "gelu"),
        "fasternet_t1": (64, (1, 2, 8, 2), "gelu"),
        "fasternet_t2": (96, (1, 2, 8, 2), "relu"),
        "fasternet_s": (128, (1, 2, 13, 2), "relu"),
        "fasternet_m": (144, (3, 4, 18, 3), "relu"),
        "fasternet_l": (192, (3, 4, 18, 3), "relu"),
    }
    assert isinstance(create_model("t0"), FasterNet)


@pytest.mark.parametrize("features", [False, True])
def test_forward_traces_with_torch_fx_and_torch_export(features):
    """Third-party quantizers (Sony's MCT) trace forward with torch.fx: the input check is a pre-hook at the entry
    point, outside the graph, and still refuses bad input in eager calls."""
    import torch.fx

    from fnx.errors import FnxError
    from fnx.exporter import deploy_form
    from fnx.models import create_model

    torch.manual_seed(0)
    model = create_model("fasternet_t0", weights="random", num_classes=10, features_only=features).eval()
    x = torch.randn(2, 3, 64, 64)
    for m in (model, deploy_form(model)):
        want = m(x)
        want = want if isinstance(want, list) else [want]
        for traced in (torch.fx.symbolic_trace(m), torch.export.export(m, (x,)).module()):
            got = traced(x)
            got = got if isinstance(got, list) else [got]
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(want, got))
    with pytest.raises(FnxError, match="not a multiple of 32"):
        model(torch.randn(1, 3, 60, 64))
    with pytest.raises(FnxError, match=r"expected input of shape \(N, 3, H, W\)"):
        model(torch.randn(1, 4, 64, 64))
