"""Device profiles and detection, against recorded /proc contents of real boards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fnx.devices import PROFILES, DeviceProfile, detect, detection_report, get_profile
from fnx.devices.detect import cpu_count
from fnx.errors import FnxError

FIXTURES = Path(__file__).parent / "fixtures" / "devices"
CUDA = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    "case, machine, expected",
    [
        ("rpi4", "aarch64", "rpi4"),
        ("rpi4", "armv7l", "rpi4"),  # 32-bit Raspberry Pi OS on a Pi 4
        ("rpi5", "aarch64", "rpi5"),
        ("jetson-agx-orin", "aarch64", "jetson-orin"),
        ("aarch64-server", "aarch64", "aarch64"),
        ("aarch64-server", "arm64", "aarch64"),
        ("x86", "x86_64", "x86"),
        ("x86", "AMD64", "x86"),
    ],
)
def test_detect_fixture(case, machine, expected):
    assert detect(FIXTURES / case, machine=machine, providers=["CPUExecutionProvider"]).name == expected


def test_cuda_provider_on_x86_picks_cuda():
    assert detect(FIXTURES / "x86", machine="x86_64", providers=CUDA).name == "cuda"
    # Jetson's ORT wheel also offers CUDA; the board itself wins.
    assert detect(FIXTURES / "jetson-agx-orin", machine="aarch64", providers=CUDA).name == "jetson-orin"


def test_report_says_what_was_read_and_why():
    r = detection_report(FIXTURES / "rpi4", machine="aarch64", providers=[])
    assert r["model"] == "Raspberry Pi 4 Model B Rev 1.4"  # trailing NUL stripped
    assert r["model_source"] == "/proc/device-tree/model"
    assert r["cpu_parts"] == ["0xd08"] and r["cpu_part_names"] == ["Cortex-A72"]
    assert (r["machine"], r["arch"], r["providers"]) == ("aarch64", "aarch64", [])
    assert r["profile"] == "rpi4" and "Raspberry Pi 4" in r["reason"] and r["fallback"] is False
    assert detection_report(FIXTURES / "x86", machine="x86_64", providers=[])["model"] is None


def _root(tmp_path: Path, cpuinfo: str) -> Path:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    return tmp_path


def test_cpuinfo_model_line_without_device_tree(tmp_path):
    text = (FIXTURES / "rpi5" / "proc" / "cpuinfo").read_text()  # e.g. in a container
    r = detection_report(_root(tmp_path, text), machine="aarch64", providers=[])
    assert (r["profile"], r["model_source"]) == ("rpi5", "/proc/cpuinfo Model")


def test_cpu_part_alone(tmp_path):
    text = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n" for i in range(4))
    r = detection_report(_root(tmp_path, text), machine="aarch64", providers=[])
    assert r["profile"] == "rpi4" and "Cortex-A72" in r["reason"]


def test_unknown_arch_falls_back_to_portable_profile(tmp_path):
    r = detection_report(tmp_path, machine="riscv64", providers=[])
    assert r["profile"] == "aarch64" and r["fallback"] is True and "--device" in r["reason"]


def test_missing_onnxruntime_means_no_providers(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    r = detection_report(FIXTURES / "x86", machine="x86_64")
    assert r["providers"] == [] and r["profile"] == "x86"


@pytest.mark.parametrize("name, expected", [("rpi4", "rpi4"), ("RPI5", "rpi5"), ("jetson_orin", "jetson-orin"),
                                            (" Jetson-Orin ", "jetson-orin"), ("CUDA", "cuda")])
def test_get_profile_aliases(name, expected):
    assert get_profile(name) is PROFILES[expected]


def test_get_profile_unknown_lists_valid_names():
    with pytest.raises(FnxError) as e:
        get_profile("rpi3")
    assert "'rpi3'" in str(e.value) and all(n in str(e.value) for n in PROFILES)


def test_profiles_are_complete_and_consistent():
    assert set(PROFILES) == {"rpi4", "rpi5", "jetson-orin", "aarch64", "x86", "cuda"}
    for name, p in PROFILES.items():
        assert isinstance(p, DeviceProfile) and p.name == name and p.description and p.notes
        assert p.arch in ("aarch64", "x86_64", "armv7l")
        assert p.precision in ("int8", "fp16", "fp32")
        assert (p.format, p.engine) in (("tflite", "litert"), ("onnx", "onnxruntime"))
        assert p.accelerator in ("cpu", "cuda", "tensorrt")
        assert p.threads is None or p.threads >= 1
        assert p.to_dict()["name"] == name and p.to_dict()["accelerator"] == p.accelerator
    assert (PROFILES["rpi4"].cores, PROFILES["rpi4"].threads, PROFILES["rpi4"].precision) == (4, 4, "int8")
    assert PROFILES["x86"].format == "tflite" and PROFILES["x86"].precision == "int8"
    for gpu in ("jetson-orin", "cuda"):
        assert PROFILES[gpu].precision == "fp16" and PROFILES[gpu].accelerator == "tensorrt"
    with pytest.raises(AttributeError):
        PROFILES["rpi4"].threads = 2  # frozen


def test_cpu_count_positive():
    assert cpu_count() >= 1


def test_import_pulls_in_no_ml_framework():
    code = (
        "import sys, fnx.devices\n"
        "fnx.devices.detect(machine='x86_64', providers=[])\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _row(fmt, precision, engine, p50, passed=True, hint="native"):
    return {"format": fmt, "precision": precision, "engine": engine, "engine_label": engine, "inference_precision": hint,
            "p50_ms": p50, "cosine": 0.999 if passed else 0.9, "parity_passed": passed, "top1": None, "file_mb": 1.0,
            "fastest_within_bounds": False}


def test_devices_shows_what_bench_all_measured_here(tmp_path, monkeypatch, cli):
    import json

    from fnx.devices.measured import measured_here, record_path, save_ranking

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    r = cli("devices", env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "Not measured on this machine yet" in r.output and measured_here() == []
    rows = [_row("onnx", "int8", "openvino", 0.9, passed=False), _row("openvino", "int8", "openvino", 1.0),
            _row("tflite", "int8", "litert", 1.5), _row("tflite", "fp32", "litert", 4.0),
            {"format": "onnx", "precision": "fp16", "engine": None, "error": "refused"}]
    rows[1]["fastest_within_bounds"] = True
    path = save_ranking("fasternet_t2", 224, 2, rows)
    assert path == record_path() and path.parent == tmp_path / "bench"
    (run,) = measured_here()
    assert run["fastest"]["format"] == "openvino" and len(run["rows"]) == 4  # the unmeasured row is not kept
    r = cli("devices", env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "openvino int8 on openvino" in r.output
    detected = detection_report()["profile"]
    if (PROFILES[detected].format, PROFILES[detected].engine) == ("tflite", "litert"):  # x86/ARM CPU profiles
        assert "1.50 ms (1.50x)" in r.output  # the profile's own choice beside the fastest, measured
    r = cli("devices", "--json")
    assert json.loads(r.stdout)["measured_here"][0]["model"] == "fasternet_t2"
    path.write_text("{broken")  # a damaged record is ignored with a warning saying what to do, never an error
    from fnx.devices.measured import UnusableRecordWarning

    with pytest.warns(UnusableRecordWarning, match="is not JSON: delete"):
        assert measured_here() == []
    r = cli("devices")
    assert r.exit_code == 0 and "is not JSON" in r.output


def test_device_auto_takes_the_engine_measured_fastest_here(t0_exports, tmp_path, monkeypatch, cli):
    """A record of `fnx bench all` for this model/format/precision steers --device auto to the fastest installed
    engine within bounds; an explicit device or engine, a failed parity, an absent engine or another model do not."""
    import json

    from fnx.devices.measured import save_ranking
    from fnx.runtime import load
    from fnx.runtime.engines import get_engine

    if not get_engine("openvino").available():
        pytest.skip("needs two engines for ONNX: onnxruntime and openvino")
    art = t0_exports["onnx"].artifact
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("fnx.devices.detect", lambda *a, **k: PROFILES["x86"])  # a CPU machine, also on a GPU box
    assert load(art).engine_name == "onnxruntime" and load(art).engine_choice is None  # nothing measured: fixed order
    save_ranking("fasternet_t0", 64, 1, [_row("onnx", "fp32", "mnn", 0.5),  # not an engine here: passed over
                                         _row("onnx", "fp32", "ncnn", 0.6),  # an engine that cannot run ONNX: too
                                         _row("onnx", "fp32", "onnxruntime", 0.9, passed=False),  # out of bounds
                                         _row("onnx", "fp32", "openvino", 1.0, hint="bf16"),  # lower precision
                                         _row("onnx", "fp32", "openvino", 1.2), _row("onnx", "fp32", "onnxruntime", 2.0),
                                         _row("tflite", "fp32", "litert", 0.1),
                                         _row("tflite", "fp32", "openvino", 0.05)])  # a record that cannot open it
    s = load(art, threads=1)
    assert s.engine_name == "openvino" and "fastest within parity bounds" in s.engine_choice
    assert "1.20 ms" in s.engine_choice and "fnx bench all" in s.engine_choice
    assert load(art).engine_name == "openvino"  # threads None: the most threads measured (1 here)
    assert load(art, device="cpu").engine_name == "onnxruntime" and load(art, device="cpu").engine_choice is None
    assert load(art, engine="onnxruntime").engine_name == "onnxruntime"
    tfl = load(t0_exports["tflite"].artifact)  # the record's engine cannot open TFLite: fnx's order, no claim
    assert tfl.engine_name == "litert" and tfl.engine_choice is None
    r = cli("run", art, "--json", *[str(p) for p in _images(tmp_path)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["engine"].startswith("openvino") and "measured here" in summary["engine_choice"]
    save_ranking("fasternet_t0", 64, 1, [_row("onnx", "fp32", "onnxruntime", 3.0), _row("onnx", "fp32", "openvino", 4.0)])
    assert load(art).engine_name == "onnxruntime" and load(art).engine_choice is None  # a new ranking replaces the old
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "other"))
    save_ranking("fasternet_t2", 64, 1, [_row("onnx", "fp32", "openvino", 1.0)])
    assert load(art).engine_name == "onnxruntime"  # another model's record says nothing about this one


@pytest.mark.parametrize("reduced_precision", ["none", "bf16"], indirect=True)
def test_reduced_precision_only_by_consent_where_the_cpu_computes_in_it(t0_exports, tmp_path, monkeypatch, cli,
                                                                         reduced_precision):
    """--inference-precision auto lets --device auto take a bf16 row measured faster within its own bound, where
    this CPU computes in bf16 (the machine switch shows or hides it); without consent the artifact's own numerics
    stand, and `fnx run` says what was chosen."""
    import json

    from fnx.devices.measured import save_ranking
    from fnx.runtime import load
    from fnx.runtime.engines import get_engine

    if not get_engine("openvino").available():
        pytest.skip("needs OpenVINO (the engine with inference precisions)")
    art = t0_exports["onnx"].artifact
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("fnx.devices.detect", lambda *a, **k: PROFILES["x86"])
    s = load(art, inference_precision="auto")
    assert s.engine_name == "onnxruntime" and "nothing measured here" in s.engine_choice  # consent, no record
    save_ranking("fasternet_t0", 64, 1, [_row("onnx", "fp32", "openvino", 1.0, hint="bf16"),
                                         _row("onnx", "fp32", "openvino", 1.5, hint="f16", passed=False),
                                         _row("onnx", "fp32", "onnxruntime", 2.0)])
    assert load(art).engine_name == "onnxruntime" and load(art).engine_choice is None  # no consent: own numerics
    s = load(art, inference_precision="auto")
    if "bf16" in reduced_precision:
        assert s.engine_name == "openvino" and s.engine.requested_precision == "bf16"
        assert "computing in bf16 (consented" in s.engine_choice and "1.00 ms" in s.engine_choice
    else:  # this CPU (as switched) does not compute in bf16: the row does not count
        assert s.engine_name == "onnxruntime" and "own precision" in s.engine_choice
    assert load(art, inference_precision="auto", device="cpu").engine_choice.startswith("--inference-precision auto "
                                                                                         "applies with --device auto")
    r = cli("run", art, "--json", "--inference-precision", "auto", *[str(p) for p in _images(tmp_path)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert ("bf16" in summary["engine_choice"]) == ("bf16" in reduced_precision)
    assert summary["inference_precision"] in ("f32", "bf16", "native")


def _images(folder):
    from PIL import Image

    paths = []
    for i in range(2):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(np.full((70, 90, 3), 40 * i + 20, dtype=np.uint8)).save(paths[-1])
    return paths


def test_cpu_name_is_the_model_name_not_the_model_number(tmp_path):
    from fnx.devices.detect import cpu_name

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("vendor_id\t: AuthenticAMD\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9B14\n")
    assert cpu_name(tmp_path) == "AMD EPYC 9B14"
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nCPU part\t: 0xd0b\nModel\t\t: Raspberry Pi 5 Model B\n")
    assert cpu_name(tmp_path) == "Raspberry Pi 5 Model B"


def test_bench_record_is_typed_versioned_and_read_strictly(tmp_path, monkeypatch, cli):
    """The record behind --device auto: written as schema 2, read strictly, version 1 (fnx 0.2) still read, a newer
    schema refused (never overwritten, and `fnx bench all` says so before exporting), a damaged one replaced."""
    import json

    from fnx.devices.bench_record import SCHEMA, BenchRecord, UnknownRecordSchema, read_record
    from fnx.devices.measured import UnusableRecordWarning, measured_here, record_path, save_ranking

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    path = save_ranking("fasternet_t0", 64, 1, [_row("onnx", "fp32", "onnxruntime", 2.0)])
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA == "fnx.bench-record/2" and BenchRecord.from_dict(data).to_dict() == data
    (row,) = data["runs"]["fasternet_t0@64@1"]["rows"]
    assert "fastest_within_bounds" not in row and row["engine"] == "onnxruntime"

    v1 = {"format": "fnx.bench-record/1", **{k: v for k, v in data.items() if k != "schema"}}
    del v1["runs"]["fasternet_t0@64@1"]["rows"][0]["device"]  # 0.2's oldest rows had no device
    path.write_text(json.dumps(v1))
    assert read_record(path).runs["fasternet_t0@64@1"].rows[0].device is None and len(measured_here()) == 1

    for damaged, says in [({**data, "runs": {"x": {"model": 1}}}, "damaged"), ({**data, "extra": 1}, "unknown field")]:
        path.write_text(json.dumps(damaged))
        with pytest.raises(FnxError, match=says):
            read_record(path)
        with pytest.warns(UnusableRecordWarning, match="replaced"):
            save_ranking("fasternet_t0", 64, 1, [_row("onnx", "fp32", "onnxruntime", 2.0)])
        assert read_record(path).schema == SCHEMA

    newer = {**data, "schema": "fnx.bench-record/9"}
    path.write_text(json.dumps(newer))
    with pytest.raises(UnknownRecordSchema, match="does not know"):
        save_ranking("fasternet_t0", 64, 1, [])
    assert json.loads(path.read_text()) == newer  # never overwritten
    r = cli("bench", "all", "t0", "--weights", "random", "--img-size", "64", "--precisions", "fp32", "--out",
            tmp_path / "out", env={"COLUMNS": "250"})
    assert r.exit_code == 1 and "does not know" in r.output and not (tmp_path / "out").exists()
    assert path == record_path()


def test_every_profile_names_registered_formats_and_engines_that_fit():
    """Profiles are data: their format, precision and engine come from the registries, and the engine runs that
    format on that accelerator (no side list of names to keep in step)."""
    from fnx.exporter.formats import FORMATS, get_format
    from fnx.formats import PRECISIONS
    from fnx.runtime.engines import get_engine

    for p in PROFILES.values():
        for fmt, precision, name in ((p.format, p.precision, p.engine), *p.consider):
            engine = get_engine(name)
            assert fmt in FORMATS and precision in PRECISIONS and get_format(fmt).makes(precision), p
            assert fmt in engine.formats and p.accelerator in engine.devices, p
    assert all(("ncnn", "fp16", "ncnn") in PROFILES[pi].consider for pi in ("rpi4", "rpi5"))  # the Pi's users' path
    assert ("executorch", "int8", "executorch") in PROFILES["rpi5"].consider  # Arm's Pi 5 model cards use it
    from fnx.devices.profiles import DeviceProfile

    with pytest.raises(FnxError, match="not one of"):
        DeviceProfile("x", "x", "x86_64", 2, "keras", "fp32", "litert")
    with pytest.raises(FnxError, match="'keras' / precision 'fp16' is not one of"):
        DeviceProfile("x", "x", "x86_64", 2, "tflite", "fp32", "litert", consider=(("keras", "fp16", "litert"),))


def test_devices_reads_at_80_columns(tmp_path, monkeypatch, cli):
    """Every fact of `fnx devices` survives an 80-column terminal: cells wrap, nothing is cut (rich crops a cell when
    unwrappable columns overflow, and cut "openvino (bf16)" to "open… (bf1…" before)."""
    import re

    from fnx.devices.measured import save_ranking

    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    best = {**_row("openvino", "fp32", "openvino", 1.234, hint="bf16"), "fastest_within_bounds": True}
    save_ranking("fasternet_t2", 224, 2, [best, _row("tflite", "int8", "litert", 2.5)])
    r = cli("devices", env={"COLUMNS": "80"})
    assert r.exit_code == 0 and "…" not in r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80
    words = set(re.findall(r"[\w.()-]+", r.output))
    assert {"fasternet-t2", "(bf16)", "openvino", "1.23", "0.99900"} <= words
    for p in PROFILES.values():  # every word of every description, whole
        assert set(re.findall(r"[\w.()-]+", p.description)) <= words, p.description
    assert "rpi4, rpi5: also consider ncnn fp16 on ncnn; ncnn fp32 on ncnn;" in " ".join(r.output.split())
