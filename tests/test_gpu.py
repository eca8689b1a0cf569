"""On an NVIDIA GPU: ONNX Runtime's CUDA and TensorRT providers against PyTorch, `fnx run --device cuda`, and
training on CUDA (one GPU; one NCCL process with SyncBatchNorm). Every case skips without a GPU (CI has none);
scripts/gpu_check.sh runs them where one is lent (`pytest -m cuda tests/test_gpu.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fnx.errors import FnxError
from fnx.parity import BOUNDS, cosine_per_sample

pytestmark = pytest.mark.cuda


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return ort.get_available_providers()


ORT_CUDA = pytest.mark.skipif("CUDAExecutionProvider" not in _ort_providers(),
                              reason="no CUDA provider (onnxruntime-gpu and an NVIDIA GPU needed)")
TORCH_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")


def _env() -> dict:
    """The environment now (conftest's isolated caches and hub endpoint included), for a subprocess."""
    return {**os.environ, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def onnx_t0(t0_ckpt, tmp_path_factory):
    """fp32, fp16 and int8 ONNX exports of the lively T0 at 64 px (CPU-verified at export), and its PyTorch model."""
    from fnx.exporter import ExportOptions, Int8Options, export_model
    from fnx.models import create_model

    out = tmp_path_factory.mktemp("gpu-exports")
    arts = {}
    for precision in ("fp32", "fp16", "int8"):
        (res,) = export_model("t0", ExportOptions(formats=("onnx",), precision=precision, weights=str(t0_ckpt),
                                                  img_size=64, out_dir=out / precision,
                                                  int8=Int8Options("synthetic", 32, min_cosine=0.95)))
        arts[precision] = res.artifact
    model = create_model("fasternet_t0", weights=str(t0_ckpt), num_classes=10).eval()
    return arts, model


def _inputs(n: int = 8) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((n, 3, 64, 64)).astype(np.float32)


def _torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _run_each(session, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(x[i:i + 1])[0] for i in range(len(x))])


@ORT_CUDA
def test_cuda_fp32_holds_fp32_bounds_against_pytorch(onnx_t0):
    """TF32 is off on CUDA, so the fp32 artifact meets fp32's bounds (not TF32's ~1e-3) against PyTorch on the CPU."""
    from fnx.runtime import load

    arts, model = onnx_t0
    x = _inputs()
    s = load(arts["fp32"], device="cuda")
    assert s.engine.providers[0] == "CUDAExecutionProvider"
    ref, got = _torch_logits(model, x), _run_each(s, x)
    bound = BOUNDS["fp32"]
    assert np.abs(got - ref).max() <= bound["max_abs_rel"] * max(1.0, np.abs(ref).max())
    assert cosine_per_sample(ref, got).min() >= bound["min_cosine"]


@ORT_CUDA
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_cuda_fp16_and_int8_meet_their_bounds(onnx_t0, precision):
    from fnx.runtime import load

    arts, model = onnx_t0
    x = _inputs()
    s = load(arts[precision], device="cuda")
    assert s.engine.providers[0] == "CUDAExecutionProvider"
    cos = cosine_per_sample(_torch_logits(model, x), _run_each(s, x)).min()
    assert cos >= (BOUNDS["fp16"]["min_cosine"] if precision == "fp16" else 0.95)  # int8: the export's own bound


@ORT_CUDA
def test_tensorrt_runs_or_says_what_is_missing(onnx_t0):
    """--device tensorrt either runs on TensorRT (fp32 within fp16's bound: TensorRT may pick TF32 kernels) or fails
    naming TensorRT's libraries; it never falls back to CUDA unnoticed."""
    from fnx.runtime import load

    arts, model = onnx_t0
    x = _inputs(2)
    try:
        s = load(arts["fp32"], device="tensorrt")
    except FnxError as e:
        assert "TensorRT" in str(e) and "--device cuda" in str(e)
        return
    assert s.engine.providers[0] == "TensorrtExecutionProvider"
    assert cosine_per_sample(_torch_logits(model, x), _run_each(s, x)).min() >= BOUNDS["fp16"]["min_cosine"]


@ORT_CUDA
def test_fnx_run_and_verify_on_cuda(onnx_t0, tmp_path):
    from PIL import Image

    arts, _ = onnx_t0
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    cpu = subprocess.run([sys.executable, "-m", "fnx", "run", str(arts["fp32"]), str(tmp_path), "--device", "cpu",
                          "--json"], capture_output=True, text=True, env=_env(), timeout=300)
    gpu = subprocess.run([sys.executable, "-m", "fnx", "run", str(arts["fp32"]), str(tmp_path), "--device", "cuda",
                          "--json"], capture_output=True, text=True, env=_env(), timeout=300)
    assert cpu.returncode == 0 and gpu.returncode == 0, cpu.stderr + gpu.stderr
    top = [[p["top"][0]["index"] for p in json.loads(r.stdout)["predictions"]] for r in (cpu, gpu)]
    assert top[0] == top[1] and len(top[0]) == 3
    v = subprocess.run([sys.executable, "-m", "fnx", "verify", str(arts["fp16"]), "--device", "cuda", "--json"],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert v.returncode == 0 and json.loads(v.stdout)["passed"], v.stdout + v.stderr


@ORT_CUDA
def test_devices_detects_the_cuda_profile():
    r = subprocess.run([sys.executable, "-m", "fnx", "devices", "--json"], capture_output=True, text=True, env=_env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["detected"]["profile"] == "cuda"


@ORT_CUDA
def test_bench_all_ranks_the_gpu_rows_too(t0_ckpt, tmp_path, monkeypatch):
    """On a GPU machine `fnx bench all` adds each artifact on ONNX Runtime's CUDA (and TensorRT) providers, held to
    the same parity bounds; the record behind --device auto stays about the CPU."""
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "fnx", "bench", "all", "t0", "--weights", str(t0_ckpt), "--img-size",
                        "64", "--precisions", "fp32,fp16", "--runs", "5", "--warmup", "2", "--out", str(tmp_path),
                        "--json"], capture_output=True, text=True, env={**_env(), "FNX_CACHE_DIR": str(tmp_path / "cache")},
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout)
    cuda = {x["precision"]: x for x in rows if x.get("device") == "cuda" and "error" not in x}
    assert set(cuda) == {"fp32", "fp16"} and all(x["parity_passed"] for x in cuda.values())
    assert all("CUDA" in x["engine_label"] for x in cuda.values())
    from fnx.devices.measured import measured_ranking

    kept = measured_ranking("onnx", "fp32", "fasternet_t0", 64, 1)  # the record behind --device auto: CPU rows only
    assert kept and all(x.get("device") in (None, "cpu") for x in kept)
    trt = [x for x in rows if x.get("device") == "tensorrt"]
    assert all(x.get("parity_passed") or "TensorRT" in x.get("error", "") for x in trt)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("val", 4)):
        for c in range(2):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 80, (40, 40, 3), dtype=np.uint8) + (150 if c else 0)
                Image.fromarray(img.astype(np.uint8)).save(root / split / f"c{c}" / f"{i}.png")
    return root


@TORCH_CUDA
def test_train_on_one_gpu(tiny_folder, tmp_path):
    from fnx.models import create_model
    from fnx.training.fit import TrainOptions, train

    out = tmp_path / "m.pth"
    result = train("fasternet_t0", tiny_folder, out, TrainOptions(epochs=2, batch_size=8, img_size=32, device="cuda"))
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert np.isfinite(result.history[-1]["loss"])
    create_model("fasternet_t0", weights=str(out))  # a normal checkpoint, loadable on the CPU


@TORCH_CUDA
def test_train_nccl_with_sync_bn(tiny_folder, tmp_path):
    """One NCCL process (as many as GPUs would do the same): the loss all-reduce on the GPU and SyncBatchNorm."""
    out = tmp_path / "ddp.pth"
    r = subprocess.run([sys.executable, "-m", "fnx", "train", "fasternet_t0", "--data", str(tiny_folder), "--out", str(out),
                        "--epochs", "1", "--batch-size", "8", "--img-size", "32", "--nproc", "1", "--device", "cuda",
                        "--sync-bn"], capture_output=True, text=True, env=_env(), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert out.is_file()
