"""Engines and int8 forms side by side: the fastest FasterNet fnx can give on this CPU, and at what fidelity.

T0 (GELU) and T2 (ReLU) at 224, lively random weights, synthetic calibration (64 images; the guard's bound set low
so every path exists: fidelity is measured, not enforced). Each path is an fnx artifact on an fnx engine, timed
as the bare engine call (fnx.runtime's registry) in interleaved blocks, 1 and 2 threads; fidelity is the logits
cosine (min over 16 synthetic images) against the PyTorch fp32 model. ncnn and ExecuTorch are fnx targets (their
rows replace the peer rows of earlier reports, which ran them from side venvs): ncnn without int8 (its quantization
tools are in no wheel), ExecuTorch without fp16.
"""

from __future__ import annotations

import numpy as np

from benchmarks.context import Ctx, checkpoint
from benchmarks.report import Section, Table, f, ratio, short_error
from benchmarks.timing import engine_call, interleaved, stats
from fnx.parity import BOUNDS

NAME = "engines"
TITLE = "Engines and int8 forms: LiteRT, ONNX Runtime, OpenVINO, ncnn, ExecuTorch"
# (label, format, precision, int8 form, engine, inference precision)
PATHS = [
    ("LiteRT fp32", "tflite", "fp32", None, "litert", None),
    ("LiteRT int8 (PT2E)", "tflite", "int8", None, "litert", None),
    ("ORT fp32", "onnx", "fp32", None, "onnxruntime", None),
    ("ORT int8 qdq-s8s8 (v0.1)", "onnx", "int8", "qdq-s8s8", "onnxruntime", None),
    ("ORT int8 qdq-u8s8r (auto without VNNI)", "onnx", "int8", "qdq-u8s8r", "onnxruntime", None),
    ("ORT int8 qdq-u8s8 (auto with VNNI, ARM64)", "onnx", "int8", "qdq-u8s8", "onnxruntime", None),
    ("OpenVINO fp32 IR, f32", "openvino", "fp32", None, "openvino", None),
    ("OpenVINO fp32 IR, bf16", "openvino", "fp32", None, "openvino", "bf16"),
    ("OpenVINO int8 (NNCF)", "openvino", "int8", None, "openvino", None),
    ("ncnn fp32", "ncnn", "fp32", None, "ncnn", None),
    ("ncnn fp16 weights", "ncnn", "fp16", None, "ncnn", None),
    ("ExecuTorch fp32 (XNNPACK)", "executorch", "fp32", None, "executorch", None),
    ("ExecuTorch int8 per-channel (XNNPACK)", "executorch", "int8", "per-channel", "executorch", None),
    ("ExecuTorch int8 per-tensor (XNNPACK)", "executorch", "int8", "per-tensor", "executorch", None),
]


def _artifact(ctx: Ctx, name: str, fmt: str, precision: str, form: str | None):
    from fnx.calibration.options import Int8Options
    from fnx.dev import ExportRecipe, cached_export

    key = ("engines", name, fmt, precision, form)
    if key not in ctx.cache:
        int8 = Int8Options("synthetic", 64, min_cosine=0.5, **({"form": form} if form else {}))
        recipe = ExportRecipe(name, fmt, precision, img_size=224, weights=str(checkpoint(ctx, name)), int8=int8,
                              verify=False)
        try:
            ctx.cache[key] = cached_export(recipe, ctx.work / "exports")
        except Exception as e:  # noqa: BLE001 - reported in the table
            ctx.cache[key] = e
    return ctx.cache[key]


def _reference(ctx: Ctx, name: str, x_nchw: np.ndarray) -> np.ndarray:
    import torch

    from fnx.models import create_model

    model = create_model(name, weights=str(checkpoint(ctx, name)))
    with torch.no_grad():
        return model(torch.from_numpy(x_nchw)).numpy()


