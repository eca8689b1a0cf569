"""Quantization-aware training: `fnx train --qat` (and --resume) on the shipped digits demo, then
`fnx export --from-qat` to int8 TFLite (the learned ranges) and ONNX (the QAT weights), and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fnx.demo.digits import digits_subset
from fnx.errors import FnxError

DEMO = Path(__file__).resolve().parents[1] / "fnx" / "demo" / "fasternet_t0_digits.safetensors"
QAT_ARGS = ("--epochs", "2", "--batch-size", "16")


@pytest.fixture(scope="module")
def small_digits(digits, tmp_path_factory):
    """The demo's digits, 10 train and 4 val images per class (a few QAT steps per epoch)."""
    return digits_subset(digits, tmp_path_factory.mktemp("digits-small"),
                         {"train": 10, "val": 4})


@pytest.fixture(scope="module")
def qat_ckpt(small_digits, tmp_path_factory):
    from typer.testing import CliRunner

    from fnx.cli import app

    out = tmp_path_factory.mktemp("qat") / "t0_qat.pth"
    r = CliRunner().invoke(app, ["train", "fasternet-t0", "--qat", "--weights", str(DEMO), "--data", str(small_digits),
                                 *QAT_ARGS, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "--from-qat" in r.output and "int8 (fake-quant) val top-1 before QAT" in r.output
    return out


def test_qat_writes_an_ordinary_checkpoint_its_ranges_and_state(qat_ckpt):
    from fnx.calibration.qat import load_ranges, ranges_path
    from fnx.models import create_model
    from fnx.models.sidecar import read_sidecar

    side = read_sidecar(qat_ckpt)
    assert side.extra["qat"]["base_weights"] == str(DEMO) and 0 <= side.extra["qat"]["fp32_val_acc"] <= 1
    assert len(side.history) == 2 and side.labels == [str(i) for i in range(10)] and side.img_size == 64
    facts, state = load_ranges(ranges_path(qat_ckpt))
    assert facts["model"] == "fasternet_t0" and facts["img_size"] == 64
    assert any(k.endswith(".scale") for k in state)  # the learned fake-quant ranges travel with the weights
    # The float weights load anywhere as a plain checkpoint. The best by val is the start (epoch 0: the weights
    # given) or a QAT epoch; either way training ran and moved the weights (the last state, after epoch 2).
    from fnx.exporter.fold import deploy_form
    from fnx.training.state import load_state, state_path

    assert side.epoch in (0, 1, 2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        saved = deploy_form(create_model("fasternet_t0", weights=str(qat_ckpt)))(x)
        base = deploy_form(create_model("fasternet_t0", weights=str(DEMO)))(x)
    assert torch.allclose(saved, base, atol=1e-4) == (side.epoch == 0)
    last = load_state(state_path(qat_ckpt))
    head = create_model("fasternet_t0", weights=str(DEMO)).head.weight
    assert last.epoch == 2 and not torch.equal(last.model["wrapped.head.weight"], head)


def test_qat_keeps_the_base_runs_objective():
    from fnx.training.fit import TrainOptions
    from fnx.training.qat import same_objective

    opts = TrainOptions(label_smoothing=0.1, weight_decay=0.05, weights="x")
    kept = same_objective(opts, {"label_smoothing": 0.0, "weight_decay": 0.0, "lr": 0.5})
    assert (kept.label_smoothing, kept.weight_decay, kept.lr) == (0.0, 0.0, opts.lr)  # the loss, not the schedule
    assert same_objective(opts, {}) == opts  # official or Hub weights: no record, the defaults


def test_folded_weights_round_trip_exactly():
    from fnx.exporter.fold import deploy_form, load_folded_weights
    from fnx.models import create_model

    base = create_model("fasternet_t0", weights=str(DEMO))
    deployed = deploy_form(base)
    with torch.no_grad():
        for p in deployed.parameters():
            p.add_(0.01 * torch.randn_like(p))
    restored = load_folded_weights(create_model("fasternet_t0", weights=str(DEMO)), deployed.state_dict())
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(deploy_form(restored)(x), deployed(x))  # BN as identity folds back to the same weights
    assert torch.allclose(restored(x), deployed(x), atol=1e-5)
    with pytest.raises(FnxError, match="not fasternet_t0's"):
        load_folded_weights(base, {k: v for k, v in deployed.state_dict().items() if "head" not in k})


@pytest.fixture(scope="module")
def qat_tflite(qat_ckpt, small_digits, tmp_path_factory):
    from fnx.exporter import ExportOptions, Int8Options, export_model

    (res,) = export_model("fasternet_t0", ExportOptions(
        formats=("tflite",), precision="int8", from_qat=qat_ckpt, out_dir=tmp_path_factory.mktemp("qat-tflite"),
        data=small_digits / "val", int8=Int8Options(small_digits / "train", 64, max_top1_drop=5.0)))
    return res


def test_from_qat_tflite_is_the_trained_graph(qat_tflite, qat_ckpt, small_digits):
    """The int8 file computes what QAT trained: its ranges, converted as they are, checked against the fake-quant
    graph in PyTorch (not the float weights QAT moved away from), with nothing kept in float."""
    from fnx.exporter.from_qat import QAT_REFERENCE
    from fnx.manifest import read_manifest

    m = read_manifest(qat_tflite.artifact)
    cal = m.calibration
    assert cal.scheme == "qat" and cal.method.startswith("qat") and cal.kept_float == []
    assert any("weights and activation ranges learned in QAT" in n for n in cal.notes)
    assert m.parity.passed and m.parity.reference == QAT_REFERENCE
    assert min(o.cosine for o in m.parity.outputs) >= 0.99  # fnx.parity.BOUNDS["int8"], file vs PyTorch QAT graph
    assert m.weights.path.endswith("t0_qat.pth")


def test_from_qat_onnx_calibrates_the_qat_weights(qat_ckpt, small_digits, tmp_path):
    from fnx.exporter import ExportOptions, Int8Options, export_model

    (res,) = export_model("fasternet_t0", ExportOptions(
        formats=("onnx",), precision="int8", from_qat=qat_ckpt, out_dir=tmp_path, data=small_digits / "val",
        int8=Int8Options(small_digits / "train", 64)))
    cal = res.manifest.calibration
    assert cal.scheme == "qat" and any("calibrated by the onnx quantizer" in n for n in cal.notes)
    assert any(n.startswith("int8 graph: qdq-") for n in cal.notes)  # the ONNX int8 form chosen for this CPU
    # ONNX Runtime calibrates the QAT weights itself: it answers to those float weights, at int8's bound.
    assert res.manifest.parity.passed and res.manifest.parity.reference == "pytorch fp32 (QAT weights)"
    assert min(o.cosine for o in res.manifest.parity.outputs) >= 0.99


def test_qat_resume_continues_to_the_same_result(small_digits, tmp_path, stop_after_first_epoch):
    """A run stopped after epoch 1 and resumed ends with the same weights and ranges as one that never stopped.
    Both runs are made here, in one test: torch's thread count (set by other tests) changes float sums."""
    from fnx.calibration.qat import load_ranges, ranges_path
    from fnx.training.fit import TrainOptions
    from fnx.training.qat import QAT_DEFAULTS, train_qat

    opts = TrainOptions(**{**QAT_DEFAULTS, "epochs": 2}, batch_size=16, weights=str(DEMO))
    whole = tmp_path / "whole" / "m.pth"
    done = train_qat("fasternet_t0", small_digits, whole, opts)
    cut = tmp_path / "cut" / "m.pth"
    stop_after_first_epoch(train_qat, "fasternet_t0", small_digits, cut, opts)
    resumed = train_qat("fasternet_t0", small_digits, cut, opts, resume=cut.with_name("m.last.pt"))
    assert resumed.history == done.history and [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = load_ranges(ranges_path(whole))[1], load_ranges(ranges_path(cut))[1]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:3]


def test_qat_refusals(cli, qat_ckpt, small_digits, tmp_path):
    calib = ("--calib-data", small_digits / "train", "--out", tmp_path)
    refused = [
        (("train", "fasternet-t0", "--qat", "--data", small_digits, "--out", tmp_path / "m.pth"),
         "--qat fine-tunes a trained model"),
        (("train", "fasternet-t0", "--qat", "--weights", DEMO, "--data", small_digits, "--nproc", "2", "--out",
          tmp_path / "m.pth"), "one process"),
        (("export", "fasternet-t0", "--from-qat", qat_ckpt, "--format", "tflite", "--out", tmp_path), "--precision int8"),
        (("export", "fasternet-t0", "--from-qat", qat_ckpt, "--format", "openvino", "--precision", "int8", *calib),
         "not available for OpenVINO"),
        (("export", "fasternet-t0", "--from-qat", DEMO, "--precision", "int8", *calib), ".qat.pt"),  # no ranges beside
        (("export", "fasternet-t0", "--from-qat", qat_ckpt, "--precision", "int8", "--img-size", "96", *calib), "img_size"),
        (("export", "fasternet-t0", "--from-qat", qat_ckpt, "--weights", DEMO, "--precision", "int8", *calib),
         "leave out --weights"),
    ]
    for args, message in refused:
        r = cli(*args)
        assert r.exit_code != 0 and message in " ".join(r.output.split()), (args, r.output)
    assert not list(tmp_path.glob("*.tflite")) and not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.json"))
    from fnx.training.fit import TrainOptions, train

    with pytest.raises(FnxError, match="train_qat"):
        train("fasternet_t0", small_digits, tmp_path / "x.pth", TrainOptions(qat=True, weights=str(DEMO)))
