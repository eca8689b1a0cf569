"""What a newcomer met in their first hour (issue #34), each reproduced as they did it, checked against what they should
now see."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
