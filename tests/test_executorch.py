"""The ExecuTorch target (issue 35, item 1): .pte programs lowered whole to one XNNPACK delegate, fp32 within fp32's
parity bounds, int8 through PT2E under fnx's guard, and an engine that refuses a program of another ExecuTorch
version. Exports are shared (conftest's t0_executorch) and small (64 px)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests

from fnx.errors import FnxError

pytest.importorskip("executorch", reason="ExecuTorch is not installed here (the executorch extra)")

ONE_DELEGATE = {"XnnpackBackend": 1, "ops outside": 0}


def _digit_images(root: Path) -> Path:
    from fnx.demo.digits import build_digits

    return build_digits(root)


def test_fp32_t0_and_t2_match_pytorch_inside_one_xnnpack_delegate(t0_executorch, tmp_path):
    """fp32 within fnx's fp32 bounds (max abs <= 1e-4 of the logits' scale, cosine >= 0.99999; measured here T0
    1.4e-6 relative); every op inside one XNNPACK subgraph (PConv as slices and a cat: its split form leaves 13 ops
    outside and 14 subgraphs); the manifest records the exporter's ExecuTorch version."""
    from fnx.dev import write_lively_checkpoint
    from fnx.exporter import ExportOptions, export_model
    from fnx.runtime.engines.base import dist_version
    from fnx.targets.executorch.lower import delegate_subgraphs

    t2_ckpt = write_lively_checkpoint("fasternet_t2", tmp_path / "t2.pth", num_classes=10)
    (t2,) = export_model("t2", ExportOptions(formats=("executorch",), weights=str(t2_ckpt), img_size=64,
                                             out_dir=tmp_path))
    for res in (t0_executorch, t2):
        out = res.parity.outputs[0]
        assert res.parity.passed and out.max_rel < 1e-4 and out.cosine > 0.99999 and out.top1_agreement == 1.0, out
        assert delegate_subgraphs(res.artifact) == ONE_DELEGATE, res.artifact.name
        assert res.manifest.converter["executorch"] == dist_version("executorch")
        assert res.manifest.input.layout == "NCHW" and res.manifest.artifact.format == "executorch"