def run(ctx: Ctx) -> Section:
    from fnx.calibration.synthetic import synthetic_images
    from fnx.formats import artifact_digest
    from fnx.manifest import Preprocessing
    from fnx.parity import cosine_per_sample
    from fnx.runtime import load
    from fnx.runtime.engines import get_engine
    from fnx.runtime.preprocess import preprocess, to_layout

    sec = Section(NAME, TITLE)
    runs, warmup = (30, 5) if ctx.quick else (100, 10)
    x = np.stack([preprocess(im, Preprocessing.for_size(224)) for im in synthetic_images(16, size=256, seed=7)])
    rows, head = [], {}
    for name in ("fasternet_t0", "fasternet_t2"):
        ref = _reference(ctx, name, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        found: dict[str, tuple] = {}
        for label, fmt, precision, form, engine, hint in PATHS:
            if not get_engine(engine).available():
                rows.append([name, label, "-", "-", "-", "-", f"{engine} not installed"])
                continue
            art = _artifact(ctx, name, fmt, precision, form)
            if isinstance(art, Exception):
                rows.append([name, label, "-", "-", "-", "-", f"export failed: {short_error(art)}"])
                continue
            try:
                session = load(art, device="cpu", threads=1, engine=engine, inference_precision=hint)
            except Exception as e:  # noqa: BLE001 - e.g. no bf16 on this CPU
                rows.append([name, label, "-", "-", "-", "-", short_error(e)])
                continue
            out = session.run(to_layout(x, session.layout))[0]
            size = artifact_digest(art)[1] / 1e6  # every file of it (OpenVINO IR: .xml + .bin)
            found[label] = (art, engine, hint, float(cosine_per_sample(ref, out).min()), f"{size:.1f}")
        ms = {}
        for threads in (1, 2):
            calls = {label: engine_call(art, None, threads, engine, hint)[0]
                     for label, (art, engine, hint, _, _) in found.items()}
            ctx.log(f"    {name}: timing {len(calls)} paths at {threads} thread(s)")
            for label, t in interleaved(calls, warmup, runs).items():
                ms[(label, threads)] = stats(t)["median_ms"]
        base = {t: ms.get(("LiteRT fp32", t)) for t in (1, 2)}
        for label, (art, engine, hint, cos, mb) in found.items():
            rows.append([name, label, f(ms[(label, 1)], 2), f(ms[(label, 2)], 2), f"{cos:.5f}", mb,
                         f"{ratio(base[1], ms[(label, 1)])} / {ratio(base[2], ms[(label, 2)])}"])
            head[(name, label)] = {"ms1": ms[(label, 1)], "ms2": ms[(label, 2)], "cosine": cos}
    sec.tables.append(Table(
        "Bare engine latency (median ms, batch 1) and logits cosine vs PyTorch fp32",
        ["model", "path", "1 thr", "2 thr", "cosine", "MB", "vs LiteRT fp32 (1 / 2 thr)"], rows,
        "ORT int8 qdq-u8s8r: uint8 activations, 7-bit weights (reduce_range); qdq-u8s8: 8-bit weights; qdq-s8s8: v0.1's form. OpenVINO f32 is "
        "fnx's default compute precision; bf16 only where the CPU has it. fp32-quality means cosine >= 0.9999."))
    sec.notes.extend(_targets(head))
    sec.intro = ("Which engine and precision to ship on this CPU: `fnx bench all MODEL` prints the same comparison "
                 "for your own weights and data.")
    sec.headline = head
    return sec


def _targets(head: dict) -> list[str]:
    """The #14 targets' ratios, from this run."""
    notes = []
    for name in ("fasternet_t0", "fasternet_t2"):
        for t in (1, 2):
            key = f"ms{t}"
            paths = {label: v for (n, label), v in head.items() if n == name}
            if "LiteRT fp32" not in paths:
                continue
            fp32q = {k: v[key] for k, v in paths.items() if v["cosine"] >= 0.9999}
            best_q = min(fp32q, key=fp32q.get)
            onnx_old, onnx_new = paths.get("ORT int8 qdq-s8s8 (v0.1)"), paths.get("ORT int8 qdq-u8s8r (auto without VNNI)")
            onnx = (f"; ORT int8 qdq-u8s8r vs qdq-s8s8 {ratio(onnx_old[key], onnx_new[key])} (cosine "
                    f"{onnx_new['cosine']:.4f} vs {onnx_old['cosine']:.4f})") if onnx_old and onnx_new else ""
            within = {k: v[key] for k, v in paths.items() if v["cosine"] >= BOUNDS["int8"]["min_cosine"]}
            best = min(within, key=within.get)
            by_engine: dict[str, tuple[float, str]] = {}  # each engine's fastest path within int8's bound
            for label, ms in within.items():
                engine = next(p[4] for p in PATHS if p[0] == label)
                by_engine[engine] = min(by_engine.get(engine, (ms, label)), (ms, label))
            ranking = ", ".join(f"{label} {ms:.2f} ms" for ms, label in sorted(by_engine.values()))
            notes.append(f"{name}, {t} thread(s): fastest fp32-quality path {best_q}, "
                         f"{ratio(paths['LiteRT fp32'][key], fp32q[best_q])} vs LiteRT fp32{onnx}. fnx's fastest "
                         f"within int8's bound (cosine >= {BOUNDS['int8']['min_cosine']}): {best}. Each engine's "
                         f"fastest within it, in order: {ranking}.")
    return notes
