"""Shared fixtures: small FasterNets with non-default BatchNorm statistics, images, CLI runner."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=".*random weights.*")

# OpenVINO's converter sends usage telemetry (a forked process per event, to an outside server) unless it
# sees CI=true or the user opted out; CI runs with CI=true, and so do local test runs (before openvino loads).
import os  # noqa: E402

os.environ.setdefault("CI", "true")

from fnx.models.init import randomize_bn  # noqa: E402  (re-exported for the tests)
from run_once import once_across_workers  # noqa: E402

# fnx's CLI consoles are made when fnx.cli.common is first imported, and rich fixes a console's width for good when
# COLUMNS is set at that moment. Imported here with COLUMNS unset, they read it per print, so each test's
# env={"COLUMNS": ...} holds whichever test (on whichever pytest-xdist worker) happens to import the CLI first.
_columns = os.environ.pop("COLUMNS", None)
import fnx.cli.common  # noqa: E402, F401

if _columns is not None:
    os.environ["COLUMNS"] = _columns


@pytest.fixture(scope="session", autouse=True)
def _no_real_hub(tmp_path_factory):
    """No test reaches the real Hugging Face Hub (a refusing endpoint and an empty cache unless a test sets its own),
    nor the user's fnx cache: weights and `fnx bench all` records (which steer `--device auto`) start empty."""
    import os

    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the discard port: connection refused at once
    os.environ["HF_HUB_CACHE"] = str(tmp_path_factory.mktemp("hf-cache"))
    os.environ["FNX_CACHE_DIR"] = str(tmp_path_factory.mktemp("fnx-cache"))
    os.environ.pop("HF_HUB_OFFLINE", None)
    yield


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.fixture(autouse=True)
def _share_the_cpu():
    """`make test` runs ARM parity beside pytest (scripts/run_tests.sh, FNX_SHARE_CPU_WITH=its pid): while it runs,
    torch keeps to one thread here, so the two never oversubscribe a 2-core machine (spinning threads made
    2-thread torch work 10x slower); once it is done, torch has its own thread count back."""
    pid = os.environ.get("FNX_SHARE_CPU_WITH", "")
    if pid.isdigit():
        torch.set_num_threads(1 if _alive(int(pid)) else _TORCH_THREADS)
    yield


