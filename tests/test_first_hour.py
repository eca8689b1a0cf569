"""What a newcomer met in their first hour (issue #34), each reproduced as they did it, checked against what they should
now see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


# 9: `pip install 'fnx[export]'` installed the package index's unrelated `fnx` (0.0.2) in a fresh environment.
def test_install_hints_name_fnx_s_own_distribution():
    from fnx.install import DISTRIBUTION, pip_install

    assert DISTRIBUTION != "fnx" and f'name = "{DISTRIBUTION}"' in (ROOT / "pyproject.toml").read_text()
    # this test runs from a checkout: the hint installs the extra from it, not from the index
    assert pip_install("export", "openvino") == f"pip install -e '{ROOT}[export,openvino]'"
    hinted = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "fnx").rglob("*.py")
              for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"pip install '?fnx\[", line)]
    assert not hinted, f"install hints that name the index's fnx: {hinted}"


def test_install_hint_from_a_wheel_names_the_distribution(tmp_path):
    """An fnx outside a checkout (a wheel in site-packages) says `pip install 'fnx-edge[...]'`."""
    import shutil

    shutil.copytree(ROOT / "fnx", tmp_path / "fnx", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-c", "from fnx.install import pip_install; print(pip_install('export'))"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "pip install 'fnx-edge[export]'", r.stderr


NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def named_digits(digits, tmp_path_factory):
    """The demo's digits model with word labels (so a label is never mistaken for a class index), and its test scans
    in class folders named by those labels."""
    import json
    import shutil

    from fnx.demo.train_demo import DEMO_CHECKPOINT

    root = tmp_path_factory.mktemp("named-digits")
    ckpt = root / "digits.safetensors"
    shutil.copy2(DEMO_CHECKPOINT, ckpt)
    sidecar = json.loads(DEMO_CHECKPOINT.with_suffix(".json").read_text())
    sidecar["labels"] = NAMES
    ckpt.with_suffix(".json").write_text(json.dumps(sidecar))
    test = root / "test"
    for d in sorted((digits / "test").iterdir()):
        shutil.copytree(d, test / NAMES[int(d.name)])
    return ckpt, test


@pytest.fixture(scope="module")
def named_onnx(named_digits, tmp_path_factory):
    from fnx.exporter import ExportOptions, export_model

    ckpt, _ = named_digits
    (res,) = export_model("t0", ExportOptions(formats=("onnx",), weights=str(ckpt), out_dir=tmp_path_factory.mktemp("x")))
    return res.artifact


# 1: the 64-px digits model exported with --img-size 128 passed parity, exited 0, and scored 29% instead of 99%.
def test_export_at_another_size_than_trained_says_so_and_measures_it(named_digits, cli, tmp_path):
    ckpt, test = named_digits
    r = cli("export", "t0", "--weights", ckpt, "--img-size", "128", "--format", "onnx", "--out", tmp_path / "a",
            "--data", test, env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    said = re.search(r"warning: the weights were trained at 64 px.*?top-1 ([\d.]+)% at 64 px, ([\d.]+)% at 128 px",
                     r.output)
    assert said, r.output
    at_64, at_128 = map(float, said.groups())
    assert at_64 > 95 and at_128 < at_64 - 20  # what the user measured afterwards with fnx eval: 99.44 vs 29.17
    manifest = json.loads(next((tmp_path / "a").glob("*.json")).read_text())
    assert manifest["model"]["img_size"] == 128 and manifest["model"]["trained_img_size"] == 64
    r = cli("export", "t0", "--weights", ckpt, "--img-size", "128", "--format", "onnx", "--out", tmp_path / "b",
            env={"COLUMNS": "400"})  # without --data: said, and how to measure it
    assert r.exit_code == 0 and "trained at 64 px" in r.output and "Pass --data with labelled class folders" in r.output
    r = cli("export", "t0", "--weights", ckpt, "--format", "onnx", "--out", tmp_path / "c", env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "trained at" not in r.output  # its own size: nothing to say


# 2: `fnx run` on an ONNX file whose .json was removed printed class indices, and `fnx eval` "unknown precision".
def test_an_onnx_without_its_json_uses_the_embedded_manifest(named_onnx, named_digits, cli, tmp_path):
    import shutil

    alone = tmp_path / "alone.onnx"
    shutil.copy2(named_onnx, alone)
    seven = sorted((named_digits[1] / "seven").iterdir())[0]
    r = cli("run", alone, seven, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["predictions"][0]["top"][0]["label"] == "seven"
    r = cli("eval", alone, "--data", named_digits[1], "--json")
    assert r.exit_code == 0, r.output
    assert "unknown precision" not in r.output and "fp32" in r.output

    from fnx.runtime import load

    assert load(alone).manifest_source == "embedded" and load(named_onnx).manifest_source == "beside"
    # on a device with ONNX Runtime and no `onnx` package, the engine reads it
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from fnx.runtime import load\n"
            f"s = load({str(alone)!r}, device='cpu')\n"
            "print(s.manifest_source, s.labels[7])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["embedded", "seven"], r.stderr[-2000:]


def test_an_artifact_with_no_manifest_at_all_says_what_is_lost(t0_exports, cli, tmp_path, rng):
    import shutil

    from PIL import Image

    bare = tmp_path / "bare.tflite"
    shutil.copy2(t0_exports["tflite"].artifact, bare)
    img = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(img)
    r = cli("run", bare, img, env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert "bare.tflite has no manifest" in r.output and "class indices, not labels" in r.output
    assert "preprocessing is assumed (resize 71 bicubic, crop 64, ImageNet mean/std)" in r.output


# 3: every partial failure ended with "...; the others were", also for an empty folder where there were no others.
def test_partial_and_total_failures_end_in_a_whole_sentence(named_onnx, named_digits, cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    r = cli("run", named_onnx, empty, env={"COLUMNS": "400"})
    assert r.exit_code == 1 and "none of the 1 input(s) could be classified (listed above)" in r.output
    assert "the others were" not in r.output
    good = sorted((named_digits[1] / "one").iterdir())[:3]
    r = cli("run", named_onnx, *good, bad, env={"COLUMNS": "400"})
    assert r.exit_code == 1 and "1 of 4 input(s) could not be classified (listed above); the other 3 were" in r.output


# 7: a TFLite file renamed .onnx was called "corrupt, truncated ...; re-export it"; as .pb it ran silently.
@pytest.mark.parametrize("name", ["model.onnx", "model.pb"])
def test_a_renamed_file_runs_as_what_its_bytes_say(t0_exports, cli, tmp_path, rng, name):
    import shutil

    from PIL import Image

    renamed = tmp_path / name
    shutil.copy2(t0_exports["tflite"].artifact, renamed)
    shutil.copy2(t0_exports["tflite"].artifact.with_suffix(".json"), renamed.with_suffix(".json"))
    img = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(img)
    r = cli("run", renamed, img, env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert "re-export" not in r.output
    warned = [line for line in r.output.splitlines() if "by its bytes" in line]
    assert len(warned) == 1 and f"{name} is a TFLite model" in warned[0] and "Rename it model.tflite" in warned[0]


# 6: examples/classify.py stopped at the first unreadable image and printed no labels (10: it also defaulted to 4
# threads on a 2-core machine and printed LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate").
@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_the_on_device_script_goes_on_past_a_bad_image_like_fnx_run(named_onnx, named_digits, t0_exports, tmp_path,
                                                                     fmt):
    import os

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    good = sorted((named_digits[1] / "seven").iterdir())[:2]
    model = named_onnx if fmt == "onnx" else t0_exports["tflite"].artifact
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "classify.py"), str(model), str(bad), *map(str, good),
                        str(tmp_path / "empty-folder-that-is-missing.png")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert all(str(g) in r.stdout for g in good)
    if fmt == "onnx":
        assert len(re.findall(r"^\s+[\d.]+%\s+7\s+seven$", r.stdout, re.M)) == 2  # labels from the manifest
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2 and "bad.jpg" in failed[0]
    assert "2 of 4 input(s) could not be read (listed above); the other 2 were classified" in r.stderr
    assert "XNNPACK" not in r.stdout + r.stderr
    assert f"{min(4, os.cpu_count() or 1)} thread(s)" in r.stdout


# 8: `fnx verify --layers` on its 16 synthetic images flagged "3 layer(s) differ by > 6 dB" with no explanation.
def test_verify_layers_without_data_says_data_is_the_fix(t0_tflite_int8, t0_ckpt, cli, tmp_path, rng):
    from PIL import Image

    r = cli("verify", t0_tflite_int8.artifact, "--weights", t0_ckpt, "--layers", env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    note = next(line for line in r.output.splitlines() if line.startswith("note:"))
    assert "16 synthetic images" in note and "Rerun with --data DIR" in note
    r = cli("verify", t0_tflite_int8.artifact, "--weights", t0_ckpt, "--layers", "--json")
    flagged = sum(layer["disagrees"] for layer in json.loads(r.stdout)["layers"])
    assert (f"The {flagged} flagged layer(s)" in note) == (flagged > 0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (72, 90, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    r = cli("verify", t0_tflite_int8.artifact, "--weights", t0_ckpt, "--layers", "--data", photos, env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "synthetic" not in r.output


# 10, smaller things a newcomer met.
def test_export_output_carries_no_tensorflow_start_up_logs():
    """litert-torch loads TensorFlow's libraries, which printed absl's and oneDNN's start-up lines into export output."""
    code = "from fnx.targets.tflite.convert import litert_torch; litert_torch(); print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "ok" and r.stderr.strip() == "", r.stderr[-2000:]


