"""`fnx eval` on Ray against the single-process eval: what the engine costs on one machine, and what a full sweep
would take on N workers.

2,000 JPEGs at ImageNet's typical size (500x375, 10 WordNet-ID class folders), FasterNet-T0 ONNX fp32 and int8 (lively random
weights, 224). Single process: ONNX Runtime at its default threads (2 here). Ray: a local cluster of a head and a
second node (1 CPU each, started before timing), 2 actors of 1 thread; its time includes connecting, shipping the
artifacts and the actor pools. Both run the same scoring code; the figures must be identical.
"""

from __future__ import annotations

import os
import time

from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f

NAME = "scale"
TITLE = "Evaluation on a Ray cluster: overhead and sweep projection"
CLASSES, PER_CLASS, SIZE = 10, 200, (500, 375)
SWEEP_IMAGES, SWEEP_ARTIFACTS = 50_000, 12


def _data(ctx: Ctx, per_class: int):
    from fnx.dev.images import write_jpegs
    from fnx.labels import imagenet_1k

    root = ctx.work / f"scale-{per_class}"
    for c, wnid in enumerate(imagenet_1k().ids[:CLASSES]):  # ImageNet's val layout: one folder per WordNet ID
        write_jpegs(root / wnid, per_class, size=SIZE, seed=c)
    return root


def _artifacts(ctx: Ctx):
    from fnx.calibration.options import Int8Options
    from fnx.dev import ExportRecipe, cached_export

    weights = str(checkpoint(ctx, "fasternet_t0"))
    return [cached_export(ExportRecipe("fasternet_t0", "onnx", p, img_size=224, weights=weights, verify=False,
                                       int8=Int8Options("synthetic", 64, min_cosine=0.5)), ctx.work / "exports")
            for p in ("fp32", "int8")]


def run(ctx: Ctx) -> Section:
    sec = Section(NAME, TITLE, intro="Ray's own processes (GCS, raylets, actors) count as other processes in the "
                                    "load line of this section.")
    try:
        import ray  # noqa: F401
        from ray.cluster_utils import Cluster
    except ImportError:
        sec.skipped = "Ray is not installed (pip install 'fnx[scale]')"
        return sec
    from fnx.evaluation import evaluate_many

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    per_class = 50 if ctx.quick else PER_CLASS
    data, arts = _data(ctx, per_class), _artifacts(ctx)
    n = CLASSES * per_class
    t0 = time.perf_counter()
    local = evaluate_many(arts, data)
    local_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "object_store_memory": 200 << 20})
    cluster.add_node(num_cpus=1, object_store_memory=200 << 20)
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        on_ray = evaluate_many(arts, data, ray=cluster.address)
        ray_s = time.perf_counter() - t0
    finally:
        cluster.shutdown()
    keys = ("n", "top1", "top5", "per_class", "errors")
    same = all(a[k] == b[k] for a, b in zip(local["results"], on_ray["results"]) for k in keys)
    rows = [["single process (ORT default threads)", f(local_s, 1), f(1000 * local_s / (n * len(arts)), 2), "1.00x"],
            ["Ray, 2 nodes x 1 CPU, 2 actors", f(ray_s, 1), f(1000 * ray_s / (n * len(arts)), 2),
             f"{ray_s / local_s:.2f}x"]]
    sec.tables.append(Table(
        f"{n} images x {len(arts)} artifacts (T0 ONNX fp32 + int8), exact preprocessing",
        ["runner", "wall s", "ms per image per artifact", "vs single process"], rows,
        f"Ray cluster start (not in the Ray row): {start_s:.1f} s. Figures identical between the two runners: "
        f"{'yes' if same else 'NO'} (top-1 {100 * local['results'][0]['top1']:.2f}% / "
        f"{100 * local['results'][1]['top1']:.2f}%; random weights, so near chance)."))
    per_image = ray_s / (n * len(arts)) * 2  # CPU-seconds per image per artifact on one 1-CPU actor
    proj = []
    for workers in (2, 8, 32, 128):
        hours = SWEEP_IMAGES * SWEEP_ARTIFACTS * per_image / workers / 3600
        proj.append([str(workers), f(hours * 60, 0), f(hours, 2)])
    sec.tables.append(Table(
        f"Projected: {SWEEP_IMAGES:,} images x {SWEEP_ARTIFACTS} artifacts, 1-CPU actors like these",
        ["workers", "minutes", "hours"], proj,
        f"From the measured {1000 * per_image:.1f} CPU-ms per image per artifact (T0, decode + preprocess + "
        "inference, this CPU), assuming linear scaling and images read at that pace; larger models add their "
        "inference time (see the models section), the fast preprocessing cuts decode time."))
    sec.headline = {"ray_vs_local": ray_s / local_s, "identical": same, "local_s": local_s, "ray_s": ray_s}
    sec.notes.append(f"Target: Ray within 1.5x of the single process: {ray_s / local_s:.2f}x "
                     f"({'met' if ray_s / local_s <= 1.5 else 'not met'}); identical figures: {same}.")
    return sec
