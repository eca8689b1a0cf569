"""A target from another distribution: registered through the `fnx.targets` entry point group, it passes the
FORMATS x ENGINES conformance test (tests/test_registries.py) and runs through the CLI, with no edit under fnx/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A folder holding the toy target's package and its distribution's metadata, as pip would install them."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "tests" / "plugins" / "fnx_toy_target", site / "fnx_toy_target")
    info = site / "fnx_toy_target-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fnx-toy-target\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fnx.targets]\ntoyscript = fnx_toy_target\n")
    return site


def env_with(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FNX_SHARE_CPU_WITH"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_the_entry_point_target_passes_the_conformance_test(plugin_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                        "tests/test_registries.py::test_format_engine_conformance", "-k", "toyscript"],
                       cwd=ROOT, env=env_with(plugin_path), capture_output=True, text=True, timeout=600)
    assert "PASSED tests/test_registries.py::test_format_engine_conformance[toyscript-toyscript]" in r.stdout, \
        r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0


def test_the_entry_point_target_runs_through_the_cli(plugin_path, t0_ckpt, tmp_path):
    from PIL import Image

    env = env_with(plugin_path)
    fnx = [sys.executable, "-m", "fnx"]
    r = subprocess.run([*fnx, "export", "t0", "--format", "toyscript", "--weights", str(t0_ckpt), "--img-size", "64",
                        "--out", str(tmp_path), "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads(r.stdout)
    assert manifest["artifact"]["format"] == "toyscript" and manifest["parity"]["passed"]
    art = tmp_path / manifest["artifact"]["file"]
    Image.new("RGB", (80, 80), (120, 30, 200)).save(tmp_path / "x.png")
    r = subprocess.run([*fnx, "run", str(art), str(tmp_path / "x.png"), "--json", "--device", "cpu"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["engine"].startswith("toyscript"), r.stderr[-2000:]
    r = subprocess.run([*fnx, "export", "--help"], env={**env, "COLUMNS": "250"}, capture_output=True, text=True)
    assert "toyscript" in r.stdout  # --format's choices come from the registry


def test_a_target_that_fails_to_load_is_named_and_left_out(plugin_path, tmp_path):
    site = tmp_path / "broken"
    info = site / "fnx_broken_target-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fnx-broken-target\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fnx.targets]\nbroken = fnx_no_such_module\n")
    r = subprocess.run([sys.executable, "-m", "fnx", "devices", "--json"], env=env_with(site), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "fnx target 'broken' (fnx_no_such_module" in r.stderr and "left out" in r.stderr


def test_a_plugin_s_toolchain_is_listed_created_and_removed(plugin_path, tmp_path):
    env = {**env_with(plugin_path), "FNX_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("FNX_TOOLCHAINS_DIR", None)  # under the cache unless this names another place (make test-targets does)
    fnx = [sys.executable, "-m", "fnx", "toolchains"]

    def listed() -> dict:
        r = subprocess.run([*fnx, "--json"], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return {t["name"]: t for t in json.loads(r.stdout)}

    assert listed()["toyscript"]["state"] == "absent"
    r = subprocess.run([*fnx, "create", "toyscript"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "toolchain toyscript is ready" in r.stdout, r.stderr[-2000:]
    made = listed()["toyscript"]
    assert made["state"] == "ready" and made["size_mb"] > 0 and made["path"].startswith(str(tmp_path / "cache"))
    r = subprocess.run([*fnx, "remove", "toyscript"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "removed" in r.stdout and listed()["toyscript"]["state"] == "absent"
