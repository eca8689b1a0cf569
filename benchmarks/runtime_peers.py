"""Runtime peers fnx does not ship: ExecuTorch (XNNPACK, fp32 and PT2E int8) and ncnn (fp32 via pnnx), each in a
benchmark-only venv built here on demand (`.venv-peer-<engine>` at the repo root, holding a `.gitignore` of `*`;
never fnx's own install), run by runtime_peers_worker.py on the same weights and images as fnx's paths in the
engines section. ncnn int8 is left out: its calibration tools (ncnn2table, ncnn2int8) are in no PyPI wheel.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from benchmarks.context import REPO, Ctx
from benchmarks.venvs import side_venv

# engine: pip requirements (torch pinned to the CPU build fnx uses; an unpinned one would pull CUDA's)
PEERS = {
    "executorch": ["torch==2.13.0", "executorch==1.4.1", "safetensors"],
    "ncnn": ["torch==2.13.0", "ncnn==1.0.20261020", "pnnx==20261020", "safetensors", "numpy"],
}
SETUP_TIMEOUT_S = 900
RUN_TIMEOUT_S = 1800


IMPORTS = {"executorch": ("executorch.runtime", "torch"), "ncnn": ("ncnn", "pnnx", "torch")}


def venv_python(ctx: Ctx, engine: str) -> tuple[Path | None, str]:
    """Return (the peer venv's python, how it came to be), building the venv if it is missing."""
    return side_venv(ctx, REPO / f".venv-peer-{engine}", PEERS[engine], IMPORTS[engine], SETUP_TIMEOUT_S)


def measure(ctx: Ctx, name: str, weights: Path, x_nchw: np.ndarray, calib_nchw: np.ndarray, warmup: int,
            runs: int, engines: tuple[str, ...] = tuple(PEERS)) -> tuple[dict[str, dict], list[str]]:
    """Return ({label: {"ms1", "ms2", "out", "mb"} or {"error"}}, notes) for every peer (of engines) on one model."""
    work = ctx.work / "runtime-peers" / name
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "inputs.npy", np.ascontiguousarray(x_nchw, dtype=np.float32))
    np.save(work / "calib.npy", np.ascontiguousarray(calib_nchw, dtype=np.float32))
    found, notes = {}, []
    for engine in engines:
        python, how = venv_python(ctx, engine)
        notes.append(f"{engine}: {how}")
        if python is None:
            found[engine] = {"error": how}
            continue
        ctx.log(f"    {name}: {engine} (convert, then time at 1 and 2 threads)")
        cmd = [str(python), str(Path(__file__).with_name("runtime_peers_worker.py")), engine, name, str(weights),
               str(work / "inputs.npy"), str(work / "calib.npy"), str(work / engine), "--runs", str(runs),
               "--warmup", str(warmup)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            found[engine] = {"error": f"over {RUN_TIMEOUT_S} s"}
            continue
        try:
            rows = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            found[engine] = {"error": f"exit {done.returncode}: {done.stderr.strip()[-200:]}"}
            continue
        for r in rows:
            entry = found.setdefault(r["label"], {})
            if "error" in r:
                entry["error"] = r["error"]
                continue
            entry[f"ms{r['threads']}"] = r["median_ms"]
            entry["mb"] = r["mb"]
            out = work / engine / f"{r['label']}.npy"
            if out.exists():
                entry["out"] = np.load(out)
    return found, notes
