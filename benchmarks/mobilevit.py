"""FasterNet-T0 vs MobileViT-XXS (the paper's headline CPU comparison), same engine, same protocol.

timm needs torchvision, which fnx's own venv must not get: the measurement runs as a subprocess in a
separate venv (`.venv-bench` at the repo root, created here if missing: pip install torch==2.14.1
torchvision==0.29.1 timm onnx onnxruntime, given at most 5 minutes; it holds a `.gitignore` of `*`
so git never sees it). FasterNet is imported from the repo (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from benchmarks.context import REPO, Ctx
from benchmarks.report import PAPER_CPU_MS, Section, Table, f, ratio
from benchmarks.venvs import side_venv

NAME = "mobilevit"
TITLE = "FasterNet-T0 vs MobileViT-XXS"
VENV = Path(os.environ.get("FNX_BENCH_VENV", REPO / ".venv-bench"))
PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "timm", "onnx", "onnxruntime"]
SETUP_TIMEOUT_S = 300
PAPER = {"FasterNet-T0": {"ms": PAPER_CPU_MS["fasternet_t0"], "top1": 71.9, "gflops": 0.34},
         "MobileViT-XXS": {"ms": PAPER_CPU_MS["mobilevit_xxs"], "top1": 69.0, "gflops": 0.42}}


def ensure_venv(ctx: Ctx) -> tuple[Path | None, str]:
    """Return (python of the benchmark venv, how it was found or made) or (None, why not)."""
    return side_venv(ctx, VENV, PACKAGES, ("timm", "torchvision", "onnxruntime", "onnx"), SETUP_TIMEOUT_S)


def run(ctx: Ctx) -> Section:
    sec = Section(NAME, TITLE)
    py, how = ensure_venv(ctx)
    if py is None:
        sec.skipped = how
        return sec
    warmup, runs = 10, (50 if ctx.quick else 200)
    out = ctx.work / "mobilevit.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([str(py), str(REPO / "benchmarks" / "mobilevit_worker.py"), str(ctx.work), str(warmup),
                               str(runs), str(out)], env=env, capture_output=True, timeout=900, cwd=ctx.work)
    except subprocess.TimeoutExpired:
        sec.skipped = "the worker ran over 15 minutes"
        return sec
    if proc.returncode or not out.exists():
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        sec.skipped = f"the worker failed: {err[0][:300]}"
        return sec
    data = json.loads(out.read_text())
    res = data["results"]
    cols = ["eager, BN folded", "eager, unfolded", "ORT fp32"]
    rows = []
    for name in ("FasterNet-T0", "MobileViT-XXS"):
        r = res[name]
        rows.append([name, f(r["params_m"], 2), f(PAPER[name]["ms"])]
                    + [f(r[c]["median_ms"], 2) if c in r else "—" for c in cols])
    t0, mv = res["FasterNet-T0"], res["MobileViT-XXS"]
    rat = {c: (mv[c]["median_ms"] / t0[c]["median_ms"] if c in t0 and c in mv else None) for c in cols}
    rows.append(["**MobileViT-XXS / FasterNet-T0**", "", f"**{PAPER['MobileViT-XXS']['ms'] / PAPER['FasterNet-T0']['ms']:.2f}x**"]
                + [f"**{rat[c]:.2f}x**" if rat[c] else "—" for c in cols])
    sec.tables.append(Table(
        f"Median ms, batch 1, 1 thread, {warmup} warm-up + {runs} runs ({', '.join(f'{k} {v}' for k, v in data['versions'].items())})",
        ["model", "params (M)", "paper CPU ms"] + cols, rows,
        "ORT rows are exported unfolded at opset 20; ONNX Runtime fuses Conv+BN itself."))
    # fnx's deployment, measured in this same run by `models` (fnx's venv), beside the same-engine ratio
    models = ctx.cache.get("sections", {}).get("models")
    deploy = {}
    if models is not None and "fasternet_t0" in models.headline.get("median", {}):
        d = models.headline["median"]["fasternet_t0"]
        mv_best = min(mv[c]["median_ms"] for c in cols if c in mv)
        drows = []
        for e in ("LiteRT fp32", "LiteRT int8", "ORT int8"):
            if e in d:
                deploy[e] = mv_best / d[e]
                drows.append([f"FasterNet-T0, fnx {e}", f(d[e], 2), f(mv_best, 2), ratio(mv_best, d[e])])
        sec.tables.append(Table("fnx's deployment of FasterNet-T0 against MobileViT-XXS at its best measured engine",
                                ["FasterNet-T0 artifact (from `models`)", "T0 ms", "MobileViT-XXS best ms", "ratio"], drows,
                                "Not a same-engine ratio: it shows what deploying with fnx changes, not the architectures' "
                                "relative speed. MobileViT-XXS was not converted to TFLite here."))
    sec.intro = ("The paper reports MobileViT-XXS at 30.8 ms and FasterNet-T0 at 9.2 ms on its CPU (3.35x). Here both "
                 f"run in the same engines ({how}); weights are lively random re-initializations of both.")
    sec.notes = data["notes"]
    sec.headline = {"ratio": rat, "paper": PAPER["MobileViT-XXS"]["ms"] / PAPER["FasterNet-T0"]["ms"], "deploy": deploy}
    return sec
