"""OpenVINO: the IR export format (fp32, int8 through NNCF and fnx's guard) and the engine (IR and ONNX)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None:
    pytest.skip("OpenVINO and NNCF are not installed (pip install 'fnx[openvino]')", allow_module_level=True)

from fnx.calibration.options import Int8Options  # noqa: E402
from fnx.errors import FnxError  # noqa: E402
from fnx.exporter import ExportOptions, export_model  # noqa: E402
from fnx.parity import BOUNDS, cosine_per_sample  # noqa: E402
from fnx.runtime import load  # noqa: E402
from fnx.targets.openvino.engine import supported_precisions  # noqa: E402


@pytest.fixture(scope="module")
def ir_fp32(t0_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("ir")
    (res,) = export_model("t0", ExportOptions(formats=("openvino",), weights=str(t0_ckpt), img_size=64, out_dir=out))
    return res


def _batch(n=4, size=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def test_fp32_ir_is_two_files_with_a_manifest_and_matches_pytorch(ir_fp32, t0_exports):
    xml = ir_fp32.artifact
    assert xml.suffix == ".xml" and xml.with_suffix(".bin").is_file()
    m = ir_fp32.manifest
    assert m.artifact.format == "openvino" and m.artifact.precision == "fp32" and ir_fp32.parity.passed
    assert m.artifact.size_bytes == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    assert "openvino" in m.converter and "nncf" in m.converter
    assert not [p for p in xml.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    session = load(xml, device="cpu", threads=1)
    assert session.engine_name == "openvino" and "f32" in session.engine_label
    onnx = load(t0_exports["onnx"].artifact, device="cpu", threads=1)
    x = _batch()
    got, want = session.run(x)[0], onnx.run(x)[0]
    rel = np.abs(got - want).max() / max(1.0, np.abs(want).max())
    assert rel <= BOUNDS["fp32"]["max_abs_rel"] and cosine_per_sample(want, got).min() >= BOUNDS["fp32"]["min_cosine"]


def test_openvino_engine_runs_fnx_onnx_when_asked(t0_exports):
    path = t0_exports["onnx"].artifact
    ov, ort = load(path, device="cpu", engine="openvino"), load(path, device="cpu")
    assert ov.engine_name == "openvino" and ort.engine_name == "onnxruntime"  # ONNX Runtime stays ONNX's default
    x = _batch(2)
    assert cosine_per_sample(ort.run(x)[0], ov.run(x)[0]).min() >= BOUNDS["fp32"]["min_cosine"]


def test_cli_run_bench_and_verify_on_ir(ir_fp32, t0_ckpt, tmp_path, cli):
    from PIL import Image

    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (70, 90, 3), np.uint8)).save(img)
    r = cli("run", ir_fp32.artifact, img, "--json")
    assert r.exit_code == 0, r.output
    assert "openvino" in json.loads(r.stdout)["engine"]
    r = cli("bench", ir_fp32.artifact, "--runs", "3", "--warmup", "1", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["engine"].startswith("openvino") and row["file_mb"] * 1e6 == pytest.approx(
        ir_fp32.manifest.artifact.size_bytes, rel=1e-6)
    r = cli("verify", ir_fp32.artifact)
    assert r.exit_code == 0, r.output
    r = cli("verify", ir_fp32.artifact, "--weights", t0_ckpt, "--layers", "--json")  # per layer: matches the model
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["layers"]
    assert len(rows) >= 44 and min(row["cosine"] for row in rows) > 0.9999, rows[:3]


def test_quantize_refuses_ir_naming_the_export_that_makes_its_int8(ir_fp32, cli):
    r = cli("quantize", ir_fp32.artifact, "--calib-data", "synthetic", env={"COLUMNS": "250"})
    assert r.exit_code == 1 and "fnx export MODEL --format openvino --precision int8" in r.output
    assert "takes an fp32 .onnx export" in r.output  # the formats that can, from the registry


def test_int8_through_nncf_is_guarded_and_reported(t0_ckpt, tmp_path, cli):
    int8 = Int8Options(data="synthetic", size=32, min_cosine=0.95)
    (res,) = export_model("t0", ExportOptions(formats=("openvino",), precision="int8", weights=str(t0_ckpt),
                                              img_size=64, out_dir=tmp_path, int8=int8))
    cal = res.manifest.calibration
    assert cal.method.startswith("minmax (NNCF") and cal.io == "float"
    # auto measured both NNCF presets, each also with T0's GELU as x*sigmoid(1.702x), and wrote the one it chose
    assert [t.form for t in cal.forms.candidates] == ["mixed", "performance", "mixed+sigmoid-gelu",
                                                      "performance+sigmoid-gelu"]
    assert all(t.latency_ms and t.cosine_min for t in cal.forms.candidates) and cal.forms.how == "measured"
    assert cal.method == f"minmax (NNCF, {cal.forms.chosen.removesuffix('+sigmoid-gelu')} preset)"
    sigmoid = cal.forms.chosen.endswith("+sigmoid-gelu")
    assert cal.report.cosine_min >= 0.95 and cal.report.layer_errors
    assert all("/" not in e.layer for e in cal.report.layer_errors)  # module paths, as the guard needs them
    assert cal.report.float_ops.get("Gelu", 0) == (0 if sigmoid else 14)  # an exact GELU runs in float in OpenVINO
    assert res.parity.passed and res.manifest.parity.bounds["min_cosine"] == 0.95
    assert res.artifact.with_suffix(".bin").stat().st_size < 0.5 * res.manifest.model.params * 4  # int8 weights
    # fnx verify --layers reads each layer's output from the IR (after its bias and FakeQuantize, as the next layer
    # reads it); the guard's ranking reads the same points, so the two agree
    r = cli("verify", res.artifact, "--weights", t0_ckpt, "--layers", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["layers"]
    assert len(rows) >= 44 and [x["sqnr_db"] for x in rows] == sorted(x["sqnr_db"] for x in rows)
    recorded = [x for x in rows if x["recorded_snr_db"] is not None]
    assert recorded and not any(x["disagrees"] for x in recorded), [(x["layer"], x["sqnr_db"], x["recorded_snr_db"])
                                                                    for x in recorded]


def test_int8_activation_ranges_cover_every_calibration_image(t0_ckpt, tmp_path):
    """NNCF's default range for an activation is the mean of each sample's min and max; fnx feeds one image per sample,
    so every image beyond the average one was clipped: held-out cosine 0.970 here (T0 128 px, 32 synthetic images, the
    mixed preset), and returning layers to float could not mend it. With min-max over all the images: 0.9935 (AMD
    kind). The bound sits between the two with a margin either side."""
    int8 = Int8Options(data="synthetic", size=32, min_cosine=0.5, form="mixed")
    (res,) = export_model("t0", ExportOptions(formats=("openvino",), precision="int8", weights=str(t0_ckpt),
                                              img_size=128, out_dir=tmp_path, int8=int8, verify=False))
    assert res.manifest.calibration.report.cosine_min > 0.985 and not res.manifest.calibration.kept_float


def test_int8_guard_refusal_leaves_no_file(t0_ckpt, tmp_path, monkeypatch):
    import fnx.calibration.guard as guard

    # NNCF's accuracy control in one step (its ranking compiles one model per quantizer group, ~6 s here): the
    # refusal's path is the same with 12
    monkeypatch.setattr(guard, "GUARD_STEP", 1)
    monkeypatch.setattr(guard, "GUARD_MAX_STEPS", 1)
    int8 = Int8Options(data="synthetic", size=16, min_cosine=0.999999, form="mixed")  # one form: the guard's lever
    with pytest.raises(FnxError, match=r"accuracy guard failed after NNCF accuracy control returned \d+ ops to float"):
        export_model("t0", ExportOptions(formats=("openvino",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                         out_dir=tmp_path, int8=int8))
    assert list(tmp_path.iterdir()) == []


def test_the_guard_returns_the_ops_nncf_ranks_costliest_to_float_until_the_bound_holds(t0_ckpt, tmp_path):
    """OpenVINO's guard lever is NNCF's accuracy control (fnx.targets.openvino.accuracy_control): every quantized op,
    residual adds included, ranked by what returning it to float does to the held-out images' lowest cosine. T0 128 px,
    32 synthetic images, mixed preset, bound 0.997, on an AMD EPYC: all-int8 0.9935; fnx's generic lever (12 conv
    layers back to float, 4 at a time) reached 0.9946 and was refused; accuracy control 0.9978 with 5 ops in float."""
    import openvino

    from fnx.models import create_model
    from fnx.targets.openvino.accuracy_control import int8_compute

    int8 = Int8Options(data="synthetic", size=32, min_cosine=0.997, form="mixed")
    (res,) = export_model("t0", ExportOptions(formats=("openvino",), precision="int8", weights=str(t0_ckpt),
                                              img_size=128, out_dir=tmp_path, int8=int8))
    cal = res.manifest.calibration
    assert cal.report.passed and cal.report.cosine_min >= 0.997 and cal.report.guard_steps == 1, cal.report
    assert 0 < len(cal.kept_float) <= 12 and any("NNCF accuracy control returned" in n for n in cal.notes)
    modules = dict(create_model("fasternet_t0", num_classes=10).named_modules())
    assert all(k.removesuffix(" (add)") in modules for k in cal.kept_float), cal.kept_float  # module paths
    assert not set(cal.kept_float) & int8_compute(openvino.Core().read_model(str(res.artifact)))  # float in the file
    assert res.parity.passed and cal.report.float_fallback_cost is not None


def test_missing_or_replaced_bin_is_one_clear_error(ir_fp32, tmp_path, cli):
    import shutil

    xml = tmp_path / ir_fp32.artifact.name
    shutil.copy(ir_fp32.artifact, xml)
    shutil.copy(ir_fp32.artifact.with_suffix(".json"), xml.with_suffix(".json"))
    r = cli("run", xml, xml)
    assert r.exit_code == 1 and ".bin is missing beside" in " ".join(r.output.split())
    data = bytearray(ir_fp32.artifact.with_suffix(".bin").read_bytes())
    data[1000] ^= 0xFF  # same size, other weights
    xml.with_suffix(".bin").write_bytes(bytes(data))
    with pytest.raises(FnxError, match="describes another file"):
        load(xml, device="cpu")


def computable_for(hint: str) -> set[str]:
    """What OpenVINO may compute in when asked for hint, on this CPU whatever the machine switch shows: hint, or where
    the CPU lacks it f32, or bf16 where the CPU has bf16 (an AMD Zen 4 asked for f16 computes bf16)."""
    import os

    shown = os.environ.pop("FNX_CPU_FEATURES", None)
    try:
        real = set(supported_precisions())
    finally:
        if shown is not None:
            os.environ["FNX_CPU_FEATURES"] = shown
    return {"f32", hint} | ({"bf16"} & real)


def test_inference_precision_is_checked(ir_fp32, t0_exports, reduced_precision):
    """Both branches, on any CPU: a precision offered computes within its own bound and reports what it computed;
    one not offered is refused."""
    with pytest.raises(FnxError, match="needs openvino"):
        load(t0_exports["onnx"].artifact, device="cpu", engine="onnxruntime", inference_precision="bf16")
    have = supported_precisions()
    assert set(have) == {"f32"} | reduced_precision
    from fnx.parity import bounds_for

    x = _batch(2)
    ref = load(ir_fp32.artifact, device="cpu").run(x)[0]
    for hint in ("bf16", "f16"):
        if hint in have:  # computes in it (or in f32 where the CPU only pretends, and says so): within its bound
            low = load(ir_fp32.artifact, device="cpu", inference_precision=hint)
            assert low.engine.requested_precision == hint and low.engine.precision in computable_for(hint)
            assert (low.engine.precision != hint) == ("asked for" in low.engine_label)
            assert cosine_per_sample(ref, low.run(x)[0]).min() >= bounds_for("fp32", inference_precision=hint)["min_cosine"]
        else:
            with pytest.raises(FnxError, match=f"cannot compute in {hint}"):
                load(ir_fp32.artifact, device="cpu", inference_precision=hint)


def test_machine_switch_reads_plus_and_minus_and_refuses_anything_else(monkeypatch):
    from fnx import cpu_features

    assert cpu_features.apply(["bf16", "f16"], "-bf16") == ["f16"]
    assert cpu_features.apply([], " +f16 , +bf16") == ["f16", "bf16"]
    assert cpu_features.apply(["bf16"], "") == ["bf16"]
    for bad in ("bf16", "+avx9", "*f16", "+"):
        with pytest.raises(FnxError, match="FNX_CPU_FEATURES"):
            cpu_features.apply([], bad)
    monkeypatch.setenv("FNX_CPU_FEATURES", "-amx")
    with pytest.raises(FnxError, match="'-amx' is not"):
        supported_precisions()


def test_bench_all_offers_reduced_precision_rows_only_where_the_cpu_has_them(reduced_precision):
    from fnx.ranking import combinations

    hints = {h for _, h, _ in combinations("openvino", "fp32")}
    assert hints == {None} | reduced_precision
    assert {h for _, h, _ in combinations("openvino", "int8")} == {None}  # an int8 artifact keeps its own numerics


def test_openvino_is_loaded_without_telemetry(tmp_path, monkeypatch):
    """OpenVINO and NNCF would send usage events to an outside server; fnx loads them with their stubs."""
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "FNX_OPENVINO_TELEMETRY")}
    env["HOME"] = str(tmp_path)  # no consent file
    code = ("import sys; from fnx.targets.openvino import env as openvino_env; openvino_env.openvino(); openvino_env.nncf(); "
            "import openvino.tools.ovc.telemetry_utils as t; print(sys.modules['openvino_telemetry'], t.tm.__name__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stdout.split() == ["None", "openvino.tools.ovc.telemetry_stub"]
    (tmp_path / "intel").mkdir()
    (tmp_path / "intel" / "openvino_telemetry").write_text("1\n")  # the user opted in: fnx leaves it alone
    from fnx.targets.openvino.env import telemetry_accepted

    monkeypatch.setenv("HOME", str(tmp_path))
    assert telemetry_accepted()


def test_bench_all_rows_follow_the_machine_switch(t0_ckpt, tmp_path, monkeypatch, reduced_precision):
    """Each CPU kind's branch on any CPU: reduced-precision rows exactly where offered, each judged by the bound of
    its own combination, reporting what the engine computed; the --device auto record keeps own-numerics rows only."""
    from fnx.devices.measured import measured_ranking, save_ranking
    from fnx.ranking import sweep
    from fnx.parity import bounds_for

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "installed_formats", lambda: ("openvino",))
    rows = sweep.bench_all("t0", ExportOptions(weights=str(t0_ckpt), img_size=64, out_dir=tmp_path / "out"),
                           runs=2, warmup=0, precisions=("fp32",))
    assert sorted(r["inference_precision"] for r in rows) == sorted({"f32"} | reduced_precision)
    for r in rows:
        hint = None if r["inference_precision"] == "f32" else r["inference_precision"]
        assert r["parity_passed"] and r["cosine"] >= bounds_for("fp32", inference_precision=hint)["min_cosine"], r
        assert r["computed_precision"] in computable_for(r["inference_precision"])  # a CPU without it says what it did
    save_ranking("fasternet_t0", 64, 1, rows)
    assert [r["inference_precision"] for r in measured_ranking("openvino", "fp32", "fasternet_t0", 64, 1)] == ["f32"]


def test_bench_all_keeps_a_refusal_as_a_row(t0_ckpt, tmp_path, monkeypatch):
    """An int8 the guard refuses is a row saying so; the other rows go on."""
    from fnx.ranking import sweep

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "installed_formats", lambda: ("onnx",))
    import fnx.exporter.pipeline as pipeline

    builds, references = [], []
    monkeypatch.setattr(pipeline, "build", lambda *a, _real=pipeline.build, **k: builds.append(1) or _real(*a, **k))
    monkeypatch.setattr(pipeline, "reference_outputs",
                        lambda *a, _real=pipeline.reference_outputs: references.append(1) or _real(*a))
    opts = ExportOptions(weights=str(t0_ckpt), img_size=64, out_dir=tmp_path / "out",
                         int8=Int8Options("synthetic", 16, min_cosine=0.999999))
    rows = sweep.bench_all("t0", opts, runs=2, warmup=0, precisions=("fp32", "int8"))
    (refused,) = [r for r in rows if "error" in r]
    assert (refused["format"], refused["precision"]) == ("onnx", "int8") and "guard failed" in refused["error"]
    assert {(r["precision"], r["engine"]) for r in rows if "error" not in r} >= {("fp32", "onnxruntime")}
    assert not list((tmp_path / "out").glob("*int8*"))
    assert len(builds) == 1 and len(references) == 1  # one flow: built once, parity references computed once


def test_bench_all_ranks_every_format_and_engine_here(t0_ckpt, tmp_path, cli, monkeypatch):
    """fp32 and int8 (synthetic calibration) of every installed format, on every engine that runs each."""
    from fnx.exporter.formats import get_format, installed_formats
    from fnx.ranking import sweep
    from fnx.runtime.engines import ENGINES

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    # a format no engine here runs (an NPU's, compiled): its estimate rows are test_ethos_u's, with one export less here
    monkeypatch.setattr(sweep, "installed_formats", lambda: [f for f in installed_formats()
                                                             if any(f in e.formats for e in ENGINES.values())])
    # --min-cosine 0.9: int8 of these random weights from 32 synthetic images is near the default 0.99 (0.984-0.99
    # on an AMD EPYC), so the guard would refuse or pass by CPU; a refusal's row: test_bench_all_keeps_a_refusal_as_a_row
    # --int8-form default: one int8 form per format, not measured (the measuring is test_int8_forms', per format)
    r = cli("bench", "all", "t0", "--weights", t0_ckpt, "--img-size", "64", "--precisions", "fp32,int8",
            "--calib-data", "synthetic", "--calib-size", "32", "--min-cosine", "0.9", "--runs", "3", "--warmup", "1",
            "--int8-form", "default", "--out", tmp_path, "--json", env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert not [x for x in rows if "error" in x]
    combos = {(x["format"], x["precision"], x["engine"]) for x in rows}
    for fmt in sweep.installed_formats():  # each on its first installed engine at least (a new format: no edit here)
        own = next(e.name for e in ENGINES.values() if fmt in e.formats and e.available())
        made = {p for p in ("fp32", "int8") if get_format(fmt).makes(p)}  # ncnn: no int8 (said, left out)
        assert "fp32" in made and {(fmt, p, own) for p in made} <= combos
    assert ("onnx", "fp32", "openvino") in combos  # OpenVINO also runs fnx's ONNX
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert {x["device"] for x in rows} == {"cpu"}  # a GPU machine adds CUDA rows (tests/test_gpu.py)
    assert [x["p50_ms"] for x in rows] == sorted(x["p50_ms"] for x in rows)
    assert sum(x["fastest_within_bounds"] for x in rows) == 1
    best = next(x for x in rows if x["fastest_within_bounds"])
    assert best["parity_passed"] and all(not x["parity_passed"] for x in rows[: rows.index(best)])
    from fnx.parity import INFERENCE_PRECISION_BOUNDS, bounds_for

    # Each row is judged by the bounds of its own combination (artifact precision x compute precision), and the
    # reduced-precision rows are there exactly where OpenVINO offers them (bf16/f16: the Intel Xeon kind, or shown).
    hinted = {x["inference_precision"] for x in rows if x["inference_precision"] in INFERENCE_PRECISION_BOUNDS}
    assert hinted == set(supported_precisions()) - {"f32"}
    assert all(x["precision"] != "int8" for x in rows if x["inference_precision"] in hinted)
    forms = [json.loads(m.read_text())["calibration"].get("forms") for m in tmp_path.rglob("*.json")
             if (json.loads(m.read_text()).get("calibration") or {}).get("forms")]
    assert forms and all((f["asked"], f["how"], f["candidates"]) == ("default", "default", []) for f in forms)
    for x in rows:  # the exports' own checks held, so every row is within its bound
        hint = x["inference_precision"] if x["inference_precision"] in hinted else None
        bound = bounds_for(x["precision"], 0.9, inference_precision=hint)["min_cosine"]
        assert x["parity_passed"] and x["cosine"] >= bound, x
    from fnx.devices.measured import measured_here

    (run,) = measured_here()  # kept for fnx devices, under the size actually exported
    assert (run["model"], run["img_size"], run["threads"]) == ("fasternet_t0", 64, 1)
    assert {k: run["fastest"][k] for k in ("format", "precision", "engine", "p50_ms")} == \
        {k: best[k] for k in ("format", "precision", "engine", "p50_ms")}
    r = cli("bench", "all", "t0", "t1")
    assert r.exit_code == 2 and "unexpected extra argument" in r.output
    r = cli("bench", "all", "t0", "--precisions", "fp64")
    assert r.exit_code == 1 and "--precisions takes" in r.output


def test_bench_all_refuses_a_data_folder_of_other_classes_before_exporting(tmp_path, cli):
    """--data whose class folders are not the model's classes is refused before any export starts."""
    from PIL import Image

    from fnx.demo.train_demo import DEMO_CHECKPOINT

    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        Image.new("RGB", (80, 80), (40, 90, 160)).save(tmp_path / "data" / cls / "a.png")
    r = cli("bench", "all", "t0", "--weights", DEMO_CHECKPOINT, "--img-size", "64", "--precisions", "fp32",
            "--data", tmp_path / "data", "--out", tmp_path / "out", env={"COLUMNS": "250"})
    assert r.exit_code == 1 and "class folder 'cat' is not among the model's classes" in r.output, r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no export was started
