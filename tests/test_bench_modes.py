"""`fnx bench` by mode: each mode's help lists only its own options, a foreign option is refused naming its mode,
the old spellings (--all, --e2e) still work with a deprecation line, FNX_DEBUG=1 shows the traceback."""

from __future__ import annotations

import json
import re

import pytest

OWN = {  # a few options each mode must list, and some it must not
    "latency": ({"--batch", "--paper-protocol", "--runs", "--engine", "--inference-precision"},
                {"--weights", "--calib-data", "--limit", "--workers", "--e2e", "--all"}),
    "e2e": ({"--limit", "--workers", "--threads", "--engine"}, {"--runs", "--batch", "--weights", "--e2e-limit"}),
    "all": ({"--weights", "--calib-data", "--min-cosine", "--precisions", "--runs"},
            {"--batch", "--engine", "--device", "--inference-precision", "--workers", "--e2e"}),
}


def _flat(text: str) -> str:
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


@pytest.mark.parametrize("mode", list(OWN))
def test_each_mode_lists_only_its_own_options(cli, mode):
    r = cli("bench", mode, "--help", env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    listed = set(re.findall(r"(--[a-z][a-z0-9-]+)", r.output))
    own, foreign = OWN[mode]
    assert own <= listed and not foreign & listed, (own - listed, foreign & listed)


def test_bench_alone_shows_the_modes(cli):
    r = cli("bench", "--help", env={"COLUMNS": "250"})
    assert r.exit_code == 0 and all(m in r.output for m in ("latency", "e2e", "all"))


@pytest.mark.parametrize("args, owners", [
    (["{art}", "--weights", "random"], "`fnx bench all`"),
    (["latency", "{art}", "--calib-data", "synthetic"], "`fnx bench all`"),
    (["all", "t0", "--batch", "2"], "`fnx bench latency`"),
    (["all", "t0", "--engine", "onnxruntime"], "`fnx bench latency` or `fnx bench e2e`"),
    (["e2e", "{art}", "{dir}", "--runs", "3"], "`fnx bench latency` or `fnx bench all`"),
    (["{art}", "--workers", "2"], "`fnx bench e2e`"),
])
def test_a_foreign_option_is_refused_naming_its_mode(cli, t0_exports, tmp_path, args, owners):
    r = cli("bench", *[a.format(art=t0_exports["onnx"].artifact, dir=tmp_path) for a in args], env={"COLUMNS": "250"})
    assert r.exit_code == 2 and f"belongs to {owners}, not to" in _flat(r.output), r.output


def test_paper_protocol_refuses_the_settings_it_would_override(cli, t0_exports):
    art = t0_exports["onnx"].artifact
    r = cli("bench", art, "--paper-protocol", "--runs", "3", "--threads", "2")
    assert r.exit_code == 1 and "drop --threads, --runs or --paper-protocol" in _flat(r.output)
    r = cli("bench", art, "--paper-protocol", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert (row["runs"], row["threads"], row["batch"]) == (200, 1, 1)


@pytest.fixture
def photos(tmp_path):
    from PIL import Image

    from fnx.calibration.synthetic import synthetic_images

    for i, im in enumerate(synthetic_images(3, size=96, seed=1)):
        Image.fromarray(im).save(tmp_path / f"{i}.jpg")
    return tmp_path


def test_e2e_measures_every_thread_count_and_the_old_spelling_still_works(cli, t0_exports, photos):
    art = t0_exports["tflite"].artifact
    r = cli("bench", "e2e", art, photos, "--threads", "1,2", "--limit", "2", "--json")
    assert r.exit_code == 0, r.output
    assert [(x["threads"], x["images"]) for x in json.loads(r.stdout)] == [(1, 2), (2, 2)]
    old = cli("bench", art, "--e2e", photos, "--e2e-limit", "2", "--json")
    assert old.exit_code == 0, old.output
    assert "`fnx bench --e2e` is now `fnx bench e2e`" in _flat(old.stderr)
    assert [x["images"] for x in json.loads(old.stdout)] == [2]


def test_old_all_spelling_reaches_the_all_mode(cli):
    r = cli("bench", "--all", "t0", "--precisions", "fp64")  # refused before any export
    assert r.exit_code == 1 and "--precisions takes" in r.output
    assert "`fnx bench --all` is now `fnx bench all`" in _flat(r.stderr)


def test_fnx_debug_shows_the_traceback_behind_a_one_line_error(cli, tmp_path):
    missing = tmp_path / "missing.onnx"
    r = cli("bench", missing)
    assert r.exit_code == 1 and "Traceback" not in r.output and "does not exist" in r.output
    r = cli("bench", missing, env={"FNX_DEBUG": "1"})
    assert r.exit_code == 1 and "Traceback" in r.output and "FnxError" in r.output and "does not exist" in r.output
