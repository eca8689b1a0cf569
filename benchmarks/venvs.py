"""Benchmark-only virtualenvs: peers with their own pins (TensorFlow 2.19, timm, ExecuTorch, ncnn) never go
into fnx's own install. Each is made on demand beside the repo and holds a `.gitignore` of `*`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.context import Ctx


def side_venv(ctx: Ctx, venv: Path, packages: list[str], imports: tuple[str, ...], timeout_s: int) -> tuple[Path | None, str]:
    """Return (the venv's python, how it was found or made) or (None, why not); imports must load in it."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import " + ", ".join(imports)]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, f"existing venv {venv.name}"
    ctx.log(f"    creating {venv} ({' '.join(packages)}), at most {timeout_s} s")
    t0 = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        (venv / ".gitignore").write_text("*\n")
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True, capture_output=True,
                       timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"setting up {venv.name} took over {timeout_s} s"
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return None, f"setting up {venv.name} failed: {tail[0][:200]}"
    if subprocess.run(check, capture_output=True).returncode:
        return None, f"{venv.name} was installed but {', '.join(imports)} do not import"
    return python, f"venv {venv.name} created in {time.perf_counter() - t0:.0f} s"