def test_int8_of_the_trained_demo_model_is_guarded_and_stays_in_one_delegate(tmp_path, cli):
    """int8 from the user's images (the demo's digit scans) through the CLI, held to the guard's default bound
    (cosine >= 0.99; the random-weight T0 at 64 px gets ~0.989 and is no case for a pass) and recorded like every
    int8: scheme, form, held-out figures; float I/O; quantized ops still in one XNNPACK subgraph."""
    from fnx.demo.train_demo import DEMO_CHECKPOINT
    from fnx.manifest import read_manifest
    from fnx.targets.executorch.lower import delegate_subgraphs

    digits = _digit_images(tmp_path / "digits")
    r = cli("export", "t0", "--weights", DEMO_CHECKPOINT, "--format", "executorch", "--precision", "int8",
            "--int8-form", "per-channel", "--calib-data", digits / "train", "--calib-size", "64", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    art = tmp_path / "fasternet_t0_64_executorch_int8.pte"
    m = read_manifest(art)
    cal = m.calibration
    assert cal.report.passed and cal.report.cosine_min >= 0.99 and cal.guard.min_cosine == 0.99, cal.report
    assert cal.kept_float == [] and "XNNPACK" in cal.scheme and "per-channel" in cal.scheme and cal.io == "float"
    assert (cal.forms.chosen, cal.forms.how) == ("per-channel", "asked")
    assert m.parity.passed and m.inputs[0].dtype == "float32" and m.inputs[0].quantization is None
    assert delegate_subgraphs(art) == ONE_DELEGATE
    assert art.stat().st_size < 0.4 * 10.5e6  # int8 weights: ~2.8 MB against fp32's 10.5 MB
    r = cli("run", art, "--json", "--device", "cpu", "--threads", "1", next((digits / "test" / "7").glob("*.png")))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["engine"].startswith("executorch") and out["predictions"][0]["top"][0]["label"] == "7"
    r = cli("eval", art, "--data", digits / "test", "--limit", "40", "--threads", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["top1"] >= 0.95  # the demo model's test top-1 is 99.4% (fp32 and int8 TFLite)


def test_auto_measures_both_weight_granularities():
    """--int8-form auto times per-channel and per-tensor here and keeps the fastest within the bound
    (fnx.calibration.forms); either can be asked for by name."""
    from fnx.calibration.options import Int8Options
    from fnx.exporter.formats import get_format
    from fnx.exporter.int8_forms import form_names, pick_forms

    fmt = get_format("executorch")
    pick = pick_forms(fmt, Int8Options("synthetic"))
    assert [o.name for o in pick.options] == ["per-channel", "per-tensor"] and pick.how == "measured"
    assert form_names(fmt) == ["per-channel", "per-tensor"] and fmt.float_precisions == ("fp32",)


def test_engine_runs_through_session_and_cli_on_any_thread_count(t0_executorch, tmp_path, cli):
    """Session at 1 and 2 threads in one process (ExecuTorch's threadpool is one per process: the first session
    loads its program again after the second replaced the pool) gives the same outputs; batches are chunked."""
    from fnx.runtime import load

    art = t0_executorch.artifact
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    one = load(art, device="cpu", threads=1)
    first = one.run(x)[0]
    two = load(art, device="cpu", threads=2)
    assert one.engine_name == "executorch" and "2 threads" in two.engine_label
    assert first.shape == (3, 10)
    np.testing.assert_allclose(two.run(x)[0], first, rtol=0, atol=1e-4)
    np.testing.assert_allclose(one.run(x)[0], first, rtol=0, atol=1e-6)  # after the pool was replaced under it
    assert "1 threads" in one.engine_label
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(image)
    r = cli("run", art, "--json", "--device", "cpu", "--threads", "1", image)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["engine"].startswith("executorch 1.")
    r = cli("devices")
    shown = " ".join(r.output.split())
    assert "executorch needs torch on the device" in shown and "executorch int8 on executorch (fnx bench all" in shown
    from fnx.dev.serve_process import ServerProcess

    with ServerProcess(f"et={art}", "--threads", "1") as server:
        got = requests.post(server.http("/v2/models/et/classify?topk=3"), data=image.read_bytes(),
                            headers={"Content-Type": "image/png"}, timeout=30)
        assert server.stop() == 0 and "Traceback" not in server.log, server.log
    assert got.status_code == 200, got.text
    want = one.predict([image], topk=3)[0].to_dict()["top"]
    assert [t["index"] for t in got.json()["predictions"][0]["top"]] == [t["index"] for t in want]


def test_a_program_from_another_executorch_version_is_refused_naming_both(t0_executorch, tmp_path, cli):
    from fnx.runtime import load
    from fnx.runtime.engines.base import dist_version

    art = tmp_path / t0_executorch.artifact.name
    shutil.copy(t0_executorch.artifact, art)
    manifest = json.loads(t0_executorch.artifact.with_suffix(".json").read_text())
    manifest["converter"]["executorch"] = "1.4.0"
    art.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(FnxError) as e:
        load(art, device="cpu")
    message = str(e.value)
    assert "\n" not in message and "ExecuTorch 1.4.0" in message and f"ExecuTorch {dist_version('executorch')}" in message
    r = cli("run", art, "--device", "cpu", tmp_path)
    assert r.exit_code == 1 and "ExecuTorch 1.4.0" in r.output


def test_bad_inputs_are_refused_with_what_to_do(t0_executorch, t0_ckpt, tmp_path, cli):
    from fnx.runtime import load

    art = t0_executorch.artifact
    cut = tmp_path / "cut.pte"
    cut.write_bytes(art.read_bytes()[:4096])  # a .pte header with its body missing
    with pytest.raises(FnxError, match=r"cannot load .*cut.pte.*corrupt, truncated or written by another ExecuTorch"):
        load(cut, device="cpu")
    with pytest.raises(FnxError, match=r"does not fit this model: it takes \(N, 3, 64, 64\)"):
        load(art, device="cpu").run(np.zeros((1, 3, 32, 32), np.float32))
    r = cli("export", "t0", "--weights", t0_ckpt, "--img-size", "64", "--format", "executorch", "--precision", "fp16",
            "--out", tmp_path)
    assert r.exit_code == 1 and "executorch has no fp16 export" in r.output and "fp32/int8" in r.output
    assert not list(tmp_path.glob("*fp16*"))
    r = cli("verify", art, "--weights", t0_ckpt, "--layers")
    assert r.exit_code == 1 and "exposes no intermediate tensors" in " ".join(r.output.split())