def test_a_long_step_says_what_it_is_doing_with_its_elapsed_time():
    """int8 TFLite quantization (72-94 s at 224 px) ran behind a bare spinner: a step now shows its phase and time."""
    import io
    import time

    from rich.console import Console

    from fnx.progress import Steps, phase

    phase("outside any step: nothing to show, nothing raised")
    buf = io.StringIO()
    steps = Steps(console=Console(file=buf, force_terminal=True, width=160))
    with steps.step("quantize to int8 tflite"):
        phase("converting the int8 graph to TFLite")
        time.sleep(0.5)  # rich refreshes a live display 4 times a second
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    assert "quantize to int8 tflite: converting the int8 graph to TFLite ... 0:00:00" in shown
    assert "✓ quantize to int8 tflite (0.5 s)" in shown


def test_calibration_progress_has_a_total_and_skipped_files_are_named(tmp_path, rng):
    from PIL import Image

    from fnx.calibration.data import SkippedImagesWarning, load_calibration
    from fnx.manifest import Preprocessing

    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")

    class Bar:
        totals, done = [], 0

        def update(self, task, advance=0, total=None):
            Bar.done += advance
            if total is not None:
                Bar.totals.append(total)

    with pytest.warns(SkippedImagesWarning, match=r"1 file\(s\) under .* could not be decoded .*broken\.jpg"):
        load_calibration(tmp_path, Preprocessing.for_size(32), size=10, held_out=4, progress=(Bar(), 0))
    assert Bar.totals[0] == Bar.totals[-1] == Bar.done == 13  # 14 wanted, 13 files: a total, never "13/?"


