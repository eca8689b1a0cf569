"""Create, remove and run a toolchain's environment (a venv under fnx's cache, made with pip from the package index)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from fnx.errors import FnxError
from fnx.toolchains import MARKER, Toolchain

UNREACHABLE = ("Failed to establish a new connection", "Temporary failure in name resolution", "Network is unreachable",
               "No matching distribution found", "Could not find a version that satisfies")


def create(tc: Toolchain, on_line: Callable[[str], None] = lambda line: None) -> Path:
    """Make tc's environment (once: a ready one is returned as it is); on_line gets pip's progress lines. FnxError with
    one line saying what to do when the index cannot be reached or pip fails; nothing is left behind then."""
    import venv

    if tc.ready:
        return tc.path
    if tc.path.exists():
        shutil.rmtree(tc.path)  # an interrupted creation: start again
    tc.path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        on_line("creating the virtual environment")
        venv.create(tc.path, with_pip=True, symlinks=True)
        if tc.no_deps:
            _pip_install(tc, on_line, tc.no_deps, "--no-deps")
        if tc.requirements:
            _pip_install(tc, on_line, tc.requirements)
        frozen = subprocess.run([str(tc.python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True).stdout.split()
        (tc.path / MARKER).write_text(json.dumps({
            "name": tc.name, "requirements": list(tc.requirements), "no_deps": list(tc.no_deps), "key": tc.key,
            "packages": frozen,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "install_seconds": round(time.monotonic() - started, 1),
        }, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tc.path, ignore_errors=True)
        raise
    return tc.path


def _pip_install(tc: Toolchain, on_line: Callable[[str], None], packages: Sequence[str], *flags: str) -> None:
    """pip-install packages into tc's environment, streaming progress; FnxError if pip fails."""
    cmd = [str(tc.python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *flags,
           *packages]
    held = _cpu_torch_constraint(tc)
    if held is not None:
        cmd += ["--constraint", str(held)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(("Collecting", "Installing collected", "Successfully installed", "Downloading")):
            on_line(line.strip()[:100])
    proc.wait()
    if proc.returncode != 0:
        out = "".join(lines)
        (tc.path.parent / f"{tc.name}-{tc.key}.pip.log").write_text(out)
        raise FnxError(_failure(tc, out))


def _cpu_torch_constraint(tc: Toolchain) -> Path | None:
    """A constraints file holding torch to this machine's version (the CPU build on the local disk), where the
    requirements name torch and the toolchain does not declare another."""
    names = {re.split(r"[\s\[<>=!~;@]", r.strip(), maxsplit=1)[0].lower() for r in tc.requirements}
    if tc.torch is not None or "torch" not in names:
        return None
    try:
        version = metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        return None
    path = tc.path / "fnx-constraints.txt"
    path.write_text(f"torch=={version}\n")
    return path


def _failure(tc: Toolchain, pip_output: str) -> str:
    log = tc.path.parent / f"{tc.name}-{tc.key}.pip.log"
    no_index = os.environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on")  # a conflict then means none
    if no_index or any(s in pip_output for s in UNREACHABLE):
        return (f"toolchain {tc.name} could not be installed: the package index cannot be reached or has no "
                f"{' '.join((*tc.no_deps, *tc.requirements))}. Create it where the index can be reached: "
                f"fnx toolchains create {tc.name} (pip's output: {log})")
    if re.search(r"\btorch\b", pip_output) and "conflict" in pip_output.lower():  # torch itself, not torchvision
        return (f"toolchain {tc.name} needs another torch than this machine's CPU build, which would pull a CUDA build "
                f"of several GB; its target must declare it (Toolchain.torch) (pip's output: {log})")
    return f"toolchain {tc.name} could not be installed: pip failed (its output: {log})"


def remove(tc: Toolchain) -> bool:
    """Delete tc's environment; returns whether there was one."""
    if not tc.path.exists():
        return False
    shutil.rmtree(tc.path)
    return True


def run(tc: Toolchain, args: Sequence[str], cwd: Path | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `python ARGS` in tc's environment (files are handed over by path in args); FnxError if it is not created."""
    if not tc.ready:
        packages = ", ".join((*tc.no_deps, *tc.requirements)) or "nothing"
        raise FnxError(f"toolchain {tc.name} ({tc.purpose}) is not created here: fnx toolchains create {tc.name} "
                       f"(installs {packages} from the package index, once)")
    return subprocess.run([str(tc.python), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_job(tc: Toolchain, script: Path, work: Path, job: dict, what: str,
            timeout: float) -> subprocess.CompletedProcess:
    """Write job (files by path) to work/job.json and run `python script job.json` in tc's environment from work;
    FnxError saying what did not finish when it runs past timeout seconds."""
    (work / "job.json").write_text(json.dumps(job))
    try:
        return run(tc, [str(script), str(work / "job.json")], cwd=work, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FnxError(f"{what} did not finish in {timeout:.0f} s (toolchain {tc.name})") from None
