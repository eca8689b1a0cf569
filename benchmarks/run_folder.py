"""`fnx run` on a folder, the whole process, against a plain loop over the same Session: at the engine threads and
decode workers fnx sizes for this machine and at the alternatives around them, each with its share of the bound.

The plain loop is what a user writes without fnx's pipeline: for each file Image.open, preprocess, Session.run,
top-5. Its CPU per image (the whole process) is the work of one image; the compute bound is the cores over it.
Usable alone: python -m benchmarks.run_folder ARTIFACT FOLDER [N].
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fnx.runtime.loadwatch import OtherLoad

ALTERNATIVES = ((1, 1), (2, 2), (1, 3), (2, 1))  # (engine threads, decode workers) tried beside the sized ones


def plain_loop(session, paths: list[Path], mode: str) -> dict:
    """Return img/s and CPU ms per image (whole process) of the plain loop over paths."""
    from PIL import Image

    from fnx.runtime.preprocess import preprocess, to_layout

    others, w0, c0 = OtherLoad(), time.perf_counter(), time.process_time()
    for p in paths:
        x = preprocess(Image.open(p) if mode == "exact" else p, session.preprocessing, mode=mode)  # fast: draft needs the path
        session.top(session.run(to_layout(x[None], session.layout))[0][0], 5, str(p))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"ips": len(paths) / wall, "cpu_ms": cpu * 1e3 / len(paths), "other_load": others.share()}


def fnx_run(artifact: Path, folder: Path, mode: str, threads: int | None = None, workers: int | None = None) -> dict:
    """Return `fnx run`'s own img/s, the whole process's (start-up included), its threads and workers."""
    cmd = [sys.executable, "-m", "fnx", "run", str(artifact), str(folder), "--preprocess", mode, "--json"]
    cmd += ["--threads", str(threads)] * (threads is not None) + ["--workers", str(workers)] * (workers is not None)
    others, t0 = OtherLoad(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"fnx run failed: {done.stderr.strip()[-400:]}")
    out = json.loads(done.stdout)
    return {"ips": out["images_per_s"], "process_ips": out["inputs"] / wall, "threads": out["threads"],
            "workers": out["workers"], "other_load": others.share()}


def compare(artifact: Path, folder: Path, modes=("exact", "fast"), log=print) -> list[dict]:
    """Return, per mode, the plain loop and fnx run at the sized and the alternative (threads, workers)."""
    from fnx.runtime import load
    from fnx.runtime.preprocess import list_images
    from fnx.runtime.sizing import size_pipeline, usable_cores

    paths, cores, rows = list_images(folder), usable_cores(), []
    for mode in modes:
        sized = size_pipeline(cores, mode)
        plain = plain_loop(load(artifact, threads=sized.threads), paths, mode)  # the Session fnx run opens
        bound = cores * 1e3 / plain["cpu_ms"]
        rows.append({"mode": mode, "what": "plain loop", "threads": sized.threads, "workers": 0, **plain,
                     "bound_ips": bound})
        log(f"    {mode}: plain loop {plain['ips']:.1f} img/s, {plain['cpu_ms']:.1f} CPU ms/img, bound {bound:.1f}")
        for threads, workers in [(None, None), *((t, w) for t, w in ALTERNATIVES if (t, w) != (sized.threads, sized.workers))]:
            r = fnx_run(artifact, folder, mode, threads, workers)
            rows.append({"mode": mode, "what": "fnx run" + (" (sized)" if threads is None else ""), **r,
                         "vs_plain": r["ips"] / plain["ips"], "fraction": r["ips"] / bound})
            log(f"    {mode}: fnx run {r['threads']} thr + {r['workers']} workers: {r['ips']:.1f} img/s "
                f"({r['ips'] / plain['ips']:.2f}x plain, {r['ips'] / bound:.0%} of bound; others {r['other_load'] or 0:.0%})")
    return rows


if __name__ == "__main__":
    art, folder = Path(sys.argv[1]), Path(sys.argv[2])
    for row in compare(art, folder, tuple(sys.argv[3:]) or ("exact", "fast")):
        print(json.dumps(row))
