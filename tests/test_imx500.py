"""--format imx500: fnx's model quantized by Sony's MCT for the IMX500 and converted by imxconv-pt in its own
environment (fnx.toolchains), judged on MCT's quantized model against PyTorch under the int8 guard; the converter's
memory report in the manifest, a model that does not fit refused with its figures (the converter's own refusal:
tests/test_imx500_fit.py); no engine here (one line); a wrong option, a missing Java, an offline machine without the
toolchain and a failed conversion each say so in one line and leave nothing (offline: tests/test_toolchains.py).

The tests marked `toolchain` run the real MCT and converter: `make test-targets` creates the environment first (once
per machine, FNX_TOOLCHAINS_DIR) and runs them; the others need no toolchain and run in `make test`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fnx.errors import FnxError

REPORTS = Path(__file__).parent / "fixtures" / "imx500"  # memory reports imxconv-pt 3.19.2 wrote here (2026-12-05)


def export_args(out: Path, *extra: str) -> list[str]:
    return ["export", "t0", "--weights", "random", "--format", "imx500", "--precision", "int8", "--calib-data",
            "synthetic", *extra, "--out", str(out)]


@pytest.fixture(scope="module")
def imx500_t0(tmp_path_factory):
    """The demo's trained FasterNet-T0 (digits, 64 px) exported to the IMX500 by `fnx export` in a subprocess, as a
    user runs it: (artifact, its manifest as JSON). Trained weights: random ones at 64 px lose more to int8 than the
    guard's default bound allows on other int8 targets."""
    import fnx

    weights = Path(fnx.__file__).parent / "demo" / "fasternet_t0_digits.safetensors"
    out = tmp_path_factory.mktemp("imx500")
    r = subprocess.run([sys.executable, "-m", "fnx", "export", "t0", "--weights", str(weights), "--format", "imx500",
                        "--precision", "int8", "--calib-data", "synthetic", "--calib-size", "16", "--out", str(out)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    art = out / "fasternet_t0_64_imx500_int8.zip"
    return art, json.loads(art.with_suffix(".json").read_text())


@pytest.mark.toolchain
def test_t0_is_quantized_by_mct_converted_and_its_memory_report_is_in_the_manifest(imx500_t0):
    art, m = imx500_t0
    from fnx.formats import detect_format

    assert detect_format(art).name == "imx500"
    with zipfile.ZipFile(art) as z:  # the converter's packerOut.zip, as imx500-package takes it on the Pi
        assert {"dnnParams.xml", "l2staticData.bin", "manifest.json"} <= set(z.namelist())
    assert sorted(p.name for p in art.parent.iterdir()) == sorted([art.name, art.with_suffix(".json").name])
    assert (m["artifact"]["format"], m["artifact"]["precision"]) == ("imx500", "int8")
    c = m["compilation"]
    assert c["compiler"] == "imx500-converter 3.19.2" and c["target"] == "imx500" and c["source_format"] == "onnx"
    assert c["options"]["quantizer"] == "model-compression-toolkit 2.5.1" and "MCT's quantized model" in c["parity"]
    assert c["options"]["activation_error_method"] == "MSE"  # --calib-method mse, the IMX500's default in fnx
    # the guard (held-out images) and the parity check (16 verification images) judged MCT's quantized ONNX against
    # PyTorch fp32 at fnx's default int8 bound; measured 0.9995 / 0.9972 (docs/guides/imx500.md)
    cal, parity = m["calibration"], m["parity"]
    assert cal["guard"]["min_cosine"] == 0.99 and cal["report"]["passed"] and cal["report"]["cosine_min"] >= 0.99
    (logits,) = parity["outputs"]
    assert parity["passed"] and logits["cosine"] >= 0.99 and logits["top1_agreement"] >= 0.9 and logits["n"] == 16
    # the converter's memory report: T0's ~3.0 MB of int8 weights and its 64 px activations in the 8 MiB sensor
    mem = c["memory"]
    assert mem["fits"] and mem["available_bytes"] == 8388480 and 2.5e6 < mem["model_bytes"] < 3.5e6
    assert 0 < mem["runtime_bytes"] < 1e6 and mem["model_bytes"] + mem["runtime_bytes"] <= mem["used_bytes"]


@pytest.mark.toolchain
def test_fnx_runs_no_imx500_file_and_says_where_it_runs(imx500_t0, cli):
    art = imx500_t0[0]
    for args in (("run", art, art), ("verify", art, "--layers")):
        r = cli(*args, env={"COLUMNS": "400"})
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert "no engine for imx500 artifacts: they run on the Raspberry Pi AI Camera's IMX500" in r.stderr
        assert "compilation.memory" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("variant, weights", [("t2", "12.11"), ("l", "85.95")])
def test_a_variant_whose_weights_alone_exceed_the_sensor_is_refused_before_anything(variant, weights, tmp_path, cli,
                                                                                    monkeypatch):
    """FasterNet-T2 and larger: their int8 conv weights alone exceed the sensor's 8 MiB (the converter's report on T2
    said 14.54 MiB in all), so the export is refused in one line before the model is built, the toolchain installed
    or MCT run (which took about 2 minutes before the converter said so), naming the variants that may fit."""
    import fnx.exporter.pipeline as pipeline

    monkeypatch.setenv("FNX_TOOLCHAINS_DIR", str(tmp_path / "toolchains"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model before refusing"))
    argv = export_args(tmp_path / "out")
    argv[argv.index("t0")] = variant
    r = cli(*argv, env={"COLUMNS": "400"})
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert (f"fasternet-{variant} does not fit the IMX500: its int8 conv weights alone take {weights} MiB of the "
            "sensor's 8.00 MiB; export t0, t1 (the converter's memory report then decides)") in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "toolchains").exists()


def test_the_sensor_memory_is_the_converters_and_the_weights_check_is_below_its_count():
    """The capacity fnx checks against is the converter's own figure, and the weights fnx counts for T2 are below what
    the converter counted for it (a lower bound: the check never refuses what the converter would take)."""
    from fnx.models import get_variant
    from fnx.models.costs import backbone_weights
    from fnx.targets.imx500 import SENSOR_MEMORY_BYTES
    from fnx.targets.imx500.build import read_memory_report

    t0 = read_memory_report(REPORTS / "imx500_t0_224_MemoryReport.json")
    t2 = read_memory_report(REPORTS / "imx500_t2_224_MemoryReport.json")
    assert SENSOR_MEMORY_BYTES == t0.available_bytes == t2.available_bytes
    assert backbone_weights(get_variant("t2")) < t2.model_bytes and backbone_weights(get_variant("t0")) < t0.model_bytes


def test_several_formats_leave_out_imx500_for_a_variant_it_cannot_hold(monkeypatch):
    """--format all / bench all with T2: imx500 is left out with its reason and the others export."""
    from fnx.exporter import ExportOptions
    from fnx.exporter.formats import get_format
    from fnx.exporter.pipeline import made_pairs
    from fnx.models import get_variant
    from fnx.progress import Steps

    monkeypatch.setattr(type(get_format("imx500")), "refuse", lambda self, opts: None)  # Java and toolchain here
    said = []
    steps = Steps(quiet=True)
    steps.info = said.append
    opts = ExportOptions(formats=("onnx", "imx500"), precision="int8")
    assert [f.name for _, f in made_pairs(opts, ("int8",), steps, get_variant("t2"))] == ["onnx"]
    assert len(said) == 1 and "imx500 int8 (fasternet-t2 does not fit the IMX500" in said[0]
    assert [f.name for _, f in made_pairs(opts, ("int8",), steps, get_variant("t0"))] == ["onnx", "imx500"]


@pytest.mark.parametrize("args, said", [
    (("--target", "rpi4"), "for imx500, --target takes imx500"),
    (("--target", "rk3588"), "--target rk3588 is a device rknn files are compiled for"),
    (("--precision", "fp32"), "imx500 has no fp32 export in fnx"),
    (("--calib-method", "percentile"), "--calib-method percentile has no counterpart in imx500's int8 quantizer: use mse or minmax or entropy"),
    (("--batch", "2"), "--format imx500 builds a batch-1 classifier"),
])
def test_a_wrong_imx500_export_is_refused_in_one_line_before_anything(args, said, tmp_path, cli, monkeypatch):
    import fnx.exporter.pipeline as pipeline

    monkeypatch.setenv("FNX_TOOLCHAINS_DIR", str(tmp_path / "toolchains"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model before refusing"))
    argv = export_args(tmp_path / "out", *args)
    if "--precision" in args:
        del argv[argv.index("--precision"):argv.index("--precision") + 2]
    r = cli(*argv, env={"COLUMNS": "400"})
    assert r.exit_code == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "toolchains").exists()  # nothing installed either


@pytest.mark.parametrize("java, said", [
    (None, "--format imx500 needs Java >= 17 for Sony's converter (imxconv-pt), and no java is on PATH"),
    ('openjdk version "11.0.22" 2024-01-16', "the java on PATH is Java 11"),
    ('java version "1.8.0_402"', "the java on PATH is Java 8"),
])
def test_a_missing_or_old_java_is_said_in_one_line_before_anything(java, said, tmp_path, cli, monkeypatch):
    """The converter's back end runs on the `java` on PATH: none, or one older than 17, is refused before the model is
    built or the toolchain installed, with what to install."""
    import fnx.exporter.pipeline as pipeline

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if java is not None:  # a java that says its version as the JDK's launcher does (on stderr)
        (bin_dir / "java").write_text(f"#!/bin/sh\necho '{java}' >&2\n")
        (bin_dir / "java").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FNX_TOOLCHAINS_DIR", str(tmp_path / "toolchains"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model without Java"))
    r = cli(*export_args(tmp_path / "out"), env={"COLUMNS": "400"})
    assert r.exit_code == 1 and said in r.stderr and "apt-get install openjdk-17-jre-headless" in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "toolchains").exists()


def test_the_memory_reports_of_t0_and_t2_at_224_read_as_the_converter_wrote_them():
    from fnx.targets.imx500.build import describe, read_memory_report

    t0 = read_memory_report(REPORTS / "imx500_t0_224_MemoryReport.json")
    assert t0.fits and (t0.used_bytes, t0.available_bytes) == (3857632, 8388480)
    assert (t0.model_bytes, t0.runtime_bytes) == (2999520, 857088) and round(100 * t0.utilization) == 46
    t2 = read_memory_report(REPORTS / "imx500_t2_224_MemoryReport.json")
    assert not t2.fits and (t2.used_bytes, t2.model_bytes, t2.runtime_bytes) == (15243872, 13884000, 1358848)
    # the converter's own line said "Not enough memory, available: 8.00MB , required: 14.54MB" (MiB)
    assert describe(t2) == ("it takes 14.54 MiB of the sensor's 8.00 MiB (182%): weights 13.24 MiB, runtime 1.30 MiB")


@pytest.mark.parametrize("change", [
    lambda r: r.pop("Fit In Chip"),
    lambda r: r.update({"Memory Usage": "3.68MB"}),  # a report written without --report-size-unit B
    lambda r: r.update({"Fit In Chip": "yes"}),
])
def test_a_memory_report_fnx_does_not_know_is_said_in_one_line(change, tmp_path):
    from fnx.targets.imx500.build import read_memory_report

    report = json.loads((REPORTS / "imx500_t0_224_MemoryReport.json").read_text())
    change(report["Memory Report"])
    (tmp_path / "m_MemoryReport.json").write_text(json.dumps(report))
    with pytest.raises(FnxError, match="m_MemoryReport.json is not an imx500-converter memory report fnx knows"):
        read_memory_report(tmp_path / "m_MemoryReport.json")


def fake_toolchain(monkeypatch, report: str | None, returncode: int, log: str):
    """Stand in for the toolchain run: it writes the converter's outputs (a packerOut.zip only when it converted) as
    imxconv-pt does, and the job's result."""
    import fnx.exporter.pipeline as pipeline
    import fnx.targets.imx500.build as build
    import fnx.targets.imx500.export as export
    import fnx.toolchains.env as env

    def toolchain(tc, args, cwd=None, timeout=None):
        job = json.loads(Path(args[1]).read_text())
        out = Path(job["out_dir"])
        out.mkdir()
        if report is not None:
            shutil.copyfile(REPORTS / report, out / "model_mct_MemoryReport.json")
        if returncode == 0:
            with zipfile.ZipFile(out / "packerOut.zip", "w") as z:
                for name in ("dnnParams.xml", "l2staticData.bin"):
                    z.writestr(name, "")
        Path(job["onnx"]).write_bytes(b"onnx")
        Path(job["log"]).write_text(log)
        Path(job["result"]).write_text(json.dumps({"mct": "2.5.1", "converter": "3.19.2", "returncode": returncode,
                                                   "seconds": {}}))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(pipeline, "make_toolchains", lambda formats, steps: None)
    monkeypatch.setattr(export, "check_java", lambda: None)
    monkeypatch.setattr(build, "create", lambda tc, on_line: None)
    monkeypatch.setattr(env, "run", toolchain)


@pytest.mark.parametrize("report, returncode, log, said", [
    ("imx500_t2_224_MemoryReport.json", 1,
     "2026-12-05 12:26:57.241 ERROR: CODE: [ISM] ConvFe error (ISM) on 'q': Not enough memory\n",
     r"the model does not fit the IMX500: it takes 14\.54 MiB of the sensor's 8\.00 MiB \(182%\): weights 13\.24 MiB, "
     r"runtime 1\.30 MiB, by imx500-converter's memory report; export a smaller variant or input size, or fewer "
     r"classes"),
    (None, 1, "2026-12-05 12:21:40,248 ERROR : Unsupported op Foo [/x/converter.py:88]\n",
     r"imx500-converter \(imxconv-pt\) could not convert the model: Unsupported op Foo$"),
])
def test_a_conversion_refused_by_the_converter_says_why_and_leaves_nothing(report, returncode, log, said, t0_ckpt,
                                                                            tmp_path, monkeypatch):
    """The converter refuses the model (it does not fit: its memory report's figures; another error: its own last
    line): the export says so, and neither the artifact, its manifest nor any temporary file is left."""
    from fnx.exporter import ExportOptions, Int8Options, export_model

    fake_toolchain(monkeypatch, report, returncode, log)
    out = tmp_path / "out"
    with pytest.raises(FnxError, match=said):
        export_model("t0", ExportOptions(formats=("imx500",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                         out_dir=out, int8=Int8Options("synthetic", size=8)))
    assert list(out.iterdir()) == []


def fake_mct(monkeypatch, noise: dict[str, float]) -> list[str]:
    """Stand in for the toolchain run (convert_imx500): MCT's quantized model is PyTorch's outputs plus noise of the
    given size per MCT error method (relative to the outputs' spread), and the converter writes a packerOut.zip that
    fits. Returns the methods it was called with."""
    import numpy as np
    import torch

    import fnx.exporter.pipeline as pipeline
    import fnx.targets.imx500.build as build
    import fnx.targets.imx500.export as export
    from fnx.compilation import Compilation, NpuMemory
    from fnx.targets.imx500 import PACKED
    from fnx.toolchains.simulated import keep

    tried = []

    def convert(model, out, calib_nchw, batches, error_method, on_line=None):
        tried.append(error_method)
        with torch.no_grad():
            ref = model(torch.from_numpy(np.concatenate(batches))).numpy()
        rng = np.random.default_rng(len(tried))
        stacked = [ref + noise[error_method] * ref.std() * rng.standard_normal(ref.shape).astype(np.float32)]
        with zipfile.ZipFile(out, "w") as z:
            for name in PACKED:
                z.writestr(name, error_method)
        record = Compilation("imx500-converter 3.19.2", "imx500", "onnx", "0" * 64, 1, "a stand-in for MCT",
                             memory=NpuMemory(4 << 20, 8388480, 3 << 20, 1 << 20, True))
        return keep(out, record, batches, stacked)

    monkeypatch.setattr(pipeline, "make_toolchains", lambda formats, steps: None)
    monkeypatch.setattr(export, "check_java", lambda: None)
    monkeypatch.setattr(build, "convert_imx500", convert)
    return tried


def test_a_default_method_that_misses_the_bound_is_followed_by_the_next_and_the_manifest_says_so(t0_ckpt, tmp_path,
                                                                                                  monkeypatch):
    """The IMX500 cannot return layers to float: with --calib-method unset, where MCT's MSE misses the bound the
    export tries minmax (NOCLIPPING) and keeps it as it holds; the manifest records minmax and notes what missed."""
    from fnx.exporter import ExportOptions, Int8Options, export_model

    tried = fake_mct(monkeypatch, {"MSE": 0.5, "NOCLIPPING": 0.0, "KL": 0.0})
    (res,) = export_model("t0", ExportOptions(formats=("imx500",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                              out_dir=tmp_path, int8=Int8Options("synthetic", size=8)))
    cal = res.manifest.calibration
    assert tried == ["MSE", "NOCLIPPING"] and cal.method.endswith("NOCLIPPING (--calib-method minmax)")
    assert cal.report.passed and cal.report.cosine_min > 0.999
    (note,) = [n for n in cal.notes if n.startswith("--calib-method minmax")]
    assert "missed the bound with mse (logits: cosine 0." in note and "is below 0.99)" in note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fasternet_t0_64_imx500_int8.json",
                                                         "fasternet_t0_64_imx500_int8.zip"]


@pytest.mark.parametrize("asked, tried", [(None, ["MSE", "NOCLIPPING", "KL"]), ("minmax", ["NOCLIPPING"])])
def test_every_method_missing_the_bound_is_refused_with_each_figure_and_leaves_nothing(asked, tried, t0_ckpt, tmp_path,
                                                                                       monkeypatch):
    """Every method tried misses the bound: one error gives each method's figure; a method asked is the only one
    tried, and refused as any guard failure is."""
    from fnx.exporter import ExportOptions, Int8Options, export_model

    called = fake_mct(monkeypatch, {"MSE": 0.5, "NOCLIPPING": 0.5, "KL": 0.5})
    said = (r"int8 accuracy guard failed with every --calib-method imx500 takes: mse \(logits: cosine 0\.\d+ is below "
            r"0\.99\), minmax \(.*\), entropy \(.*\)\. Use more") if asked is None else \
        r"int8 accuracy guard failed after 0 layers were returned to float: logits: cosine"
    with pytest.raises(FnxError, match=said):
        export_model("t0", ExportOptions(formats=("imx500",), precision="int8", weights=str(t0_ckpt), img_size=64,
                                         out_dir=tmp_path, int8=Int8Options("synthetic", size=8, method=asked)))
    assert called == tried and list(tmp_path.iterdir()) == []


def test_a_packer_output_is_told_from_another_zip(tmp_path):
    from fnx.errors import FnxError
    from fnx.formats import detect_format

    packed, other = tmp_path / "packerOut.zip", tmp_path / "photos.zip"
    with zipfile.ZipFile(packed, "w") as z:
        for name in ("sdpsA.bin", "dnnParams.xml", "l2staticData.bin"):
            z.writestr(name, "")
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("a.jpg", "")
    assert detect_format(packed).name == "imx500"
    with pytest.raises(FnxError, match="photos.zip is not a Sony IMX500 converter output"):
        detect_format(other)


def test_the_estimates_table_shows_the_memory_the_model_takes_on_the_sensor():
    """`fnx export` and `fnx bench` list an IMX500 file among the compiled ones: its SRAM column is the memory report's
    use of the sensor's memory (T0 224: 4,361,504 bytes), never a timing."""
    from rich.console import Console

    from fnx.cli.tables import estimates_table
    from fnx.compilation import Compilation, NpuMemory

    c = Compilation("imx500-converter 3.19.2", "imx500", "onnx", "0" * 64, 1, "MCT's quantized model",
                    memory=NpuMemory(4361504, 8388480, 3001600, 1358880, True))
    row = {"artifact": "fasternet_t0_224_imx500_int8.zip", **c.row(), "source_cosine": 0.99422}
    assert row["on_chip_kib"] == 4361504 / 1024 and row["estimated_ms"] is None and row["sram_kib"] is None
    console = Console(width=120, record=True)
    console.print(estimates_table([row]))
    (line,) = [s for s in console.export_text().splitlines() if "fasternet_t0_224_imx500_int8.zip" in s]
    assert line.split()[1:] == ["-", "-", "-", "4259", "-", "0.99422"]
