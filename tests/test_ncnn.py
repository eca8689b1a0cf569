"""ncnn: the .param + .bin export through pnnx (fp32 and fp16 weights, T0 and T2), its parity with PyTorch, the
torch-free engine through Session and `fnx run`, its layers for `fnx verify --layers`, and what it refuses."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("pnnx") is None:
    pytest.skip("ncnn and pnnx are not installed (pip install 'fnx-edge[ncnn,pnnx]')", allow_module_level=True)

from fnx.errors import FnxError  # noqa: E402
from fnx.exporter import ExportOptions, export_model  # noqa: E402
from fnx.parity import cosine_per_sample  # noqa: E402
from fnx.runtime import load  # noqa: E402

# Measured (AMD EPYC Zen 4, 2026-12-05): fp32 weights max|d| 3e-9..2e-5 of logits ~1-20 (fnx asks ncnn for fp32
# storage and arithmetic); fp16 weights cosine 0.9999999. Bounds with a margin of >= 10x on both CPU kinds.
FP32_MAX_ABS_REL, FP32_MIN_COS = 1e-5, 0.999999
FP16_MIN_COS = 0.9999


def _reference(ckpt, name: str, batch: np.ndarray) -> np.ndarray:
    import torch

    from fnx.exporter.build import build

    built = build(name, ExportOptions(weights=str(ckpt), img_size=batch.shape[-1]))
    with torch.no_grad():
        return built.model(torch.from_numpy(batch)).numpy()


def _batch(n: int = 4, size: int = 64) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 3, size, size)).astype(np.float32)


def test_t0_fp32_and_fp16_files_match_pytorch(t0_ncnn, t0_ckpt):
    x = _batch()
    ref = _reference(t0_ckpt, "t0", x)
    for precision, res in t0_ncnn.items():
        art = res.artifact
        assert art.suffix == ".param" and art.with_suffix(".bin").is_file() and res.parity.passed
        assert not [p for p in art.parent.iterdir() if p.name.startswith(".")]  # no temp file left
        m = res.manifest
        assert (m.artifact.format, m.artifact.precision) == ("ncnn", precision) and "pnnx" in m.converter
        assert m.artifact.size_bytes == art.stat().st_size + art.with_suffix(".bin").stat().st_size
        got = load(art, device="cpu").run(x)[0]
        assert got.shape == ref.shape == (4, 10)
        cos = cosine_per_sample(ref, got).min()
        if precision == "fp32":
            assert np.abs(got - ref).max() <= FP32_MAX_ABS_REL * max(1.0, np.abs(ref).max()) and cos >= FP32_MIN_COS
        else:
            assert cos >= FP16_MIN_COS
    fp32, fp16 = (t0_ncnn[p].artifact.with_suffix(".bin").stat().st_size for p in ("fp32", "fp16"))
    assert 0.45 < fp16 / fp32 < 0.55  # fp16 weights: half the bytes


def test_t2_exports_and_matches_pytorch(tmp_path):
    from fnx.dev import write_lively_checkpoint

    ckpt = write_lively_checkpoint("fasternet_t2", tmp_path / "t2.pth", num_classes=10)
    (res,) = export_model("t2", ExportOptions(formats=("ncnn",), weights=str(ckpt), img_size=64, out_dir=tmp_path))
    assert res.parity.passed and res.parity.outputs[0].cosine >= FP32_MIN_COS
    x = _batch(2)
    ref = _reference(ckpt, "t2", x)
    got = load(res.artifact, device="cpu", threads=2).run(x)[0]
    assert np.abs(got - ref).max() <= FP32_MAX_ABS_REL * max(1.0, np.abs(ref).max())


def test_the_engine_through_session_and_fnx_run(t0_ncnn, tmp_path, cli):
    from PIL import Image

    art = t0_ncnn["fp32"].artifact
    s = load(art, device="cpu", threads=1)
    assert s.engine_name == "ncnn" and s.layout == "NCHW" and "f32, 1 thread" in s.engine_label
    assert s.engine.inputs[0].shape == (1, 3, 64, 64) and s.engine.outputs[0].shape == (1, 10)
    top = s.predict(np.zeros((80, 80, 3), np.uint8), topk=3)[0]
    assert len(top.indices) == 3
    x = _batch(3)
    f16 = load(art, device="cpu", inference_precision="f16")  # ncnn's fp16 storage/arithmetic, asked for
    assert "f16" in f16.engine_label and cosine_per_sample(s.run(x)[0], f16.run(x)[0]).min() >= FP16_MIN_COS
    img = tmp_path / "x.png"
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(img)
    r = cli("run", art, "--json", "--device", "cpu", "--topk", "2", img, img)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["engine"].startswith("ncnn") and len(out["predictions"]) == 2 and len(out["predictions"][0]["top"]) == 2
    assert out["predictions"][0]["top"] == out["predictions"][1]["top"]


def test_layers_carry_pytorch_module_names_for_verify_layers(t0_ncnn, t0_ckpt):
    """ncnn keeps every blob an extractor asks for: each conv/linear layer (named after its PyTorch module at export)
    is read from the file and compared with the module's output."""
    import torch

    from fnx.exporter.build import build
    from fnx.exporter.layers import artifact_layers

    res = t0_ncnn["fp32"]
    built = build("t0", ExportOptions(weights=str(t0_ckpt), img_size=64))
    modules = [n for n, m in built.model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    rows = artifact_layers(res.artifact, res.manifest, built.model, batch)
    assert sorted(r.layer for r in rows) == sorted(modules)  # every one matched (BN folded: no other conv)
    assert min(r.sqnr_db for r in rows) > 60 and min(r.cosine for r in rows) > 0.99999


def test_damaged_files_are_refused_naming_what_is_wrong(t0_ncnn, tmp_path):
    import shutil

    src = t0_ncnn["fp32"].artifact
    art = tmp_path / src.name
    shutil.copy(src, art)
    with pytest.raises(FnxError, match=r"fasternet_t0_64_ncnn_fp32.bin is missing beside .*copy them together"):
        load(art, device="cpu")
    shutil.copy(src.with_suffix(".bin"), art.with_suffix(".bin"))
    lines = art.read_text().splitlines()
    art.write_text("\n".join(lines[:5] + ["Convolution conv_x 1 one"] + lines[5:]) + "\n")
    with pytest.raises(FnxError, match="damaged layer line"):
        load(art, device="cpu")
    art.write_text("\n".join(lines[:2] + ["Input in0 0 1 in0"] + lines[3:]) + "\n")  # not fnx's: no input shape
    with pytest.raises(FnxError, match="Input layer has no shape"):
        load(art, device="cpu")
    art.write_text("\n".join(lines[:3] + ["NoSuchLayer x 1 1 in0 1"] + lines[4:]) + "\n")
    with pytest.raises(FnxError, match="ncnn cannot load .*re-export it"):
        load(art, device="cpu")
    art.with_suffix(".bin").write_bytes(src.with_suffix(".bin").read_bytes()[:1000])  # truncated weights
    art.write_text("\n".join(lines) + "\n")
    with pytest.raises(FnxError, match=r"ncnn cannot load .*could not read .*\.bin"):
        load(art, device="cpu")


@pytest.mark.parametrize("args, message", [
    (("--precision", "int8", "--calib-data", "synthetic"), "ncnn has no int8 export in fnx (ncnn's int8 tools, "
                                                           "ncnn2table and ncnn2int8, come with ncnn's source build"),
    (("--batch", "2"), "--batch 2 is not available for ncnn"),
    (("--features",), "--features is not available for ncnn"),
])
def test_export_refuses_what_ncnn_cannot_take_before_building(args, message, cli, tmp_path):
    r = cli("export", "t0", "--weights", "random", "--img-size", "64", "--format", "ncnn", *args, "--out", tmp_path / "o")
    assert r.exit_code != 0 and message in " ".join(r.output.split()), r.output
    assert not (tmp_path / "o").exists()


def test_engine_imports_no_torch_and_keeps_openmp_passive(t0_ncnn):
    """The engine runs without torch, and sets OMP_WAIT_POLICY=PASSIVE before ncnn's bundled OpenMP starts (its
    spinning threads stalled multi-threaded runs under CPU load), keeping a value the user set."""
    code = ("import json, os, sys, numpy as np; from fnx.runtime import load; "
            f"s = load({str(t0_ncnn['fp32'].artifact)!r}, device='cpu', threads=2); "
            "s.run(np.zeros((1, 3, 64, 64), np.float32)); "
            "print(json.dumps([s.engine_name, 'torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY')]))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        r = subprocess.run([sys.executable, "-c", code], env={**env, **({"OMP_WAIT_POLICY": given} if given else {})},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout.splitlines()[-1]) == ["ncnn", False, expected]


def test_eval_agrees_with_onnx_and_serve_answers_as_the_session(t0_ncnn, t0_exports, tmp_path, cli):
    """`fnx eval` scores the ncnn file as it scores the same weights' ONNX file (shared export); `fnx serve` runs it for a tritonclient (3 inputs
    into a file of batch 1) and answers what the Session computes."""
    from PIL import Image

    tritonhttp = pytest.importorskip("tritonclient.http")
    from fnx.dev.serve_process import ServerProcess

    art = t0_ncnn["fp32"].artifact
    rng = np.random.default_rng(0)
    for c in ("0", "3", "7"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (72, 72, 3), dtype=np.uint8)).save(tmp_path / "data" / c / f"{i}.png")
    scores = []
    for target in (art, t0_exports["onnx"].artifact):
        r = cli("eval", target, "--data", tmp_path / "data", "--json")
        assert r.exit_code == 0, r.output
        scores.append({k: json.loads(r.stdout)[k] for k in ("n", "top1", "top5", "per_class")})
    assert scores[0] == scores[1] and scores[0]["n"] == 6
    x = _batch(3)
    with ServerProcess(f"t0={art}", "--threads", "1") as server:
        client = tritonhttp.InferenceServerClient(server.url)
        meta = client.get_model_metadata("t0")
        inp = tritonhttp.InferInput(meta["inputs"][0]["name"], list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        got = client.infer("t0", [inp]).as_numpy(meta["outputs"][0]["name"])
        assert server.stop() == 0, server.log
    np.testing.assert_allclose(got, load(art, device="cpu", threads=1).run(x)[0], rtol=0, atol=1e-6)


def test_a_failed_conversion_names_pnnx_and_leaves_no_file(t0_ckpt, tmp_path, monkeypatch):
    from fnx.targets.ncnn import export as ncnn_export

    (tmp_path / "bad.pt").write_bytes(b"not a TorchScript file")
    with pytest.raises(FnxError, match=r"pnnx could not convert the model to ncnn \(exit"):
        ncnn_export.run_pnnx(tmp_path / "bad.pt", (1, 3, 64, 64), False, tmp_path)

    def leaves_a_pnnx_op(torchscript, shape, fp16, work):  # what pnnx wrote for the --features graph
        param, weights = work / "model.ncnn.param", work / "model.ncnn.bin"
        param.write_text("7767517\n2 2\nInput in0 0 1 in0\npnnx.Expression pnnx_expr_0 1 1 in0 out0 0=add(@0,1)\n")
        weights.write_bytes(b"\0" * 16)
        return param, weights, param

    monkeypatch.setattr(ncnn_export, "run_pnnx", leaves_a_pnnx_op)
    out = tmp_path / "out"
    with pytest.raises(FnxError, match=r"pnnx left pnnx.Expression without an ncnn layer: .*export it as onnx"):
        export_model("t0", ExportOptions(formats=("ncnn",), weights=str(t0_ckpt), img_size=64, out_dir=out))
    assert not out.exists() or not list(out.iterdir())  # no .param, .bin, manifest or temp file
