"""Every command in the README and the guides runs, and prints what the page shows (numbers aside); the command
reference is the CLI's own.

A ```console block is run line by line: `$ CMD` runs CMD with bash in a workspace where `make demo` has run
(demo_out/, with fnx/ and examples/ beside it), the lines after it are what the page shows it printing. Each
shown line must match a line of the real output once numbers are wildcards and spaces collapsed (border-only
table lines and `...` are skipped; a line ending in ` ...` is a prefix). A command ending in `&` (a server) runs
in the background until its block ends; the page shows its start-up line, which is awaited. A shown line starting `error:` means the command must
exit 1, else 0. A ```sh block is set-up (make, pip, venv, activate): `make test` runs the same set-up in CI, and
SETUP lists what such blocks may hold.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "guides").glob("*.md"))]
SETUP = ("make demo", "make test", ". .venv/bin/activate", "pip install ", "python3 -m venv ", "python -m pip wheel ",
         "sudo apt install ", ". ~/fnx/bin/activate")
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def blocks(page: Path, kind: str) -> list[tuple[int, list[str]]]:
    """Return (line number, lines) of each ```kind block of a Markdown page."""
    found, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{kind}":
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            found.append((start, body))
        i += 1
    return found


def commands(body: list[str]) -> list[tuple[str, list[str]]]:
    """Return (command, shown output lines) of a console block."""
    out: list[tuple[str, list[str]]] = []
    for line in body:
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def pattern(shown: str) -> re.Pattern | None:
    """Return the regex a shown line must fully match (numbers free, spaces collapsed; a line ending in " ..." is a
    prefix of the real one); None for lines not checked."""
    text = " ".join(shown.split())
    if not re.search(r"[A-Za-z]", text) or text == "...":
        return None
    prefix = text.endswith(" ...")
    parts = re.split(NUMBER, text[:-4] if prefix else text)
    return re.compile(NUMBER.join(re.escape(p) for p in parts) + (" .*" if prefix else ""))


def check_shown(cmd: str, shown: list[str], printed: str) -> None:
    lines = [" ".join(line.split()) for line in printed.splitlines()]
    for s in shown:
        p = pattern(s)
        if p is not None:
            assert any(p.fullmatch(line) for line in lines), f"`{cmd}` did not print:\n{s}\nIt printed:\n{printed[-3000:]}"


def doc_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "100", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("FNX_SHARE_CPU_WITH", None)
    return env


def test_make_demo_is_fnx_demo():
    """The demo_workspace fixture (conftest) runs what `make demo` runs after its set-up."""
    makefile = (ROOT / "Makefile").read_text()
    assert "$(VENV)/bin/fnx demo --out demo_out" in makefile


def test_the_pages_show_only_commands_that_run_here():
    for page in PAGES:
        for start, body in blocks(page, "sh"):
            for line in body:
                command = line.split("#")[0].strip()
                assert not command or command.startswith(SETUP), f"{page.name}:{start}: `{command}` is not set-up; " \
                                                                 f"show it in a console block so it runs"
        assert not blocks(page, "bash"), f"{page.name}: use ```console (run) or ```sh (set-up) blocks"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_on_the_page_runs_as_shown(page, demo_workspace):
    env = doc_env()
    for start, body in blocks(page, "console"):
        background: list[subprocess.Popen] = []
        try:
            for cmd, shown in commands(body):
                if cmd.endswith("&"):
                    background.append(start_server(cmd[:-1], shown, demo_workspace, env))
                    continue
                r = subprocess.run(["bash", "-c", cmd], cwd=demo_workspace, env=env, capture_output=True, text=True,
                                   timeout=600)
                want = 1 if any(s.startswith("error:") for s in shown) else 0
                assert r.returncode == want, f"{page.name}:{start}: `{cmd}` exited {r.returncode}:\n{r.stderr[-3000:]}"
                check_shown(cmd, shown, r.stdout + r.stderr)
        finally:
            for proc in background:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)


def start_server(cmd: str, shown: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    """Start a backgrounded command and wait until it printed its shown lines (a server's listening line)."""
    proc = subprocess.Popen(["bash", "-c", f"exec {cmd}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    printed, deadline = "", time.monotonic() + 120
    while "listening on" not in printed and time.monotonic() < deadline and proc.poll() is None:
        printed += proc.stdout.readline()
    assert "listening on" in printed, f"`{cmd}` did not start:\n{printed}"
    check_shown(cmd, shown, printed)
    return proc


def test_the_command_reference_is_the_cli_s_own():
    from fnx.cli.reference import reference

    page = ROOT / "docs" / "reference.md"
    assert page.read_text() == reference(), "docs/reference.md is out of date: python -m fnx.cli.reference > docs/reference.md"


def test_the_demo_points_to_commands_the_readme_runs(demo_workspace):
    """`fnx demo` ends with what to try next; each of those commands is one the README runs in its quickstart."""
    printed = (demo_workspace / "demo.out").read_text()
    after = printed.split("\nNext\n", 1)[1]
    told = [line.strip() for line in after.splitlines() if line.strip().startswith("fnx ")
            and not line.strip().startswith("fnx is installed")]
    assert len(told) == 5, printed[-2000:]
    # the demo ran as `make demo` runs it, with .venv's fnx not on PATH unless the venv is active: then it says how
    on_path = shutil.which("fnx")
    venv_fnx = Path(sys.executable).parent / "fnx"
    activate = f". {Path(sys.prefix)}/bin/activate"
    assert (activate in after) == (on_path is None or Path(on_path).resolve() != venv_fnx.resolve()), after
    readme = (ROOT / "README.md").read_text()
    for command in told:
        verb, artifact = command.split()[1:3]
        assert f"$ fnx {verb} " in readme and artifact in readme, command
    assert shutil.which("fnx", path=doc_env()["PATH"])  # what the pages' `fnx` lines run

def test_the_parity_table_keeps_its_shape_whatever_the_figures():
    """The pages show `fnx verify`'s table; its columns must not shift with the figures (a 98.4% top-1 beside the
    page's 100.0% once moved the artifact's name across a wrap)."""
    from types import SimpleNamespace

    from rich.console import Console

    from fnx.cli.tables import parity_table

    def rendered(top1: float, cosine: float) -> list[list[int]]:  # where each line's column borders are
        out = SimpleNamespace(name="logits", n=64, max_abs=0.21, max_rel=0.036, cosine=cosine, top1_agreement=top1)
        rep = SimpleNamespace(bounds={"min_cosine": 0.99}, precision="int8", passed=True, outputs=[out])
        console = Console(width=100, record=True)
        console.print(parity_table([("fasternet_t0_64_tflite_int8.tflite", rep)]))
        return [[i for i, c in enumerate(line) if c in "│┃"] for line in console.export_text().splitlines()]

    assert rendered(0.984, 0.998707) == rendered(1.0, 0.999173) == rendered(0.5, 0.912345)
