"""--format ethos-u: fnx's guarded int8 TFLite compiled by Vela for an Ethos-U55/U65, Vela's estimates in the manifest
and in fnx bench (apart from timings), the parity of the file it was compiled from, and no engine here (one line)."""

from __future__ import annotations

import json
import shutil

import pytest

from fnx.errors import FnxError

pytest.importorskip("ethosu.vela", reason="the ethos-u extra (Arm's Vela) is not installed")


@pytest.fixture(scope="module")
def vela_file(t0_tflite_int8, tmp_path_factory):
    """The shared int8 TFLite fixture compiled by Vela for an Ethos-U65-512, and its record."""
    from fnx.targets.ethos_u.vela import compile_tflite

    path = tmp_path_factory.mktemp("vela") / "t0_64_vela.tflite"
    shutil.copyfile(t0_tflite_int8.artifact, path)
    return path, compile_tflite(path, "ethos-u65-512")


def test_vela_compiles_the_int8_tflite_and_estimates_it(vela_file, t0_tflite_int8):
    from fnx.fileio import sha256_file

    path, comp = vela_file
    e = comp.estimate
    assert comp.target == "ethos-u65-512" and comp.compiler.startswith("ethos-u-vela ")
    assert comp.options["memory_mode"] == "Dedicated_Sram" and comp.source_format == "tflite"
    assert comp.source_sha256 == sha256_file(t0_tflite_int8.artifact) != sha256_file(path)
    assert e.npu_share > 0.9 and e.ops_on_npu > 100  # T0 at 64 px: every op on the NPU with Vela 5.2
    assert 0 < e.latency_ms < 1000 and e.cycles > 0 and e.clock_hz > 0
    assert e.sram_bytes > 0 and e.off_chip_bytes > 1e6 and e.off_chip_memory == "DRAM"  # the U65's weights: 2.5 MB


def test_a_vela_file_is_ethos_u_and_a_plain_tflite_stays_tflite(vela_file, t0_tflite_int8, recwarn):
    from fnx.formats import FormatNameWarning, detect_format

    assert detect_format(vela_file[0]).name == "ethos-u"
    assert detect_format(t0_tflite_int8.artifact).name == "tflite"
    assert not [w for w in recwarn if issubclass(w.category, FormatNameWarning)]  # both are rightly named .tflite


def test_fnx_runs_no_vela_file_and_says_where_it_runs(vela_file, cli):
    from fnx.runtime import Session

    with pytest.raises(FnxError, match=r"no engine for ethos-u artifacts: they run on an Arm Ethos-U NPU, through "
                                       r"TFLite Micro and the Ethos-U driver"):
        Session(vela_file[0])
    r = cli("run", vela_file[0], vela_file[0])
    assert r.exit_code == 1 and "docs/guides/ethos-u.md" in r.stderr and "Traceback" not in r.output


class FixtureQuantizer:
    """A Quantizer (fnx.calibration.quantizer) that writes the shared int8 TFLite fixture instead of calibrating: the
    guard, the parity check, Vela and the manifest then run for real on it. The real PT2E path of --format ethos-u runs
    in docs/guides/ethos-u.md (test_docs), so this file does not pay for a second calibration."""

    scheme, description, io, notes = "minmax (fixture)", "the t0_tflite_int8 fixture", "int8", ()

    def __init__(self, source):
        self.source = source

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def quantize(self, out, keep_float) -> None:
        shutil.copyfile(self.source, out)

    def layer_errors(self, out, probe_nhwc):
        return []

    def float_ops(self, out):
        return {}


