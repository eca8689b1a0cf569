"""int8 on this CPU: the form fnx's `--int8-form auto` chose per target beside each peer's default recipe
(benchmarks/int8_recipes.py), same weights, same calibration and held-out images, same bound.

FasterNet-T0 (GELU) and T2 (ReLU) at 224, lively random weights, synthetic images (calibration and held out: the
same seeded sets fnx's export reads). Latency: the bare engine call, 1 thread, all int8 files of one model timed in
interleaved blocks (ExecuTorch's programs too, through fnx's executorch engine); held-out cosine: the minimum over the held-out images
of the logits' cosine to PyTorch fp32, held to fnx's default int8 bound. Also: what auto costs in export time (the
same export with the target's default form forced, measured back to back).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from benchmarks import int8_recipes as recipes
from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f, ratio, short_error
from benchmarks.timing import engine_call, interleaved, stats
from fnx.parity import BOUNDS

NAME = "int8_peers"
TITLE = "int8 per target: fnx's measured choice beside each peer's default recipe"
MODELS = ("fasternet_t0", "fasternet_t2")
TARGETS = ("onnx", "openvino", "tflite", "executorch")
BOUND = BOUNDS["int8"]["min_cosine"]


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _export(ctx: Ctx, name: str, fmt: str, precision: str, form: str, n_calib: int, tag: str):
    """Return (ExportResult, seconds) of one fnx export (int8 from the synthetic set fnx reads)."""
    from fnx.calibration.options import Int8Options
    from fnx.exporter import ExportOptions, export_model
    from fnx.quiet import silenced

    opts = ExportOptions(formats=(fmt,), precision=precision, weights=str(checkpoint(ctx, name)), img_size=224,
                         out_dir=ctx.work / "int8_peers" / name / tag, verify=False,
                         int8=Int8Options("synthetic", n_calib, form=form))
    t0 = time.perf_counter()
    with silenced():
        (res,) = export_model(name, opts)
    return res, time.perf_counter() - t0


def _outputs(path: Path, held_nhwc: np.ndarray) -> np.ndarray:
    from fnx.runtime import load
    from fnx.runtime.preprocess import to_layout

    session = load(path, device="cpu", threads=1, check_manifest=False)
    return np.concatenate([session.run(to_layout(held_nhwc[i:i + 1], session.layout))[0] for i in range(len(held_nhwc))])


def _peers(ctx: Ctx, name: str, fp32: dict, cal, work: Path) -> dict[str, tuple[str, Path | Exception]]:
    """{label: (target, file or the error)} of every peer recipe for one model."""
    from fnx.exporter.fold import deploy_form
    from fnx.models import create_model

    calib_nchw = np.ascontiguousarray(cal.calib.transpose(0, 3, 1, 2))
    deployed = deploy_form(create_model(name, weights=str(checkpoint(ctx, name))).eval(), "split_cat")
    makers = {
        "ORT quantize_static defaults": ("onnx", lambda: recipes.ort_default(fp32["onnx"], work / "ort.onnx", calib_nchw)),
        "NNCF defaults": ("openvino", lambda: recipes.nncf_default(fp32["onnx"], work / "nncf.xml", calib_nchw)),
        "litert-torch PT2E defaults": ("tflite", lambda: recipes.litert_pt2e_default(deployed, work / "pt2e.tflite",
                                                                                      cal.calib)),
        "AI Edge Quantizer default (dynamic)": ("tflite", lambda: recipes.aeq_dynamic_default(fp32["tflite"],
                                                                                              work / "aeq.tflite")),
        "ExecuTorch XNNPACK defaults": ("executorch", lambda: recipes.executorch_default(deployed, work / "et.pte",
                                                                                         calib_nchw)),
    }
    out = {}
    for label, (target, make) in makers.items():
        ctx.log(f"    {name}: peer {label}")
        try:
            out[label] = (target, make())
        except Exception as e:  # noqa: BLE001 - a row saying so
            out[label] = (target, e)
    return out


def run(ctx: Ctx) -> Section:
    import torch

    from fnx.calibration.data import load_calibration
    from fnx.exporter.formats import get_format
    from fnx.manifest import Preprocessing
    from fnx.models import create_model
    from fnx.parity import cosine_per_sample

    sec = Section(NAME, TITLE)
    n_calib = 64 if ctx.quick else 128
    runs, warmup = (30, 5) if ctx.quick else (100, 10)
    rows, cost_rows, head = [], [], {}
    for name in MODELS:
        cal = load_calibration("synthetic", Preprocessing.for_size(224), size=n_calib)  # what fnx's export reads
        with torch.no_grad():
            ref = create_model(name, weights=str(checkpoint(ctx, name))).eval()(
                torch.from_numpy(np.ascontiguousarray(cal.held_out.transpose(0, 3, 1, 2)))).numpy()
        work = ctx.work / "int8_peers" / name / "peers"
        work.mkdir(parents=True, exist_ok=True)
        fp32 = {t: _export(ctx, name, t, "fp32", "auto", n_calib, "fp32")[0].artifact for t in ("onnx", "tflite")}
        files: dict[str, tuple[str, Path | Exception]] = {}
        for fmt in TARGETS:
            default = get_format(fmt).int8_forms[0].name
            ctx.log(f"    {name}: fnx {fmt} int8, auto then {default} forced (load {loadavg()})")
            try:
                res, auto_s = _export(ctx, name, fmt, "int8", "auto", n_calib, f"{fmt}-auto")
                _, forced_s = _export(ctx, name, fmt, "int8", default, n_calib, f"{fmt}-forced")
            except Exception as e:  # noqa: BLE001 - a row saying so
                files[f"fnx {fmt}"] = (fmt, e)
                continue
            forms = res.manifest.calibration.forms
            files[f"fnx {fmt}: {forms.chosen}"] = (fmt, res.artifact)
            cost_rows.append([name, fmt, f(forced_s, 0), f(auto_s, 0), f(auto_s - forced_s, 0), forms.how,
                              f(forms.seconds, 0) if forms.seconds else "—", len([t for t in forms.candidates
                                                                                 if t.latency_ms is not None])])
            head[(name, fmt, "forms")] = forms.to_dict()
            head[(name, fmt, "export_s")] = {"auto": auto_s, "forced": forced_s}
        files.update(_peers(ctx, name, fp32, cal, work))
        made = {k: v for k, v in files.items() if not isinstance(v[1], Exception)}
        calls = {k: engine_call(path, None, 1)[0] for k, (_, path) in made.items()}
        before = loadavg()
        ms = {k: stats(t)["median_ms"] for k, t in interleaved(calls, warmup, runs).items()}
        ctx.log(f"    {name}: timed {len(ms)} int8 files at 1 thread (load {before} -> {loadavg()})")
        cos = {k: float(cosine_per_sample(ref, _outputs(p, cal.held_out)).min()) for k, (_, p) in made.items()}
        for label, (target, path) in files.items():
            if isinstance(path, Exception):
                rows.append([name, target, label, "—", "—", "—", f"failed: {short_error(path, 120)}"])
                continue
            head[(name, label)] = {"target": target, "ms1": ms[label], "cosine": cos[label]}
            rows.append([name, target, label, f(ms[label], 2), f"{cos[label]:.5f}",
                         "yes" if cos[label] >= BOUND else "no", ""])
        sec.notes.append(f"{name}: load average {before} before timing, {loadavg()} after")
    sec.tables.append(Table(
        "int8, 1 thread, batch 1 (median ms of the bare engine call), held-out cosine (min) vs PyTorch fp32",
        ["model", "target", "recipe", "ms", "cosine", f">= {BOUND}", "note"], rows,
        "fnx rows: the form `--int8-form auto` chose (its manifest lists every candidate). Peers: their documented "
        "default recipe on fnx's fp32 file or model and fnx's calibration images."))
    sec.tables.append(Table(
        "What auto costs: export time, s (int8 of one target, this run; the target's default form forced vs auto)",
        ["model", "target", "default form forced", "auto", "added", "how chosen", "measuring", "forms timed"],
        cost_rows))
    sec.notes.extend(_notes(head))
    sec.intro = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    sec.headline = {f"{k[0]}/{k[1]}" + (f"/{k[2]}" if len(k) > 2 else ""): v for k, v in head.items()}
    return sec


def _notes(head: dict) -> list[str]:
    """Per model: fnx's fastest int8 within the bound against each peer's; a faster peer within the bound said, with
    why its recipe differs."""
    notes = []
    for name in MODELS:
        rows = {k[1]: v for k, v in head.items() if k[0] == name and len(k) == 2}
        ours = {k: v for k, v in rows.items() if k.startswith("fnx ") and v["cosine"] >= BOUND}
        if not ours:
            notes.append(f"{name}: no fnx int8 held the bound here")
            continue
        best = min(ours, key=lambda k: ours[k]["ms1"])
        parts = []
        for label, v in rows.items():
            if label.startswith("fnx "):
                continue
            holds = v["cosine"] >= BOUND
            speed = ratio(v["ms1"], ours[best]["ms1"])
            if holds and v["ms1"] < ours[best]["ms1"]:
                parts.append(f"**{label} is faster within the bound** ({speed} of fnx's time; why: "
                             f"{recipes.WHY.get(label, '?')})")
            else:
                parts.append(f"{label} {speed} fnx's time" + ("" if holds else f", cosine {v['cosine']:.5f} < {BOUND}"))
        notes.append(f"{name}: fnx's fastest int8 within the bound is {best} ({ours[best]['ms1']:.2f} ms); "
                     + "; ".join(parts) + ".")
    return notes
