"""`fnx export`: parity against PyTorch, graph contents, manifests, safety on bad input."""

import json
import re

import numpy as np
import onnx
import pytest
import torch

from fnx.targets.tflite import export as tflite_export
from fnx.targets.onnx.convert import onnx_op_counts
from fnx.exporter.pipeline import ExportOptions, ParityError, export_model
from fnx.targets.tflite.graph import tflite_op_counts
from fnx.fileio import sha256_file
from fnx.models import create_model
from fnx.parity import BOUNDS


def _reference(ckpt, batch_nhwc):
    model = create_model("t0", weights=str(ckpt))
    with torch.no_grad():
        return model(torch.from_numpy(batch_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def _raw_tflite(path, x):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    outs = []
    for sample in x:
        it.set_tensor(it.get_input_details()[0]["index"], sample[None])
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"])[0].copy())
    return np.stack(outs)


def test_fp32_parity_with_raw_engines(t0_exports, t0_ckpt):
    """Independent of fnx's runtime: raw engine calls on fresh inputs against PyTorch, within the fp32 bound."""
    import onnxruntime as ort

    x = np.random.default_rng(5).standard_normal((4, 64, 64, 3)).astype(np.float32)
    ref = _reference(t0_ckpt, x)
    assert np.abs(ref).max() > 0.5  # logits carry signal
    onnx_out = ort.InferenceSession(str(t0_exports["onnx"].artifact)).run(None, {"input": x[:1].transpose(0, 3, 1, 2).copy()})[0]
    tfl_out = _raw_tflite(t0_exports["tflite"].artifact, x)
    bound = BOUNDS["fp32"]["max_abs_rel"] * max(1.0, np.abs(ref).max())
    assert np.abs(onnx_out - ref[:1]).max() <= bound
    assert np.abs(tfl_out - ref).max() <= bound


def test_export_reports_parity_and_manifest(t0_exports):
    for fmt, res in t0_exports.items():
        rep = res.parity
        assert rep.passed and rep.outputs[0].n == 16 and rep.outputs[0].top1_agreement == 1.0
        m = json.loads(res.artifact.with_suffix(".json").read_text())
        assert m["artifact"]["sha256"] == sha256_file(res.artifact)
        assert m["artifact"]["format"] == fmt and m["artifact"]["precision"] == "fp32"
        assert m["inputs"][0]["layout"] == ("NHWC" if fmt == "tflite" else "NCHW")
        assert m["inputs"][0]["shape"] == ([1, 64, 64, 3] if fmt == "tflite" else [1, 3, 64, 64])
        assert m["preprocessing"]["crop"] == 64 and m["preprocessing"]["resize_short"] == 71
        assert m["preprocessing"]["interpolation"] == "bicubic" and m["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
        assert m["model"]["name"] == "fasternet_t0" and m["model"]["num_classes"] == 10 and m["model"]["bn_folded"]
        assert m["weights"]["kind"] == "path" and len(m["weights"]["sha256"]) == 64
        assert m["parity"]["passed"] and m["converter"]["fnx"]
        assert res.artifact.name == f"fasternet_t0_64_{fmt}_fp32.{fmt}"


def test_onnx_graph_contents(t0_exports):
    path = t0_exports["onnx"].artifact
    ops = onnx_op_counts(path)
    assert ops["BatchNormalization"] == 0
    assert ops["Gelu"] == 14  # 13 blocks + the pre-head: one Gelu op per GELU
    assert ops["Erf"] == 0
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 20
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["fnx.manifest"])["model"]["name"] == "fasternet_t0"


def test_tflite_graph_has_no_transpose(t0_exports):
    ops = tflite_op_counts(t0_exports["tflite"].artifact)
    assert ops["TRANSPOSE"] == 0
    assert ops["CONV_2D"] == 44 and ops["GELU"] == 14


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_fp16(fmt, t0_ckpt, t0_exports, tmp_path):
    (res,) = export_model("t0", ExportOptions(formats=(fmt,), precision="fp16", weights=str(t0_ckpt), img_size=64, out_dir=tmp_path))
    assert res.parity.passed and res.parity.outputs[0].cosine >= BOUNDS["fp16"]["min_cosine"]
    # float16 weights: about half the fp32 file of the same model
    assert res.artifact.stat().st_size < 0.55 * t0_exports[fmt].artifact.stat().st_size
    if fmt == "tflite":
        assert tflite_op_counts(res.artifact)["DEQUANTIZE"] > 0


def test_exports_are_deterministic(t0_exports, t0_ckpt, tmp_path):
    again = export_model("t0", ExportOptions(formats=("onnx", "tflite"), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path))
    for r in again:
        assert sha256_file(r.artifact) == sha256_file(t0_exports[r.manifest.artifact.format].artifact)


@pytest.mark.parametrize("name", ["t1"])
def test_t1_exports_both_formats(name, tmp_path):
    results = export_model(name, ExportOptions(formats=("onnx", "tflite"), weights="random", img_size=64, out_dir=tmp_path))
    assert all(r.parity.passed for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["t2", "s", "m", "l"])
def test_large_variants_export(name, tmp_path):
    results = export_model(name, ExportOptions(formats=("onnx", "tflite"), weights="random", img_size=96, out_dir=tmp_path))
    assert all(r.parity.passed for r in results)


def test_features_export_per_output_parity(tmp_path):
    results = export_model("t0", ExportOptions(formats=("onnx", "tflite"), weights="random", img_size=64, out_dir=tmp_path, features=True))
    for r in results:
        assert [o.name for o in r.parity.outputs] == ["stage1", "stage2", "stage3", "stage4"]
        assert r.parity.passed and r.artifact.name == "fasternet_t0_64_features_{0}_fp32.{0}".format(r.manifest.artifact.format)
    assert tflite_op_counts(results[1].artifact)["TRANSPOSE"] == 0


def test_dynamic_batch_onnx(t0_ckpt, tmp_path):
    import onnxruntime as ort

    (res,) = export_model("t0", ExportOptions(formats=("onnx",), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path, dynamic_batch=True))
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    assert ort.InferenceSession(str(res.artifact)).run(None, {"input": x})[0].shape == (3, 10)
    assert res.manifest.input.shape[0] is None


def test_broken_parity_bound_leaves_no_artifact(t0_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(BOUNDS, "fp32", {"max_abs_rel": 0.0, "min_cosine": 1.1})
    with pytest.raises(ParityError, match="failed its parity check"):
        export_model("t0", ExportOptions(formats=("onnx",), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_conversion_leaves_no_partial_file(t0_ckpt, tmp_path, monkeypatch):
    def half_written(model, path, sample, n_feature_maps=0, quant_config=None):
        path.write_bytes(b"TFL3 half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(tflite_export, "export_tflite", half_written)
    with pytest.raises(KeyboardInterrupt):
        export_model("t0", ExportOptions(formats=("tflite",), weights=str(t0_ckpt), img_size=64, out_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_cli_export_json(cli, t0_ckpt, tmp_path):
    res = cli("export", "fasternet_t0", "--format", "onnx", "--weights", t0_ckpt, "--img-size", "64", "--out", tmp_path, "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["artifact"]["file"] == "fasternet_t0_64_onnx_fp32.onnx" and m["parity"]["passed"]


@pytest.mark.parametrize("args, message", [
    (["fasternet-xl"], "valid models: fasternet-t0"),
    (["t0", "--img-size", "100"], "not a multiple of 32"),
    (["t0", "--format", "coreml"], "'coreml' is not one of 'onnx', 'openvino', 'tflite',"),
    (["t2", "--weights", "{ckpt}"], "looks like fasternet-t0"),
])
def test_cli_bad_inputs(cli, t0_ckpt, tmp_path, args, message):
    args = [a.format(ckpt=t0_ckpt) for a in args]
    res = cli("export", *args, "--out", tmp_path / "o", "--weights" if "--weights" not in args else "--no-verify",
              *(["random"] if "--weights" not in args else []))
    assert res.exit_code == (2 if "--format" in args else 1)  # 2: a usage error, caught by the CLI's choices
    assert re.sub(r"[\s│]+", "", message) in re.sub(r"[\s│]+", "", res.output) and "Traceback" not in res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_unwritable_out(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = cli("export", "t0", "--weights", "random", "--out", blocker / "sub", "--img-size", "64")
    assert res.exit_code == 1 and "cannot create output directory" in res.output and "is a file, not a directory" in res.output


def test_static_batch_two_exports_and_runs_any_count(t0_ckpt, tmp_path):
    from fnx.runtime import load

    results = export_model("t0", ExportOptions(formats=("onnx", "tflite"), weights=str(t0_ckpt), img_size=64, batch=2, out_dir=tmp_path))
    for r in results:
        assert r.parity.passed and r.manifest.input.shape[0] == 2
        s = load(r.artifact)
        x = np.random.default_rng(0).standard_normal((3, *s.input_shape[1:])).astype(np.float32)
        out = s.run(x)[0]
        assert out.shape == (3, 10)
        assert np.allclose(out[2], s.run(x[2:3])[0][0], atol=1e-5)
