"""The stem as a 4x4 stride-4 conv or as space-to-depth(4) then a 1x1 conv over 48 channels, per CPU engine and
in Vela's estimates for the Ethos-U.

FasterNet-T0 and T2 (lively weights, 224 px) exported by fnx's own pipeline with each stem form (`stem_form` of the
format set for the run): TFLite (LiteRT), ONNX (ONNX Runtime) and OpenVINO IR (OpenVINO), fp32 and int8 (synthetic
calibration, the guard at cosine 0.5: the forms are compared, not the calibration). Each engine times both forms
interleaved, 1 thread, batch 1. The int8 TFLite of each form is what `--format ethos-u` compiles: Vela compiles the
same file for an Ethos-U55-256 and an Ethos-U65-512 (estimates, not measurements).
"""

from __future__ import annotations

import contextlib
import shutil
import time

import numpy as np

from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f, pretty, short_error
from benchmarks.timing import engine_call, interleaved, torch_threads

NAME = "stem_forms"
TITLE = "The stem: 4x4 stride-4 conv or space-to-depth + 1x1, per engine and on the Ethos-U (Vela)"
MODELS = ("fasternet_t0", "fasternet_t2")
ENGINES = (("tflite", "litert"), ("onnx", "onnxruntime"), ("openvino", "openvino"))
VELA_TARGETS = ("ethos-u55-256", "ethos-u65-512")
WINS = 0.97  # space-to-depth / conv below this: a gain, not noise of interleaved runs on a shared machine


@contextlib.contextmanager
def stem_form(fmt: str, form: str):
    """Let the format export its stem in form for the duration (its class fact is left as it is)."""
    from fnx.exporter.formats import FORMATS

    FORMATS[fmt].stem_form = form
    try:
        yield
    finally:
        del FORMATS[fmt].stem_form


def _export(ctx: Ctx, name: str, fmt: str, precision: str, form: str):
    from fnx.calibration.options import Int8Options
    from fnx.exporter import ExportOptions, export_model

    with stem_form(fmt, form):
        (res,) = export_model(name, ExportOptions(
            formats=(fmt,), precision=precision, weights=str(checkpoint(ctx, name)), img_size=224,
            out_dir=ctx.work / NAME / form, int8=Int8Options("synthetic", 32, min_cosine=0.5)))
    return res


def _vela(ctx: Ctx, tflite_int8, target: str) -> dict:
    from fnx.targets.ethos_u.vela import compile_tflite

    copy = ctx.work / NAME / f"{tflite_int8.stem}_{target}.tflite"
    shutil.copyfile(tflite_int8, copy)
    t0 = time.perf_counter()
    e = compile_tflite(copy, target).estimate
    return {"s": time.perf_counter() - t0, "ms": e.latency_ms, "npu": e.ops_on_npu, "cpu": e.ops_on_cpu,
            "sram": e.sram_bytes / 1024, "off": e.off_chip_bytes / 1024, "cycles": e.cycles}


