"""Training, evaluation and the trained demo model on real images (scikit-learn's digit scans)."""

import json

import pytest

from fnx.demo.train_demo import DEMO_CHECKPOINT
from fnx.evaluation import evaluate


def test_digits_splits_are_fixed(digits):
    counts = {s: len(list((digits / s).rglob("*.png"))) for s in ("train", "val", "test")}
    assert counts == {"train": 1077, "val": 360, "test": 360}
    assert sorted(p.name for p in (digits / "test").iterdir()) == [str(i) for i in range(10)]


def test_training_learns_and_round_trips_through_export(cli, digits, tmp_path):
    ckpt = tmp_path / "digits_t0.pth"
    r = cli("train", "fasternet-t0", "--data", digits, "--epochs", "2", "--img-size", "32", "--out", ckpt)
    assert r.exit_code == 0, r.output
    side = json.loads(ckpt.with_suffix(".json").read_text())
    assert side["val_acc"] > 0.5  # chance is 0.1
    assert side["labels"] == [str(i) for i in range(10)] and side["img_size"] == 32
    r = cli("export", "fasternet-t0", "--weights", ckpt, "--format", "onnx", "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["labels"] == side["labels"] and m["model"]["img_size"] == 32 and m["model"]["num_classes"] == 10
    assert m["inputs"][0]["shape"] == [1, 3, 32, 32] and m["preprocessing"]["crop"] == 32


@pytest.fixture(scope="session")
def demo_exports(demo_workspace):
    """The artifacts `make demo` wrote (fp32 and int8, TFLite and ONNX; int8 calibrated on digits/train with at most one
    top-1 point lost, parity on digits/test), with their manifests."""
    from types import SimpleNamespace

    from fnx.manifest import read_manifest

    results = {}
    for path in sorted((demo_workspace / "demo_out" / "artifacts").glob("*_*.*[!n]")):  # not the .json manifests
        m = read_manifest(path)
        results[(m.artifact.format, m.artifact.precision)] = SimpleNamespace(artifact=path, manifest=m, parity=m.parity)
    assert len(results) == 4, results
    return results


def test_shipped_demo_model_accuracy(digits, cli):
    r = evaluate(DEMO_CHECKPOINT, digits / "test")
    assert r["n"] == 360 and r["top1"] >= 0.97 and r["errors"] == []
    out = cli("eval", DEMO_CHECKPOINT, "--data", digits / "test", "--limit", "20")
    assert out.exit_code == 0 and "[pytorch fp32, exact]" in out.output  # the label survives rich markup


def test_eval_agrees_between_pytorch_and_fp32_artifacts(digits, demo_exports, cli):
    ref = evaluate(DEMO_CHECKPOINT, digits / "test")
    for fmt in ("tflite", "onnx"):
        r = cli("eval", demo_exports[(fmt, "fp32")].artifact, "--data", digits / "test", "--json")
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)
        assert got["n"] == 360 and got["top1"] == ref["top1"] and got["top5"] == ref["top5"]


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_int8_accuracy_on_trained_model(digits, demo_exports, fmt):
    res = demo_exports[(fmt, "int8")]
    rep = res.manifest.calibration.report
    assert res.manifest.calibration.source.endswith("train")
    assert rep.top1_drop_points <= 1.0 and rep.top1_agreement >= 0.98
    fp32 = evaluate(demo_exports[(fmt, "fp32")].artifact, digits / "test")["top1"]
    int8 = evaluate(res.artifact, digits / "test")["top1"]
    assert 100 * (fp32 - int8) <= 1.0
    # agreement of int8 with fp32 on the test split (never seen in calibration)
    assert res.parity.outputs[0].top1_agreement >= 0.98