# Under pytest-xdist each worker takes its share of the cores (two workers on 2 cores: one torch thread each),
# so the workers never oversubscribe the machine.
_TORCH_THREADS = max(1, torch.get_num_threads() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
torch.set_num_threads(_TORCH_THREADS)


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


@pytest.fixture
def stop_after_first_epoch(monkeypatch):
    """Return run(train_fn, *args): calls it as a run killed right after epoch 1's state is written (KeyboardInterrupt
    there), and checks it was so."""
    from fnx.training.state import TrainState

    def run(train_fn, *args, **kw) -> None:
        saved, calls = TrainState.save, []

        def save_then_stop(self, path):
            saved(self, path)
            calls.append(path)
            raise KeyboardInterrupt

        monkeypatch.setattr(TrainState, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train_fn(*args, **kw)
        monkeypatch.setattr(TrainState, "save", saved)
        assert len(calls) == 1

    return run


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)



@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A folder where `make demo` has run (`fnx demo --out demo_out`, as a user runs it, in a subprocess), with the
    checkout's fnx/ and examples/ beside it: the demo's digits and its eight artifacts, made once for every test that
    reads them (test_docs runs the pages' commands there; test_demo checks the artifacts). demo.out: what it printed."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def make(ws: Path) -> None:
        for name in ("fnx", "examples"):
            (ws / name).symlink_to(root / name)
        env = {k: v for k, v in os.environ.items() if k != "FNX_SHARE_CPU_WITH"}
        r = subprocess.run([sys.executable, "-m", "fnx", "demo", "--out", "demo_out"], cwd=ws,
                           env={**env, "COLUMNS": "100"}, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        (ws / "demo.out").write_text(r.stdout)

    return once_across_workers(tmp_path_factory, "demo-workspace", make)


@pytest.fixture(scope="session")
def digits(demo_workspace):
    """The demo's data set (scikit-learn's digit scans as train/val/test class folders), as the demo wrote it: read
    only (a test that changes images copies them first)."""
    return demo_workspace / "demo_out" / "digits"


@pytest.fixture(scope="session")
def t0_ckpt(tmp_path_factory):
    """A FasterNet-T0 checkpoint (10 classes) with O(1) logits and non-default BN statistics."""
    from fnx.dev import write_lively_checkpoint

    return write_lively_checkpoint("fasternet_t0", tmp_path_factory.mktemp("ckpt") / "t0_lively.pth", num_classes=10)


@pytest.fixture(scope="session")
def t0_exports(t0_ckpt, tmp_path_factory):
    """fp32 ONNX and TFLite exports of t0_ckpt at 64x64, made once per session."""
    from fnx.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("exports")
    results = export_model("t0", ExportOptions(formats=("onnx", "tflite"), weights=str(t0_ckpt), img_size=64, out_dir=out))
    return {r.manifest.artifact.format: r for r in results}


@pytest.fixture(scope="session")
def t0_executorch(t0_ckpt, tmp_path_factory):
    """An fp32 ExecuTorch export (.pte, XNNPACK) of t0_ckpt at 64x64, made once per session (skipped without it)."""
    from fnx.exporter import ExportOptions, export_model
    from fnx.exporter.formats import installed_formats

    if "executorch" not in installed_formats():
        pytest.skip("ExecuTorch is not installed here (the executorch extra)")
    (res,) = export_model("t0", ExportOptions(formats=("executorch",), weights=str(t0_ckpt), img_size=64,
                                              out_dir=tmp_path_factory.mktemp("executorch")))
    return res


@pytest.fixture(scope="session")
def t0_dynamic(t0_ckpt, tmp_path_factory):
    """t0_ckpt at 64 px as ONNX fp32 with a dynamic batch axis (what serving's batching needs), made once per session."""
    from fnx.exporter import ExportOptions, export_model

    (res,) = export_model("t0", ExportOptions(formats=("onnx",), weights=str(t0_ckpt), img_size=64, dynamic_batch=True,
                                              out_dir=tmp_path_factory.mktemp("dynamic")))
    return res.artifact


@pytest.fixture(scope="session")
def t0_tflite_int8(t0_ckpt, tmp_path_factory):
    """An int8 TFLite export of t0_ckpt at 64x64 (synthetic calibration, guard at cosine 0.95), made once per session.

    In the per-channel form with the exact GELU, whatever --int8-form auto would measure on this CPU: the same file
    on both CPU kinds (auto's own tests: test_int8_forms)."""
    from fnx.exporter import ExportOptions, Int8Options, export_model

    (res,) = export_model("t0", ExportOptions(formats=("tflite",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                              out_dir=tmp_path_factory.mktemp("tflite-int8"),
                                              int8=Int8Options("synthetic", 32, min_cosine=0.95, form="per-channel")))
    return res


# The machine switch (fnx.cpu_features): a test that branches on bf16/f16 takes `reduced_precision`, and so runs as
# on a CPU without them (an AVX2 AMD EPYC), with bf16 only (Zen 4, Cooper Lake) and with both (a Xeon with AMX),
# whichever machine runs the suite. Where the CPU lacks a shown one, OpenVINO computes in f32 and fnx says so.
REDUCED_PRECISION_KINDS = {"none": "-bf16,-f16", "bf16": "+bf16,-f16", "bf16+f16": "+bf16,+f16"}


@pytest.fixture(params=list(REDUCED_PRECISION_KINDS))
def reduced_precision(request, monkeypatch) -> set[str]:
    """Set FNX_CPU_FEATURES to hide or show bf16/f16 for this test; returns the reduced precisions shown."""
    monkeypatch.setenv("FNX_CPU_FEATURES", REDUCED_PRECISION_KINDS[request.param])
    return set() if request.param == "none" else set(request.param.split("+"))


@pytest.fixture(scope="session")
def t0_ncnn(t0_ckpt, tmp_path_factory):
    """fp32 and fp16-weight ncnn exports of t0_ckpt at 64x64 ({precision: ExportResult}), made once per session;
    skips where pnnx or ncnn is not installed."""
    import importlib.util

    from fnx.exporter import ExportOptions, export_model

    if importlib.util.find_spec("pnnx") is None or importlib.util.find_spec("ncnn") is None:
        pytest.skip("ncnn and pnnx are not installed (pip install 'fnx-edge[ncnn,pnnx]')")
    out = tmp_path_factory.mktemp("ncnn")
    return {p: export_model("t0", ExportOptions(formats=("ncnn",), precision=p, weights=str(t0_ckpt), img_size=64,
                                                out_dir=out))[0] for p in ("fp32", "fp16")}
