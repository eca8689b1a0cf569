"""--format rknn: fnx's fp32 ONNX built into an int8 .rknn by rknn-toolkit2 in its own environment (fnx.toolchains),
judged on the toolkit's simulator against PyTorch under the int8 guard; the NPU/CPU op split and each layer's cosine
in the manifest; no engine here (one line); a wrong target, an offline machine without the toolchain and a failed
build each say so in one line and leave nothing.

The tests marked `toolchain` run the real toolkit: `make test-targets` creates its environment first (once per
machine, FNX_TOOLCHAINS_DIR) and runs them; the others need no toolchain and run in `make test`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fnx.errors import FnxError


@pytest.fixture(scope="module")
def rknn_t0(tmp_path_factory):
    """The demo's trained FasterNet-T0 (digits, 64 px) exported to rk3588 by `fnx export` in a subprocess, as a user
    runs it: (artifact, its manifest as JSON). Trained weights: random ones at 64 px lose more to int8 than the
    guard's default bound allows on any int8 target (0.987 here, 0.989 with ExecuTorch)."""
    import sys
    from pathlib import Path

    import fnx

    weights = Path(fnx.__file__).parent / "demo" / "fasternet_t0_digits.safetensors"
    out = tmp_path_factory.mktemp("rknn")
    r = subprocess.run([sys.executable, "-m", "fnx", "export", "t0", "--weights", str(weights), "--format", "rknn",
                        "--precision", "int8", "--target", "rk3588", "--calib-data", "synthetic", "--calib-size", "32",
                        "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    art = out / "fasternet_t0_64_rknn_int8.rknn"
    return art, json.loads(art.with_suffix(".json").read_text())


@pytest.mark.toolchain
def test_t0_is_built_for_rk3588_and_judged_on_the_simulator_against_pytorch(rknn_t0):
    art, m = rknn_t0
    from fnx.formats import detect_format

    assert detect_format(art).name == "rknn" and art.read_bytes()[:4] == b"RKNN"
    assert sorted(p.name for p in art.parent.iterdir()) == sorted([art.name, art.with_suffix(".json").name])
    assert (m["artifact"]["format"], m["artifact"]["precision"]) == ("rknn", "int8")
    c = m["compilation"]
    assert c["compiler"] == "rknn-toolkit2 2.5.0" and c["target"] == "rk3588" and c["source_format"] == "onnx"
    assert c["options"]["quantized_dtype"] == "w8a8" and "simulator" in c["parity"]
    # the guard (held-out images) and the parity check (16 verification images) judged the simulator's outputs
    # against PyTorch fp32 at fnx's default int8 bound; measured 0.9983 / 0.9995 (docs/guides/rknn.md)
    cal, parity = m["calibration"], m["parity"]
    assert cal["guard"]["min_cosine"] == 0.99 and cal["report"]["passed"] and cal["report"]["cosine_min"] >= 0.99
    (logits,) = parity["outputs"]
    assert parity["passed"] and logits["cosine"] >= 0.99 and logits["top1_agreement"] >= 0.9 and logits["n"] == 16
    # the op split from the toolkit's layer table: every compute op on the NPU (75 with 2.5.0), the CPU's are I/O
    e = c["estimate"]
    assert e["ops_on_npu"] > 50 and e["latency_ms"] is None
    assert c["options"]["ops_on_cpu"] == "InputOperator, Reshape, OutputOperator" and e["ops_on_cpu"] == 3
    # each layer's cosine from accuracy_analysis: the input and the logits among them, every one a cosine
    layers = c["layers"]
    assert len(layers) > 50 and all(-1 <= la["cosine"] <= 1.0001 and -1 <= la["cosine_single"] <= 1.0001
                                    for la in layers)
    assert (layers[0]["op"], layers[0]["layer"], layers[-1]["layer"]) == ("Input", "input", "logits")
    assert min(la["cosine_single"] for la in layers) > 0.99  # no layer alone loses the signal at int8


@pytest.mark.toolchain
def test_fnx_runs_no_rknn_file_and_says_where_it_runs(rknn_t0, cli):
    art = rknn_t0[0]
    for args in (("run", art, art), ("verify", art, "--layers")):
        r = cli(*args, env={"COLUMNS": "400"})
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert "no engine for rknn artifacts: they run on a Rockchip NPU, through RKNN Lite 2" in r.stderr
        assert "compilation.layers" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.toolchain
def test_t2_at_224_fits_the_rk3588_and_holds_the_bound_on_the_simulator(tmp_path, cli):
    """FasterNet-T2 at full size (lively random weights, seeded): the real toolkit builds it for the RK3588, the
    simulator's outputs hold fnx's default int8 bound against PyTorch (measured on the AMD kind from 64 synthetic
    images: held-out 0.99726, parity 0.99622; from 32, 0.99177 held-out, too near the bound), every compute op on the
    NPU; a file and its manifest, nothing else. Seeded weights: with `--weights random` (unseeded) the held-out cosine
    went from 0.977 to 0.992 between runs."""
    from fnx.dev import write_lively_checkpoint

    out, ckpt = tmp_path / "out", write_lively_checkpoint("t2", tmp_path / "t2.pth", num_classes=10)
    r = cli("export", "t2", "--weights", ckpt, "--format", "rknn", "--precision", "int8",
            "--target", "rk3588", "--calib-data", "synthetic", "--calib-size", "64", "--out", out)
    assert r.exit_code == 0, r.output
    art = out / "fasternet_t2_224_rknn_int8.rknn"
    assert sorted(p.name for p in out.iterdir()) == sorted([art.name, art.with_suffix(".json").name])
    m = json.loads(art.with_suffix(".json").read_text())
    c, cal, (logits,) = m["compilation"], m["calibration"], m["parity"]["outputs"]
    assert c["target"] == "rk3588" and "simulator" in c["parity"] and m["model"]["img_size"] == 224
    assert cal["guard"]["min_cosine"] == 0.99 and cal["report"]["passed"] and cal["report"]["cosine_min"] >= 0.99
    assert m["parity"]["passed"] and logits["cosine"] >= 0.99 and logits["top1_agreement"] >= 0.9
    assert c["estimate"]["ops_on_npu"] > 50 and c["estimate"]["ops_on_cpu"] == 3  # the CPU's: input, reshape, output
    assert len(c["layers"]) > 50 and c["layers"][-1]["layer"] == "logits"


@pytest.mark.toolchain
def test_calib_method_mse_builds_with_the_toolkits_mmse_and_holds_the_bound(tmp_path, cli):
    """--calib-method mse is the toolkit's mmse (Min Mean Square Error) ranges: the manifest says so, and the
    demo's trained model holds the default bound on the simulator with them."""
    import fnx

    weights = Path(fnx.__file__).parent / "demo" / "fasternet_t0_digits.safetensors"
    r = cli("export", "t0", "--weights", weights, "--format", "rknn", "--precision", "int8", "--calib-data",
            "synthetic", "--calib-size", "16", "--calib-method", "mse", "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "out" / "fasternet_t0_64_rknn_int8.json").read_text())
    assert m["compilation"]["options"]["quantized_algorithm"] == "mmse" and m["calibration"]["method"] == \
        "rknn-toolkit2 mmse (--calib-method mse)"
    assert m["calibration"]["report"]["passed"] and m["parity"]["passed"]


@pytest.mark.toolchain
def test_a_build_below_the_bound_is_refused_with_its_figures_and_leaves_nothing(tmp_path, cli):
    """The real toolkit on random weights: the simulator's held-out cosine is below the bound asked, and the guard
    cannot return RKNN layers to float, so with --calib-method unset the build is tried with each method the toolkit
    has (normal, kl_divergence, mmse); the export is refused with each one's figure, and nothing is left."""
    r = cli("export", "t0", "--weights", "random", "--num-classes", "10", "--img-size", "64", "--format", "rknn",
            "--precision", "int8", "--calib-data", "synthetic", "--calib-size", "8", "--min-cosine", "0.99999",
            "--out", tmp_path / "out", env={"COLUMNS": "400"})
    (said,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.exit_code == 1 and "int8 accuracy guard failed with every --calib-method rknn takes: minmax (logits: " \
        "cosine" in said and "is below 0.99999), entropy (logits: cosine" in said and "), mse (logits: cosine" in said
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("args, said", [
    (("--target", "rk9999"), "unknown --target 'rk9999'"),
    (("--target", "rpi4"), "for rknn, --target takes rk3588, rk3576"),
    (("--precision", "fp32"), "rknn has no fp32 export in fnx"),
    (("--calib-method", "percentile"), "--calib-method percentile has no counterpart in rknn's int8 quantizer: use minmax or entropy or mse"),
])
def test_a_wrong_rknn_export_is_refused_in_one_line_before_anything(args, said, tmp_path, cli, monkeypatch):
    import fnx.exporter.pipeline as pipeline

    monkeypatch.setenv("FNX_TOOLCHAINS_DIR", str(tmp_path / "toolchains"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model before refusing"))
    options = dict(zip(args[::2], args[1::2]))
    r = cli("export", "t0", "--weights", "random", "--format", "rknn", *args,
            *(() if "--precision" in options else ("--precision", "int8")), "--calib-data", "synthetic",
            "--out", tmp_path / "out", env={"COLUMNS": "400"})
    assert r.exit_code == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "toolchains").exists()  # nothing installed either


def test_every_rockchip_platform_is_a_target_and_the_unknown_line_lists_them(cli, tmp_path):
    from fnx.targets.rknn import PLATFORMS

    r = cli("export", "t0", "--weights", "random", "--format", "rknn", "--precision", "int8", "--target", "rk9999",
            "--calib-data", "synthetic", "--out", tmp_path / "out", env={"COLUMNS": "400"})
    assert all(p in r.stderr for p in PLATFORMS), r.stderr


def test_a_failed_toolkit_build_leaves_nothing(t0_ckpt, tmp_path, monkeypatch):
    """The toolkit writes part of a .rknn and fails: the export says so with the toolkit's own error line, and neither
    the artifact, its manifest nor any temporary file is left."""
    import fnx.exporter.pipeline as pipeline
    import fnx.targets.rknn.build as build
    import fnx.toolchains.env as env
    from fnx.exporter import ExportOptions, Int8Options, export_model

    def failing_toolkit(tc, args, cwd=None, timeout=None):
        job = json.loads(open(args[1]).read())
        open(job["rknn"], "wb").write(b"RKNN partial")
        open(job["log"], "w").write("I RKNN: building\nE RKNN: Unkown op target: 0\nE build: Meet unsupported op\n")
        return subprocess.CompletedProcess(args, 2, "", "rknn-toolkit2 build failed (returned -1)")

    monkeypatch.setattr(pipeline, "make_toolchains", lambda formats, steps: None)
    monkeypatch.setattr(build, "create", lambda tc, on_line: None)
    monkeypatch.setattr(env, "run", failing_toolkit)
    out = tmp_path / "out"
    with pytest.raises(FnxError, match=r"rknn-toolkit2 could not build .*\.fp32\.onnx for rk3576: E build: Meet "
                                       r"unsupported op"):
        export_model("t0", ExportOptions(formats=("rknn",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                         out_dir=out, int8=Int8Options("synthetic", size=8, target="rk3576")))
    assert list(out.iterdir()) == []
