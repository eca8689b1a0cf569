"""GELU in int8 TFLite: exact GELU (TFLite's int8 kernel, outside XNNPACK) against `--gelu-form sigmoid`.

FasterNet-T0 and T1 (lively weights, 224 px, synthetic calibration) exported int8 both ways; for each: XNNPACK
partitions (DELEGATE nodes in LiteRT's interpreter), the file's ops, latency on 1 thread and the rate
in GOPS over the model's MACs, as a share of a dense int8 3x3 conv stack's rate in the same run (the reference the
paper's FLOPS argument uses); and the int8 held-out cosine against PyTorch fp32 (exact GELU) from the export's guard.
"""

from __future__ import annotations

import numpy as np

from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f
from benchmarks.timing import time_engine

NAME = "gelu_forms"
TITLE = "GELU in int8: the exact op against x*sigmoid(1.702x), partitions and GOPS"
MODELS = ("fasternet_t0", "fasternet_t1")


def _partitions(path) -> tuple[int, dict[str, int]]:
    """(XNNPACK partitions: DELEGATE nodes in LiteRT's interpreter, {op: count} of the file's own ops)."""
    from ai_edge_litert.interpreter import Interpreter

    from fnx.targets.tflite.graph import tflite_op_counts

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    delegates = sum(o["op_name"] == "DELEGATE" for o in interpreter._get_ops_details())
    return delegates, dict(tflite_op_counts(path))


def _dense_int8_gops(ctx: Ctx, runs: int) -> float:
    import torch

    from benchmarks.operators import macs, make_stack, to_tflite

    path = ctx.work / "dense_int8_conv.tflite"
    x = torch.randn(1, 28, 28, 192)
    to_tflite(make_stack("Conv", 192), x, path, int8=True)
    ms = np.median(time_engine(path, x.numpy(), 5, runs, engine="litert"))
    return macs("Conv", 192, 28) / (ms / 1e3) / 1e9


def run(ctx: Ctx) -> Section:
    from fnx.calibration.options import Int8Options
    from fnx.exporter import ExportOptions, export_model
    from fnx.models import count_flops, create_model

    runs = 20 if ctx.quick else 60
    dense = _dense_int8_gops(ctx, runs)
    rows, head = [], {}
    for name in MODELS:
        model_macs = count_flops(create_model(name, num_classes=1000), 224)
        for form in ("exact", "sigmoid"):
            (res,) = export_model(name, ExportOptions(
                formats=("tflite",), precision="int8", weights=str(checkpoint(ctx, name)), img_size=224,
                out_dir=ctx.work / "gelu_forms" / form, gelu_form=form, verify=False,
                int8=Int8Options("synthetic", 32, min_cosine=0.5)))
            parts, ops = _partitions(res.artifact)
            x = np.zeros((1, 224, 224, 3), np.float32)
            ms = float(np.median(time_engine(res.artifact, x, 5, runs, engine="litert")))
            gops = model_macs / (ms / 1e3) / 1e9
            cosine = res.manifest.calibration.report.cosine_min
            head[(name, form)] = {"ms": ms, "gops": gops, "share": gops / dense, "partitions": parts}
            rows.append([name.replace("fasternet_", "").upper(), form, parts,
                         ", ".join(f"{k} x{v}" for k, v in sorted(ops.items())), f(ms), f(gops),
                         f"{100 * gops / dense:.0f}%", f"{cosine:.5f}"])
    sec = Section(NAME, TITLE)
    sec.intro = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    sec.tables.append(Table(
        "int8 TFLite, LiteRT (XNNPACK), 1 thread, batch 1",
        ["model", "GELU form", "XNNPACK partitions", "ops in the file", "ms", "GOPS (MACs/s)", "vs dense int8 conv",
         "held-out cosine"], rows,
        f"dense int8 conv: a 10-layer 192-channel 3x3 conv stack at 28x28, int8 PT2E, {f(dense)} GOPS in this run. "
        f"held-out cosine: the export guard's minimum over held-out synthetic images, against PyTorch fp32 (exact "
        f"GELU). {runs} timed runs per row."))
    for name in MODELS:
        e, s = head[(name, "exact")], head[(name, "sigmoid")]
        sec.notes.append(f"{name}: sigmoid form {e['ms'] / s['ms']:.2f}x the exact form's speed; {100 * s['share']:.0f}% "
                         f"of the dense int8 rate (exact: {100 * e['share']:.0f}%).")
    sec.headline = {"dense_int8_gops": dense, **{f"{n}/{fm}": v for (n, fm), v in head.items()}}
    return sec