def test_bench_all_exports_ethos_u_with_its_estimates_apart(t0_ckpt, t0_tflite_int8, tmp_path, cli, monkeypatch):
    """fnx bench all's export (fnx export's flow): guarded and verified as a TFLite, compiled for the default
    ethos-u55-256; the manifest's estimates and source parity; rows marked estimates, never timed nor ranked nor kept
    as this machine's measurements; fnx bench shows them apart."""
    from fnx.devices.measured import measured_here
    from fnx.exporter.formats import get_format
    from fnx.fileio import sha256_file
    from fnx.formats import detect_format
    from fnx.manifest import read_manifest
    from fnx.ranking import sweep

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sweep, "installed_formats", lambda: ["ethos-u"])
    monkeypatch.setattr(get_format("ethos-u"), "int8_quantizer", lambda *a: FixtureQuantizer(t0_tflite_int8.artifact))
    r = cli("bench", "all", "t0", "--weights", t0_ckpt, "--img-size", "64", "--precisions", "int8", "--calib-data",
            "synthetic", "--calib-size", "32", "--min-cosine", "0.95", "--out", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["estimate"] is True and row["target"] == "ethos-u55-256" and "p50_ms" not in row
    assert not measured_here()  # nothing was timed, so nothing is kept as measured here
    art = tmp_path / "out" / row["artifact"]
    m = read_manifest(art)
    c, e = m.compilation, m.compilation.estimate
    assert art.name == "fasternet_t0_64_ethos-u_int8.tflite" and detect_format(art).name == "ethos-u"
    assert (m.artifact.format, m.artifact.precision) == ("ethos-u", "int8") and "ethos-u-vela" in m.converter
    assert c.source_sha256 == sha256_file(t0_tflite_int8.artifact) and c.options["memory_mode"] == "Shared_Sram"
    assert "compiled from" in c.parity and "not run here" in c.parity
    assert m.parity.passed and m.calibration.report.passed and m.calibration.report.cosine_min >= 0.95
    assert m.inputs[0].dtype == "int8" and m.inputs[0].quantization is not None  # the TFLite's int8 I/O, kept by Vela
    assert e.npu_share > 0.9 and e.sram_bytes > 0 and e.off_chip_bytes > 0 and e.off_chip_memory == "Off-chip Flash"
    assert row["estimated_ms"] == pytest.approx(e.latency_ms) and row["source_cosine"] >= 0.95
    shown = cli("bench", art, env={"COLUMNS": "120"})
    assert shown.exit_code == 0 and "Compiler estimates (not measured" in shown.stdout, shown.output
    assert "fnx bench (batch" not in shown.stdout  # no timing table: nothing ran


@pytest.mark.full_size
@pytest.mark.parametrize("model", ["t0", "t2"])
def test_full_size_export_runs_every_op_on_the_npu_and_estimates_it(model, tmp_path, cli):
    """fnx export at 224 px for the default Ethos-U55-256, lively random weights (O(1) logits, as a trained model's;
    from fnx's plain `--weights random`, T0's int8 TFLite stays below 0.99 even with 12 layers in float): the guarded
    int8 TFLite holds fnx's default bound (AMD kind: T0 0.9960 from 32 calibration images; T2 0.9968 from 64 but
    0.9866 from 32), Vela puts every op on the NPU, its estimates are in the manifest; T2's ~13 MB of int8 weights
    fit off-chip flash, so T2 compiles too. make test-targets runs this."""
    from fnx.dev import write_lively_checkpoint
    from fnx.formats import detect_format
    from fnx.manifest import read_manifest

    out, ckpt = tmp_path / "out", write_lively_checkpoint(f"fasternet_{model}", tmp_path / "w.pth", num_classes=10)
    r = cli("export", model, "--weights", ckpt, "--format", "ethos-u", "--precision", "int8",
            "--calib-data", "synthetic", "--calib-size", "64", "--out", out)  # T2 from 32 images: 0.987, below
    assert r.exit_code == 0, r.output
    art = out / f"fasternet_{model}_224_ethos-u_int8.tflite"
    assert sorted(p.name for p in out.iterdir()) == sorted([art.name, art.with_suffix(".json").name])
    m = read_manifest(art)
    c, e = m.compilation, m.compilation.estimate
    assert detect_format(art).name == "ethos-u" and c.target == "ethos-u55-256" and m.model.img_size == 224
    assert m.calibration.guard.min_cosine == 0.99 and m.calibration.report.passed and m.parity.passed
    assert e.npu_share == 1.0 and e.ops_on_cpu == 0 and e.latency_ms > 0 and e.sram_bytes > 0
    assert e.off_chip_bytes > (1e6 if model == "t0" else 10e6) and e.off_chip_memory == "Off-chip Flash"


@pytest.mark.parametrize("args, said", [
    (("--precision", "int8", "--target", "ethos-u99-1"), "unknown --target 'ethos-u99-1'"),
    (("--precision", "int8", "--target", "rpi4"), "for ethos-u, --target takes ethos-u55-256"),
    (("--precision", "fp32"), "ethos-u has no fp32 export in fnx"),
])
def test_a_wrong_ethos_u_export_is_refused_in_one_line_before_the_build(args, said, tmp_path, cli, monkeypatch):
    import fnx.exporter.pipeline as pipeline

    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model before refusing"))
    r = cli("export", "t0", "--weights", "random", "--format", "ethos-u", *args, "--calib-data", "synthetic",
            "--out", tmp_path / "out", env={"COLUMNS": "300"})
    assert r.exit_code == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists()


def test_an_ethos_u_target_without_the_ethos_u_format_is_refused(tmp_path, cli):
    r = cli("export", "t0", "--weights", "random", "--format", "onnx", "--precision", "int8", "--calib-data",
            "synthetic", "--target", "ethos-u65-512", "--out", tmp_path / "out", env={"COLUMNS": "300"})
    assert r.exit_code == 1 and "add --format ethos-u, or drop --target" in r.stderr, r.output
    assert not (tmp_path / "out").exists()


def test_without_vela_the_export_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    from fnx.exporter import ExportOptions, Int8Options
    from fnx.exporter.formats import get_format

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ethosu" else real(name, *a))
    with pytest.raises(FnxError, match=r"needs Arm's Vela compiler \(ethos-u-vela\): pip install .*ethos-u"):
        get_format("ethos-u").check(ExportOptions(formats=("ethos-u",), precision="int8", int8=Int8Options("synthetic")))


def test_a_vela_failure_leaves_the_file_untouched_and_says_why(t0_tflite_int8, tmp_path):
    from fnx.fileio import sha256_file
    from fnx.targets.ethos_u.vela import compile_tflite

    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(t0_tflite_int8.artifact.read_bytes()[:4096])
    before = sha256_file(bad)
    with pytest.raises(FnxError, match=r"Vela could not compile truncated.tflite for ethos-u55-256: "):
        compile_tflite(bad, "ethos-u55-256")
    assert sha256_file(bad) == before


def test_each_format_sees_only_the_targets_it_knows():
    """--format all with an Ethos-U configuration: ethos-u compiles for it, the ONNX int8 form is chosen for this
    machine; with a device profile, the reverse."""
    from fnx.exporter import ExportOptions, Int8Options
    from fnx.formats import get_file_format

    onnx, ethos = get_file_format("onnx"), get_file_format("ethos-u")
    for target, seen in (("ethos-u65-512", {"onnx": None, "ethos-u": "ethos-u65-512"}),
                         ("rpi4", {"onnx": "rpi4", "ethos-u": None})):
        opts = ExportOptions(formats=("onnx", "ethos-u"), precision="int8", int8=Int8Options("synthetic", target=target))
        assert {f.name: opts.seen_by(f, "int8").int8.target for f in (onnx, ethos)} == seen
