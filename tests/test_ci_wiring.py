"""`make test`'s wiring (scripts/run_tests.sh): ARM parity beside pytest, both must pass, pytest's summary last."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A stand-in interpreter: answers `scripts/arm_parity.py ...` and `-m pytest ...` with the given exit codes.
STUB = """#!/usr/bin/env bash
if [ "$1" = scripts/arm_parity.py ]; then echo "ARM PARITY (stub) args: ${*:2} nice: $(nice)"; exit {arm}; fi
echo "pytest (stub) FNX_SHARE_CPU_WITH=${FNX_SHARE_CPU_WITH:-unset}"; echo "3 passed in 0.10s"; exit {pytest}
"""


@pytest.mark.parametrize("arm, pytest_rc, expected", [(0, 0, 0), (1, 0, 1), (0, 1, 1), (3, 2, 2)])
def test_both_must_pass_and_pytest_summary_closes(tmp_path, arm, pytest_rc, expected):
    stub = tmp_path / "python"
    stub.write_text(STUB.replace("{arm}", str(arm)).replace("{pytest}", str(pytest_rc)))
    stub.chmod(0o755)
    r = subprocess.run(["bash", "scripts/run_tests.sh", str(stub), "-q"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == expected, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "3 passed in 0.10s"  # CI reads the closing line
    assert "ARM PARITY (stub) args: --jobs 2" in r.stdout  # ARM's output is printed, after pytest's
    assert r.stdout.index("pytest (stub)") < r.stdout.index("ARM PARITY (stub)")
    assert ("ARM parity failed" in r.stdout) == (arm != 0)
    assert "nice: 19" in r.stdout  # ARM takes what pytest leaves idle: pytest has the cores first
    share = next(line for line in lines if line.startswith("pytest (stub)")).rpartition("=")[2]
    assert share == "unset"  # pytest keeps torch's own thread count


RUN_ONCE_CONFTEST = """
import os, sys, time
import pytest
sys.path.insert(0, {tests!r})
from run_once import once_across_workers


@pytest.fixture(scope="session")
def costly(tmp_path_factory):
    def make(folder):
        with open({log!r}, "a") as f:
            f.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
        time.sleep(1)  # long enough that the other worker asks while it is being made
        (folder / "made").write_text("yes")
    return once_across_workers(tmp_path_factory, "costly", make)
"""


@pytest.mark.parametrize("workers", [["-n", "2", "--dist", "loadfile"], []])
def test_a_shared_session_fixture_is_made_once_across_xdist_workers(tmp_path, workers):
    """`make test`'s two workers share the demo workspace (tests/run_once.py): made by one, read by both; alone,
    pytest makes it once too."""
    import os
    import sys

    log = tmp_path / "made.log"
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(RUN_ONCE_CONFTEST.format(tests=str(ROOT / "tests"), log=str(log)))
    for i in range(4):
        (suite / f"test_{i}.py").write_text("def test_reads(costly):\n    assert (costly / 'made').read_text() == 'yes'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # not this run's worker's
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, str(suite)],
                       cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "4 passed" in r.stdout, r.stdout + r.stderr
    made = log.read_text().split()
    assert len(made) == 1 and (made[0].startswith("gw") if workers else made[0] == "main"), made
