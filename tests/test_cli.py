"""The CLI as a package: the root options, help that shows choices and defaults, one-line errors."""

from __future__ import annotations

import re
import shutil

import pytest


def test_version_works_without_a_command(cli):
    from fnx import __version__

    r = cli("--version")
    assert r.exit_code == 0 and r.output.strip() == f"fnx {__version__}"


@pytest.mark.parametrize("command, shown", [
    ("export", ["fp32|fp16|int8", "minmax|percentile|entropy|mse", "[default: tflite]", "[default: 256]"]),
    ("run", ["onnxruntime|openvino|litert|tflite-runtime|tf.lite", "rpi4", "[default: auto]", "[default: 5]"]),
    ("bench latency", ["[default: cpu]", "[default: 50]"]),
    ("bench all", ["[default: 256]", "[default: fp32,fp16,int8]"]),
    # brackets written in help texts survive rich markup (an unescaped "[scale]" or "[@REV]" vanished)
    ("export", ["hf-hub:ORG/REPO[@REV]"]),
    ("train", ["[default: 12; 3 with --qat]", "[default: runs/model.pth]", "--qat"]),
    ("eval", ["needs the scale extra"]),
    ("serve", ["--header-timeout", "[default: 10.0]", "--body-timeout", "--keep-alive", "[default: 5.0]",
               "--max-connections", "up to 1024"]),
])
def test_help_lists_registry_choices_and_defaults(cli, command, shown):
    r = cli(*command.split(), "--help", env={"COLUMNS": "250"})
    squashed = re.sub(r"[\s│]+", "", r.output)
    assert r.exit_code == 0
    for s in shown:
        assert s.replace(" ", "") in squashed, (s, r.output)


def test_export_help_lists_every_registered_format(cli):
    """--format's choices are the registry's (their order follows the order the targets' modules were imported in)."""
    from fnx.exporter.formats import FORMATS

    r = cli("export", "--help", env={"COLUMNS": "250"})
    choices = re.search(r"--format\s+-f\s+<([^>]+)>", r.output)
    assert r.exit_code == 0 and choices, r.output
    assert sorted(choices.group(1).split("|")) == sorted([*FORMATS, "all"])


def test_manifest_is_checked_against_the_file_beside_it(t0_exports, tmp_path, cli):
    tfl, onx = t0_exports["tflite"].artifact, t0_exports["onnx"].artifact
    stale = tmp_path / tfl.name
    shutil.copy(tfl, stale)
    shutil.copy(onx.with_suffix(".json"), stale.with_suffix(".json"))  # an ONNX manifest beside a TFLite file
    r = cli("run", stale, tfl)  # any image path: the model is refused first
    assert r.exit_code == 1 and "describes a onnx artifact" in r.output
    shutil.copy(tfl.with_suffix(".json"), stale.with_suffix(".json"))
    stale.write_bytes(tfl.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes: another file under the name
    r = cli("bench", stale, "--runs", "1")
    assert r.exit_code == 1 and "sha256 differs" in r.output


def test_a_directory_as_the_model_says_so(cli, tmp_path):
    r = cli("run", tmp_path, tmp_path / "x.jpg")
    assert r.exit_code == 1 and "is a directory" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("args", [["bench", "{m}", "--threads", "0"], ["bench", "{m}", "--runs", "0"],
                                  ["run", "{m}", "x.jpg", "--topk", "-3"], ["run", "{m}", "x.jpg", "--threads", "0"]])
def test_out_of_range_numbers_are_usage_errors(cli, t0_exports, args):
    r = cli(*[a.format(m=t0_exports["tflite"].artifact) for a in args])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output
    assert re.search(r"x>=1|at least 1|greater than or equal to 1", r.output)


@pytest.mark.parametrize("args", [["models"], ["bench", "{art}", "--runs", "2", "--warmup", "0"], ["verify", "{art}"],
                                  ["export", "t0", "--weights", "random", "--img-size", "64", "--format", "onnx",
                                   "--out", "{out}"]])
def test_tables_read_at_80_columns(cli, t0_exports, tmp_path, args):
    """No table fnx prints cuts a fact at 80 columns (cells wrap instead of ending in an ellipsis)."""
    art = t0_exports["tflite"].artifact
    r = cli(*[a.format(art=art, out=tmp_path) for a in args], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and max(len(line) for line in r.output.splitlines()) <= 80, r.output
