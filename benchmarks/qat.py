"""QAT against PTQ: top-1 of fp32, PTQ int8 and QAT int8 on held-out labelled images, side by side.

Each case is a trained FasterNet and its image folder (train/val/test splits). PTQ is `fnx export --precision int8`
calibrated on the training split, once all-int8 (guard off) and once as the guard leaves it (default bound); QAT
is `fnx train --qat` (the CLI's defaults: fnx.training.qat.QAT_DEFAULTS) then `fnx export --from-qat`. Every artifact is
scored by `fnx eval` on the test split, which neither calibration nor QAT saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmarks.context import REPO, Ctx
from benchmarks.report import Section, Table

NAME = "qat"
TITLE = "int8 accuracy: PTQ against quantization-aware training (QAT)"
DEMO = REPO / "fnx" / "demo" / "fasternet_t0_digits.safetensors"
GUARD_OFF = {"min_cosine": 0.0, "max_top1_drop": None}


@dataclass
class Case:
    title: str
    data: Callable[[Ctx], Path]  # -> an image folder with train/, val/ and test/
    weights: Callable[[Ctx, Path], Path]  # (ctx, data) -> the trained fp32 checkpoint


def _digits(ctx: Ctx) -> Path:
    from fnx.demo.digits import build_digits

    return build_digits(ctx.work / "qat" / "digits")


def _noisy_digits(ctx: Ctx) -> Path:
    """The digits with random contrast (x0.4-1.0) and Gaussian noise (sigma 0.9 of full scale), fixed seed."""
    import numpy as np
    from PIL import Image

    src, dst = _digits(ctx), ctx.work / "qat" / "noisy_digits"
    if (dst / ".complete").is_file():
        return dst
    rng = np.random.default_rng(0)
    for p in sorted(src.rglob("*.png")):
        a = np.asarray(Image.open(p).convert("L"), dtype=np.float32)
        a = a * rng.uniform(0.4, 1.0) + rng.normal(0, 0.9 * 255, a.shape)
        out = dst / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB").save(out)
    (dst / ".complete").write_text("done\n")
    return dst


def _train_sharp(ctx: Ctx, data: Path) -> Path:
    """FasterNet-T0 at 32 px trained hard on the noisy digits: lr 5e-3, no weight decay or label smoothing."""
    from fnx.training.fit import TrainOptions, train

    out = ctx.work / "qat" / "t0_noisy32.pth"
    if not out.is_file():
        train("fasternet_t0", data, out, TrainOptions(epochs=20, batch_size=32, lr=5e-3, weight_decay=0.0,
                                                      label_smoothing=0.0, img_size=32))
    return out


CASES = (
    Case("digits demo: the shipped FasterNet-T0 (GELU), 64 px", _digits, lambda ctx, data: DEMO),
    Case("noisy digits: FasterNet-T0 (GELU), 32 px, trained without regularization", _noisy_digits, _train_sharp),
)


def _export(weights: Path, data: Path, out: Path, fmt: str, guard: dict | None = None, from_qat: Path | None = None):
    from fnx.calibration.options import Int8Options
    from fnx.exporter import ExportOptions, export_model

    int8 = Int8Options(data / "train", 256, **(guard or {}))
    opts = ExportOptions(formats=(fmt,), precision="int8", weights=None if from_qat else str(weights), out_dir=out,
                         data=data / "val", int8=int8, from_qat=from_qat)
    (res,) = export_model("fasternet_t0", opts)
    return res


def _case_rows(ctx: Ctx, case: Case) -> tuple[list[list], dict]:
    from fnx.evaluation import evaluate_many
    from fnx.training.fit import TrainOptions
    from fnx.training.qat import QAT_DEFAULTS, train_qat

    data = case.data(ctx)
    weights = case.weights(ctx, data)
    work = ctx.work / "qat" / weights.stem
    t0 = time.perf_counter()
    qat_ckpt = work / "qat.pth"
    side = train_qat("fasternet_t0", data, qat_ckpt, TrainOptions(**QAT_DEFAULTS, batch_size=32, weights=str(weights)))
    qat_s = time.perf_counter() - t0
    runs = {}
    for fmt in ("tflite", "onnx"):
        runs[f"PTQ {fmt}, all int8"] = _export(weights, data, work / f"ptq_raw_{fmt}", fmt, GUARD_OFF)
        runs[f"PTQ {fmt}, guarded"] = _export(weights, data, work / f"ptq_{fmt}", fmt)
        runs[f"QAT {fmt}"] = _export(weights, data, work / f"qat_{fmt}", fmt, from_qat=qat_ckpt)
    scored = evaluate_many([weights, *(r.artifact for r in runs.values())], data / "test", reference=weights)
    fp32 = scored["results"][0]
    rows = [[case.title, "fp32 (PyTorch)", f"{100 * fp32['top1']:.2f}", "", "", ""]]
    for (what, res), r in zip(runs.items(), scored["results"][1:]):
        cal = res.manifest.calibration
        rows.append([case.title, what, f"{100 * r['top1']:.2f}", f"{100 * (r['top1'] - fp32['top1']):+.2f}",
                     f"{100 * r['reference_agreement']:.2f}", str(len(cal.kept_float))])
    facts = {"images": scored["images"], "qat_s": qat_s, "qat_val": side.val_acc,
             "fp32_val": side.extra["qat"]["fp32_val_acc"], "top1": {row[1]: float(row[2]) for row in rows}}
    return rows, facts


def run(ctx: Ctx) -> Section:
    sec = Section(NAME, TITLE)
    rows, notes = [], []
    for case in CASES:
        case_rows, facts = _case_rows(ctx, case)
        rows += case_rows
        notes.append(f"{case.title}: {facts['images']} test images (one image = {100 / facts['images']:.2f} points); "
                     f"QAT took {facts['qat_s']:.0f} s (3 epochs); its fake-quant val top-1 "
                     f"{100 * facts['qat_val']:.2f}% against fp32 {100 * facts['fp32_val']:.2f}%.")
        sec.headline[case.title] = facts["top1"]
    sec.intro = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    sec.tables.append(Table("Top-1 on the test split (%), and against fp32", ["case", "model", "top-1 %",
                            "vs fp32 (points)", "agrees with fp32 %", "layers kept float"], rows,
                            "all int8: guard off (--min-cosine 0). guarded: the default guard (cosine >= 0.99 on "
                            "held-out calibration images), which keeps layers in float until it holds. QAT ONNX: the QAT "
                            "weights calibrated by ONNX Runtime (ONNX does not take PT2E ranges)."))
    sec.notes += notes
    return sec
