"""PConv deploy forms: split + concat vs slicing (in-place write into a copy), per engine.

fnx exports split_cat to both formats (each format's pconv_form in fnx/exporter/formats/); this records why.
Both forms are exported the way the pipeline exports (fnx.exporter.onnx_export / tflite_export).
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from benchmarks.context import Ctx
from benchmarks.report import Section, Table, f, pretty, short_error
from benchmarks.timing import engine_call, interleaved, run_float, torch_threads
from fnx.dev import lively_model
from fnx.quiet import silenced

NAME = "pconv_forms"
TITLE = "PConv deploy forms: split+concat vs slicing"
FORMS = ("split_cat", "slicing")


def run(ctx: Ctx) -> Section:
    import torch

    from fnx.exporter import deploy_form
    from fnx.exporter.formats import FORMATS
    from fnx.targets.onnx.convert import export_onnx, onnx_op_counts, simplify_onnx
    from fnx.targets.tflite.convert import export_tflite
    from fnx.targets.tflite.graph import tflite_op_counts

    warmup, runs = (5, 40) if ctx.quick else (10, 150)
    sec = Section(NAME, TITLE)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    x_nhwc = x.permute(0, 2, 3, 1).contiguous()
    rows, ops_rows, res, notes = [], [], {}, []
    for name in ("fasternet_t0", "fasternet_t2"):
        model = lively_model(name)
        deployed = {form: deploy_form(model, form) for form in FORMS}
        with torch.no_grad():
            ref = deployed["split_cat"](x).numpy()
        calls: dict[str, dict] = {"eager": {}, "ort": {}, "litert": {}}
        for form, dep in deployed.items():
            r = res.setdefault((name, form), {})
            with torch.no_grad():
                r["eager_diff"] = float(np.abs(dep(x).numpy() - ref).max())
            calls["eager"][form] = lambda dep=dep: dep(x)
            onnx_path = ctx.work / f"{name}_{form}.onnx"
            t0 = time.perf_counter()
            try:
                with silenced():
                    export_onnx(dep, onnx_path, torch.zeros(1, 3, 224, 224), ["logits"])
                    simplify_onnx(onnx_path)
                r["onnx_s"] = time.perf_counter() - t0
                r["onnx_ops"] = onnx_op_counts(onnx_path)
                calls["ort"][form], _ = engine_call(onnx_path, x.numpy(), threads=1, engine="onnxruntime")
            except Exception as e:  # noqa: BLE001
                notes.append(f"{pretty(name)} {form} -> ONNX: {short_error(e)}")
            tfl_path = ctx.work / f"{name}_{form}.tflite"
            t0 = time.perf_counter()
            try:
                with silenced():
                    export_tflite(dep, tfl_path, torch.zeros(1, 224, 224, 3))
                r["tflite_s"] = time.perf_counter() - t0
                r["tflite_ops"] = tflite_op_counts(tfl_path)
                r["tflite_diff"] = float(np.abs(run_float(tfl_path, x_nhwc.numpy()) - ref).max())
                calls["litert"][form], _ = engine_call(tfl_path, x_nhwc.numpy(), threads=1, engine="litert")
            except Exception as e:  # noqa: BLE001
                r["tflite_s"] = time.perf_counter() - t0
                notes.append(f"{pretty(name)} {form} -> TFLite failed after {r['tflite_s']:.0f} s: {short_error(e)}")
        with torch_threads(1), torch.inference_mode():
            for engine, fns in calls.items():
                if fns:
                    for form, ms in interleaved(fns, warmup, runs).items():
                        res[(name, form)][engine] = float(np.median(ms))
        for form in FORMS:
            r = res[(name, form)]
            other = res[(name, [o for o in FORMS if o != form][0])]
            rows.append([pretty(name), form, f(r.get("eager"), 2), f(r.get("ort"), 2), f(r.get("litert"), 2),
                         f(r.get("onnx_s"), 1), f(r.get("tflite_s"), 1),
                         f"{r['eager_diff']:.1e}" + (f" / {r['tflite_diff']:.1e}" if "tflite_diff" in r else "")])
            ops_rows.append([pretty(name), form, _ops(r.get("onnx_ops"), other.get("onnx_ops")),
                             _ops(r.get("tflite_ops"), other.get("tflite_ops")),
                             str(sum(r["onnx_ops"].values())) if "onnx_ops" in r else "—",
                             str(sum(r["tflite_ops"].values())) if "tflite_ops" in r else "—"])
            ctx.log(f"    {pretty(name)} {form}: eager {f(r.get('eager'), 2)}  ORT {f(r.get('ort'), 2)}  "
                    f"LiteRT {f(r.get('litert'), 2)} ms")
    sec.tables.append(Table(
        f"Latency, median ms (batch 1, 1 thread, {runs} runs per form, the two forms interleaved) and conversion time",
        ["model", "PConv form", "PyTorch eager", "ONNX Runtime", "LiteRT fp32", "ONNX export s", "TFLite convert s",
         "max |diff| vs split_cat eager (eager / TFLite)"], rows))
    sec.tables.append(Table("What each form becomes in the graph: the op types whose counts differ between the forms",
                            ["model", "PConv form", "ONNX (after onnxslim)", "TFLite", "ONNX nodes", "TFLite ops"], ops_rows,
                            "All other ops (convs, GELU/ReLU, adds, head) are the same in both forms."))
    verdict = {}
    vrows = []
    for name in ("fasternet_t0", "fasternet_t2"):
        a, b = res[(name, "split_cat")], res[(name, "slicing")]
        v = {k: (b[k] / a[k] if a.get(k) and b.get(k) else None) for k in ("eager", "ort", "litert")}
        verdict[name] = v
        vrows.append([pretty(name)] + [f(v[k], 2, "x") for k in ("eager", "ort", "litert")])
    sec.tables.append(Table("slicing time / split_cat time (> 1: split_cat is faster)",
                            ["model", "PyTorch eager", "ONNX Runtime", "LiteRT fp32"], vrows,
                            f"fnx's choice (each format's pconv_form): { {n: fm.pconv_form for n, fm in FORMATS.items()} }."))
    sec.intro = ("The slicing form writes the conv's output into a copy of the input (`x[:, :c] = conv(x[:, :c])`); "
                 "split_cat splits the channels, convolves the first part and concatenates. Both compute the same "
                 "function (max |diff| column). Same lively random weights as `models`; each engine times the two "
                 "forms in alternating blocks of 10 runs.")
    sec.notes = notes
    sec.headline = {"ratio": verdict, "choice": {name: fmt.pconv_form for name, fmt in FORMATS.items()},
                    "ops": {f"{k[0]}/{k[1]}": {"onnx": v.get("onnx_ops"), "tflite": v.get("tflite_ops")} for k, v in res.items()}}
    return sec


def _ops(counts: Counter | None, other: Counter | None) -> str:
    """The op types of counts whose number differs from other's (the form's own ops)."""
    if counts is None:
        return "—"
    other = other or Counter()
    got = [f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if other.get(k) != v]
    return ", ".join(got) or "same as the other form"
