"""Isolated toolchains: an environment made once per machine from pinned requirements (keyed by them), run with files
handed by path, listed/created/removed by `fnx toolchains`, and one clear line when the index cannot be reached."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fnx.errors import FnxError
from fnx.toolchains import TOOLCHAINS, Toolchain, get_toolchain, register_toolchain
from fnx.toolchains.env import _cpu_torch_constraint, create, remove, run


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory):
    """A pure-Python wheel built here (no index needed): package `fnx_tiny_tool` with VALUE = 42."""
    src = tmp_path_factory.mktemp("tiny-src")
    (src / "fnx_tiny_tool").mkdir()
    (src / "fnx_tiny_tool" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "fnx-tiny-tool"\nversion = "0.1"\n')
    out = tmp_path_factory.mktemp("tiny-wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    return next(out.glob("fnx_tiny_tool-*.whl"))


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as on a machine that cannot reach the index
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def test_a_toolchain_is_made_once_isolated_and_run_by_path(tiny_wheel, offline, tmp_path):
    tc = register_toolchain(Toolchain("tiny", "a test converter", (f"fnx-tiny-tool @ {tiny_wheel.as_uri()}",)))
    try:
        assert tc.state() == "absent" and get_toolchain("tiny") is tc
        with pytest.raises(FnxError, match="toolchain tiny .* is not created here: fnx toolchains create tiny"):
            run(tc, ["-c", "pass"])
        said = []
        assert create(tc, said.append) == tc.path and tc.state() == "ready"
        assert any("fnx-tiny-tool" in s or "fnx_tiny_tool" in s for s in said)  # progress while it installs
        (tmp_path / "in.txt").write_text("6")
        r = run(tc, ["-c", "import sys, fnx_tiny_tool as t; print(t.VALUE * int(open(sys.argv[1]).read()))",
                     str(tmp_path / "in.txt")])
        assert r.returncode == 0 and r.stdout.strip() == "252", r.stderr
        with pytest.raises(ImportError):
            __import__("fnx_tiny_tool")  # isolated: not in fnx's own environment
        made = (tc.path / "fnx-toolchain.json").stat().st_mtime
        assert create(tc) == tc.path and (tc.path / "fnx-toolchain.json").stat().st_mtime == made  # kept, not remade
        other = Toolchain("tiny", "a test converter", (*tc.requirements, "pip"))
        assert other.key != tc.key and other.path != tc.path  # keyed by the pinned requirements
        assert remove(tc) and tc.state() == "absent" and not remove(tc)
        tc.path.mkdir(parents=True)  # an interrupted creation
        assert tc.state() == "incomplete"
        create(tc)
        assert tc.state() == "ready"
    finally:
        remove(tc)
        TOOLCHAINS.pop("tiny", None)


def test_offline_without_the_toolchain_says_what_to_do_in_one_line_and_leaves_nothing(offline):
    tc = Toolchain("missing", "a test converter", ("fnx-no-such-package==9.9",))
    with pytest.raises(FnxError) as e:
        create(tc)
    said = str(e.value)
    assert "package index cannot be reached" in said and "fnx toolchains create missing" in said and "\n" not in said
    assert not tc.path.exists()


@pytest.mark.parametrize("fmt", ["rknn", "imx500"])
def test_an_export_offline_without_its_toolchain_says_what_to_do_in_one_line_and_writes_nothing(fmt, offline, tmp_path,
                                                                                                 cli, monkeypatch):
    import fnx.exporter.pipeline as pipeline

    monkeypatch.setattr("fnx.targets.imx500.export.check_java", lambda: None)  # Java: test_imx500's matter
    monkeypatch.setenv("FNX_TOOLCHAINS_DIR", str(tmp_path / "toolchains"))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("built the model without the toolchain"))
    r = cli("export", "t0", "--weights", "random", "--format", fmt, "--precision", "int8", "--calib-data", "synthetic",
            "--out", tmp_path / "out", env={"COLUMNS": "400"})
    (said,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]  # after the failed step's line
    assert r.exit_code == 1 and f"toolchain {fmt} could not be installed: the package index cannot be reached" in said
    assert f"fnx toolchains create {fmt}" in said and not (tmp_path / "out").exists()
    assert [p.name for p in (tmp_path / "toolchains").iterdir()] == [p.name for p in (tmp_path / "toolchains").glob(
        "*.pip.log")]  # pip's log for the curious; no environment left half-made


def test_torch_is_held_to_this_machine_s_cpu_build(tmp_path):
    from importlib import metadata

    tc = Toolchain("needs-torch", "a test converter", ("torch>=2.0", "numpy<2"))
    tc.path.mkdir(parents=True)
    try:
        held = _cpu_torch_constraint(tc)
        assert held.read_text() == f"torch=={metadata.version('torch').split('+')[0]}\n"
        assert _cpu_torch_constraint(Toolchain("lean", "x", ("numpy<2",))) is None
        assert _cpu_torch_constraint(Toolchain("own", "x", ("torch==2.4.0",), torch="2.4.0, a CUDA build")) is None
    finally:
        remove(tc)


def test_unknown_toolchain_is_refused_by_name(cli):
    r = cli("toolchains", "create", "nope")
    assert r.exit_code == 1 and "unknown toolchain 'nope'" in r.output


def test_no_deps_packages_install_without_their_declared_dependencies(tmp_path, offline):
    """A vendor wheel declaring a dependency fnx must not take (a pinned CUDA torch) installs without it (no_deps)."""
    src = tmp_path / "src"
    (src / "fnx_pinned_tool").mkdir(parents=True)
    (src / "fnx_pinned_tool" / "__init__.py").write_text("VALUE = 7\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "fnx-pinned-tool"\nversion = "0.1"\n'
                                        'dependencies = ["fnx-no-such-package==9.9"]\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("fnx_pinned_tool-*.whl"))
    tc = Toolchain("pinned", "a test converter", (), no_deps=(f"fnx-pinned-tool @ {wheel.as_uri()}",))
    assert tc.key != Toolchain("pinned", "a test converter", ()).key  # keyed by what it installs without deps too
    try:
        create(tc)
        r = run(tc, ["-c", "import fnx_pinned_tool as t; print(t.VALUE)"])
        assert r.returncode == 0 and r.stdout.strip() == "7", r.stderr
    finally:
        remove(tc)