def test_quantize_out_takes_a_folder_like_export(t0_exports, cli, tmp_path):
    onnx = t0_exports["onnx"].artifact
    r = cli("quantize", onnx, "--calib-data", "synthetic", "--calib-size", "16", "--min-cosine", "0.9",
            "--out", tmp_path / "int8")
    assert r.exit_code == 0, r.output
    made = tmp_path / "int8" / onnx.name.replace("_fp32", "_int8")
    assert made.is_file() and made.with_suffix(".json").is_file()
    r = cli("quantize", onnx, "--calib-data", "synthetic", "--out", tmp_path / "model.tflite")
    assert r.exit_code == 1 and "give a folder, or a file name ending in .onnx" in r.output
    assert not (tmp_path / "model.tflite").exists()


def test_a_read_only_output_folder_is_called_read_only_not_uncreatable(tmp_path, monkeypatch):
    import os

    from fnx.errors import FnxError
    from fnx.fileio import check_output_dir

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(ro) else real(p, mode))  # tests run as root
    with pytest.raises(FnxError, match=r"output directory .*ro exists but is not writable .*chmod u\+w"):
        check_output_dir(ro)
    with pytest.raises(FnxError, match=r"cannot create output directory .*ro/sub: .*ro is not writable"):
        check_output_dir(ro / "sub")


def test_a_session_is_safe_to_share_between_threads(t0_exports, rng):
    """LiteRT raised "There is at least 1 reference to internal data" when one Session ran from several threads."""
    from concurrent.futures import ThreadPoolExecutor

    from fnx.runtime import load

    for fmt in ("tflite", "onnx"):
        session = load(t0_exports[fmt].artifact, device="cpu", threads=1)
        batches = [rng.standard_normal((1, *session.input_shape[1:])).astype(np.float32) for _ in range(24)]
        alone = [session.run(b)[0] for b in batches]
        with ThreadPoolExecutor(6) as pool:
            shared = list(pool.map(lambda b: session.run(b)[0], batches))
        assert all(np.array_equal(a, s) for a, s in zip(alone, shared)), fmt


# docs/BENCHMARKS.md: sections pasted from another machine (the GPU, the other CPU kind) survive a full run.
def test_a_full_benchmark_run_keeps_the_pasted_sections():
    sys.path.insert(0, str(ROOT))
    from benchmarks.report import PASTED, keep_pasted, pasted_sections

    report = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    pasted = pasted_sections(report)
    assert any("NVIDIA GPU" in h for h in pasted) and any("Intel Xeon kind" in h for h in pasted)
    fresh = "# fnx benchmarks\n\n## Machine\n\nthis run\n\n## Models (paper Table 3)\n\nnew figures\n"
    rewritten = keep_pasted(fresh, report)
    assert rewritten.startswith(fresh.rstrip()) and all(body.strip() in rewritten for body in pasted.values())
    assert keep_pasted(fresh, None) == fresh and PASTED not in fresh


# docs/BENCHMARKS.md once held three copies of four sections (branches that each re-measured them, merged): one each.
def test_the_benchmark_report_has_one_section_per_heading_and_an_update_replaces_it():
    sys.path.insert(0, str(ROOT))
    from benchmarks.__main__ import update
    from benchmarks.report import Section

    def headings(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("## ")]

    report = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    assert len(headings(report)) == len(set(headings(report))), "a section of docs/BENCHMARKS.md appears twice"
    title = "int8 per target: fnx's measured choice beside each peer's default recipe"
    sec = Section(name="int8_peers", title=title, seconds=1.0, intro="rerun figures")
    once = update(report, [sec], ["int8_peers"], ["- **CPU**: here", "- **Date**: now"])
    twice = update(once, [sec], ["int8_peers"], ["- **CPU**: here", "- **Date**: now"])
    assert headings(once) == headings(report) and twice == once and "rerun figures" in once
