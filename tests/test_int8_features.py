"""int8 backbones (`fnx export --features --precision int8`): four int8 feature maps for detection/segmentation
necks, each held to the int8 bound on held-out images, the guard judging the weakest, every output's quantization
in the manifest; for TFLite and ONNX (and `fnx quantize` of an fp32 backbone)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnx.calibration.data import CalibrationSet
from fnx.calibration.guard import held_out_report
from fnx.calibration.options import Int8Options
from fnx.demo.train_demo import DEMO_CHECKPOINT
from fnx.errors import FnxError
from fnx.exporter import ExportOptions, export_model
from fnx.manifest import GuardBounds, Preprocessing
from fnx.models import create_model
from fnx.parity import cosine_per_sample
from fnx.runtime import load
from fnx.runtime.preprocess import list_images, preprocess, to_layout

STAGES = ["stage1", "stage2", "stage3", "stage4"]


def _opts(digits, out, fmt, **int8):
    return ExportOptions(formats=(fmt,), precision="int8", weights=str(DEMO_CHECKPOINT), out_dir=out, features=True,
                         data=digits / "test", int8=Int8Options(str(digits / "train"), 128, **int8))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_backbone_four_feature_maps_within_bounds(digits, tmp_path, fmt):
    (res,) = export_model("t0", _opts(digits, tmp_path, fmt))
    m = res.manifest
    assert res.artifact.name == f"fasternet_t0_64_features_{fmt}_int8.{'tflite' if fmt == 'tflite' else 'onnx'}"
    assert [o.name for o in m.outputs] == STAGES and all(o.kind == "feature_map" for o in m.outputs)
    if fmt == "tflite":  # int8 tensors out, each with its own scale and zero point
        assert all(o.dtype == "int8" and o.quantization is not None and o.quantization.scale > 0 for o in m.outputs)
    else:  # QDQ keeps float I/O
        assert all(o.dtype == "float32" and o.quantization is None for o in m.outputs)
    report = m.calibration.report
    assert [o.name for o in report.per_output] == STAGES
    assert report.cosine_min == min(o.cosine for o in report.per_output) >= 0.99
    assert report.top1_agreement is None and report.passed
    assert [o.name for o in m.parity.outputs] == STAGES and m.parity.passed
    # independently: the runtime's four outputs against the PyTorch backbone on real images
    spec = Preprocessing.for_size(64)
    x = np.stack([preprocess(p, spec) for p in list_images(digits / "test")[::6]])
    session = load(res.artifact, device="cpu")
    outs = session.run(to_layout(x, session.layout))
    model = create_model("t0", weights=str(DEMO_CHECKPOINT), features_only=True)
    with torch.no_grad():
        refs = [r.numpy() for r in model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))]
    for spec_o, out, ref in zip(m.outputs, outs, refs):
        nchw = out.transpose(0, 3, 1, 2) if spec_o.layout == "NHWC" else out
        assert nchw.shape == ref.shape
        assert cosine_per_sample(ref, nchw).min() >= 0.99, spec_o.name


def test_guard_judges_the_weakest_feature_map(digits, tmp_path):
    with pytest.raises(FnxError, match=r"int8 accuracy guard failed .*stage\d: cosine"):
        export_model("t0", _opts(digits, tmp_path, "onnx", min_cosine=0.999999))
    assert list(tmp_path.iterdir()) == []


def test_held_out_report_of_several_outputs():
    rng = np.random.default_rng(0)
    refs = [rng.standard_normal((8, 4, 3, 3)), rng.standard_normal((8, 6, 2, 2))]
    outs = [refs[0] + 1e-4 * rng.standard_normal(refs[0].shape), refs[1] + rng.standard_normal(refs[1].shape)]
    data = CalibrationSet(calib=np.zeros((1, 2, 2, 3)), held_out=np.zeros((8, 2, 2, 3)), source="test", found=9,
                          held_out_labels=[0] * 8)
    rep = held_out_report(outs, refs, data, GuardBounds(0.99), ["stage1", "stage2"])
    assert [o.name for o in rep.per_output] == ["stage1", "stage2"] and rep.cosine_min == rep.per_output[1].cosine
    assert not rep.passed and all("stage2" in f for f in rep.failures) and rep.top1_agreement is None
    rep = held_out_report([refs[0]], [refs[0]], data, GuardBounds(0.99, max_top1_drop=1.0), ["stage1"])
    assert "model with class logits" in rep.failures[0]


def test_quantize_an_fp32_backbone(digits, tmp_path, cli):
    fp32 = export_model("t0", ExportOptions(formats=("onnx",), weights=str(DEMO_CHECKPOINT), out_dir=tmp_path,
                                            features=True, data=digits / "test"))[0].artifact
    r = cli("quantize", fp32, "--calib-data", digits / "train", "--calib-size", "128", "--json")
    assert r.exit_code == 0, r.output
    int8 = load(tmp_path / "fasternet_t0_64_features_onnx_int8.onnx", device="cpu")
    rep = int8.manifest.calibration.report
    assert [o.name for o in rep.per_output] == STAGES and rep.cosine_min >= 0.99
    assert [o.name for o in int8.manifest.parity.outputs] == STAGES
