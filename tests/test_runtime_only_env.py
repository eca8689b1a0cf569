"""`pip install 'fnx[runtime]'` alone (no torch, no ONNX Runtime): `fnx run` and `fnx bench` on fp32 and int8 TFLite."""

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runtime_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("runtime_env")
    wheels, src = base / "wheels", base / "src"  # built from a copy: building in the checkout leaves build/ there
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "fnx", src / "fnx", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                   check=True, capture_output=True)
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    wheel = next(wheels.glob("fnx_edge-*.whl"))
    res = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", f"{wheel}[runtime]"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"pip install fnx-edge[runtime] failed:\n{res.stderr[-3000:]}")
    return env_dir / "bin"


def test_runtime_extra_pulls_no_torch(runtime_env):
    out = subprocess.run([str(runtime_env / "pip"), "list", "--format", "json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(out.stdout)}
    assert {"numpy", "pillow", "ai-edge-litert", "fnx-edge"} <= names
    assert not names & {"torch", "tensorflow", "onnx", "onnxruntime", "litert-torch"}


def test_run_and_bench_fp32_and_int8(runtime_env, t0_exports, t0_tflite_int8, tmp_path):
    from PIL import Image

    from fnx.calibration.synthetic import synthetic_images

    arts = [t0_exports["tflite"].artifact, t0_tflite_int8.artifact]
    img = tmp_path / "frame.png"
    Image.fromarray(synthetic_images(1, size=80, seed=3)[0]).save(img)
    fnx = str(runtime_env / "fnx")
    for art in arts:
        r = subprocess.run([fnx, "run", str(art), str(img), "--json", "--device", "cpu"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert len(json.loads(r.stdout)["predictions"][0]["top"]) == 5
        r = subprocess.run([fnx, "bench", str(art), "--runs", "3", "--warmup", "1", "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)[0]["mean_ms"] > 0


def test_onnx_without_onnxruntime_says_what_to_install(runtime_env, t0_exports):
    r = subprocess.run([str(runtime_env / "fnx"), "run", str(t0_exports["onnx"].artifact), "x.png"], capture_output=True, text=True)
    assert r.returncode == 1 and "pip install onnxruntime" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, ok", [
    (["models"], True),  # the variant table is torch-free
    (["export", "fasternet-t2", "--weights", "random"], False),
    (["verify", "{art}"], False),
    (["train", "fasternet-t0", "--data", "."], False),
    (["demo"], False),
])
def test_torch_commands_name_the_extra(runtime_env, t0_exports, args, ok):
    args = [a.format(art=t0_exports["tflite"].artifact) for a in args]
    r = subprocess.run([str(runtime_env / "fnx"), *args], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr
    if ok:
        assert r.returncode == 0 and "fasternet-t2" in r.stdout
    else:
        assert r.returncode == 1 and "pip install 'fnx-edge[export]'" in r.stderr and len(r.stderr.strip().splitlines()) <= 3


def test_the_wheel_ships_no_test_harness(runtime_env):
    """fnx/dev (lively checkpoints, cached exports, a live server for tests and benchmarks) stays in the checkout."""
    import zipfile

    wheel = next((runtime_env.parent.parent / "wheels").glob("fnx_edge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "fnx/runtime/session.py" in names and not [n for n in names if n.startswith("fnx/dev/")]