def run(ctx: Ctx) -> Section:
    from fnx.exporter.stem_form import STEM_FORMS
    from fnx.targets.tflite.graph import tflite_op_counts

    warmup, runs = (5, 40) if ctx.quick else (10, 150)
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype(np.float32)
    rows, vela_rows, notes, head = [], [], [], {}
    for name in MODELS:
        for precision in ("fp32", "int8"):
            for fmt, engine in ENGINES:
                calls, cos = {}, {}
                for form in STEM_FORMS:
                    try:
                        res = _export(ctx, name, fmt, precision, form)
                    except Exception as e:  # noqa: BLE001 - reported in the notes
                        notes.append(f"{pretty(name)} {fmt} {precision} {form}: {short_error(e)}")
                        continue
                    cos[form] = min(o.cosine for o in res.parity.outputs)
                    layout_x = x if res.manifest.input.layout == "NHWC" else x.transpose(0, 3, 1, 2).copy()
                    calls[form], _ = engine_call(res.artifact, layout_x, threads=1, engine=engine)
                    if fmt == "tflite":
                        head[(name, precision, "ops", form)] = dict(tflite_op_counts(res.artifact))
                    if fmt == "tflite" and precision == "int8":
                        for target in VELA_TARGETS:
                            head[(name, target, form)] = _vela(ctx, res.artifact, target)
                if len(calls) < 2:
                    continue
                with torch_threads(1):
                    ms = {k: float(np.median(v)) for k, v in interleaved(calls, warmup, runs).items()}
                head[(name, precision, engine)] = ms
                rows.append([pretty(name), precision, engine, f(ms["conv"], 2), f(ms["space_to_depth"], 2),
                             f"{ms['space_to_depth'] / ms['conv']:.3f}", f"{cos['conv']:.5f}",
                             f"{cos['space_to_depth']:.5f}"])
        for target in VELA_TARGETS:
            for form in STEM_FORMS:
                v = head.get((name, target, form))
                if v:
                    vela_rows.append([pretty(name), target, form, f(v["ms"], 2), v["npu"], v["cpu"], f(v["sram"], 0),
                                      f(v["off"], 0), f(v["cycles"] / 1e6, 2), f(v["s"], 1)])
    sec = Section(NAME, TITLE)
    sec.intro = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    sec.tables.append(Table(
        "CPU engines, 1 thread, batch 1 (ms, median)",
        ["model", "precision", "engine", "conv", "space-to-depth", "s2d / conv", "cosine conv", "cosine s2d"], rows,
        f"{runs} timed runs per form, the two forms interleaved. cosine: the export's parity check against PyTorch "
        f"fp32 (16 synthetic images), per form. s2d / conv < 1: space-to-depth is faster."))
    sec.tables.append(Table(
        "Vela 5.2 estimates of the int8 TFLite of each form (not measured on hardware)",
        ["model", "target", "stem form", "est. ms", "NPU ops", "CPU ops", "SRAM KiB", "off-chip KiB", "Mcycles",
         "compile s"], vela_rows,
        "U55-256: Ethos_U55_High_End_Embedded, Shared_Sram (weights in off-chip flash); U65-512: Ethos_U65_High_End, "
        "Dedicated_Sram (weights and arena in DRAM). NPU ops: TFLite ops Vela placed on the NPU (it splits the stride-4 "
        "stem into one op per output pixel: 56 x 56 = 3136 at 224 px)."))
    for name in MODELS:
        ops = {form: head.get((name, "int8", "ops", form)) for form in STEM_FORMS}
        if all(ops.values()):
            extra = {k: v - ops["conv"].get(k, 0) for k, v in ops["space_to_depth"].items() if v != ops["conv"].get(k)}
            notes.append(f"{pretty(name)} int8 TFLite: space-to-depth adds {extra} to the file's ops (litert-torch "
                         f"writes pixel_unshuffle as rank-4 reshapes and transposes).")
    sec.notes += notes
    sec.headline = {f"{n}/{a}/{b}": v for (n, a, b, *rest), v in head.items() if not rest and isinstance(v, dict)}
    sec.notes += verdict(sec.headline)
    return sec


def verdict(headline: dict) -> list[str]:
    """Return what the figures say about each target's form: Vela's estimated gain, the CPU engines' spread."""
    vela = [f"{k.split('/')[0]} {k.split('/')[1]}: {headline[k.replace('/conv', '/space_to_depth')]['ms'] / v['ms']:.2f}x"
            for k, v in headline.items() if k.endswith("/conv") and "ms" in v]
    cpu = {k: v["space_to_depth"] / v["conv"] for k, v in headline.items() if "space_to_depth" in v}
    lines = []
    if vela:
        lines.append("Vela's estimated latency with space-to-depth, as a share of the conv stem's: " + ", ".join(vela)
                     + ": the ethos-u target keeps space-to-depth (EthosUFormat.stem_form).")
    if cpu:
        best, worst = min(cpu, key=cpu.get), max(cpu, key=cpu.get)
        gains = sorted(k for k, r in cpu.items() if r < WINS)
        lines.append(f"CPU engines: space-to-depth / conv from {cpu[best]:.3f} ({best}) to {cpu[worst]:.3f} ({worst}); "
                     + (f"below {WINS} (a gain beyond this run's noise) only for {', '.join(gains)}." if gains else
                        f"none below {WINS}, so TFLite, ONNX and OpenVINO keep the conv stem."))
    return lines
