"""A peer converter: ONNX -> onnx2tf -> TFLite (what Ultralytics does) against fnx's litert-torch TFLite.

onnx2tf pins TensorFlow 2.19 and numpy < 2, so it runs as a subprocess from a separate venv
(`.venv-peers` at the repo root, created here if missing within 5 minutes; it holds a `.gitignore`
of `*`). Both converters start from the same weights: onnx2tf converts fnx's own fp32 ONNX export,
and its int8 model is calibrated on the same synthetic images fnx calibrates on. Both TFLite files
then run on the same engine (ai-edge-litert, XNNPACK, 1 thread) in this process.

Offline note: onnx2tf fetches a sample-image file from GitHub at conversion time (for its own checks)
unless `calibration_image_sample_data_20x128x128x3_float32.npy` lies in its working directory; the
harness puts a local file of that shape there (random images). Calibration uses `-cind`.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks.context import REPO, Ctx, artifacts, checkpoint
from benchmarks.report import Section, Table, f, pretty, short_error
from benchmarks.timing import run_float, stats, time_engine
from benchmarks.venvs import side_venv
from fnx.parity import cosine_per_sample

NAME = "peers"
TITLE = "Peer converter: ONNX -> onnx2tf -> TFLite"
VENV = Path(os.environ.get("FNX_PEERS_VENV", REPO / ".venv-peers"))
PACKAGES = ["tensorflow==2.19.*", "tf-keras==2.19.*", "numpy<2", "onnx2tf", "onnx", "onnxslim", "onnx_graphsurgeon",
            "sng4onnx", "simple_onnx_processing_tools", "psutil", "h5py", "ml_dtypes", "flatbuffers", "protobuf"]
SETUP_TIMEOUT_S = 300
SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def ensure_venv(ctx: Ctx) -> tuple[Path | None, str]:
    python, how = side_venv(ctx, VENV, PACKAGES, ("onnx2tf", "tensorflow"), SETUP_TIMEOUT_S)
    exe = VENV / "bin" / "onnx2tf"
    return (exe, how) if python is not None and exe.exists() else (None, how if python is None else "no onnx2tf")


def run_tflite(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """Float outputs of a TFLite file for a batch, one image at a time (int8 I/O handled by fnx's Session)."""
    return np.concatenate([run_float(path, img[None].astype(np.float32)).reshape(1, -1) for img in x_nhwc])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(cosine_per_sample(a, b).min())


def run(ctx: Ctx) -> Section:
    import torch

    from fnx.calibration.data import load_calibration
    from fnx.targets.tflite.graph import tflite_op_counts
    from fnx.manifest import Preprocessing
    from fnx.models import create_model

    sec = Section(NAME, TITLE)
    exe, how = ensure_venv(ctx)
    if exe is None:
        sec.skipped = how
        return sec
    warmup, runs = 10, (50 if ctx.quick else 200)
    names = ["fasternet_t0"] if ctx.quick else ["fasternet_t0", "fasternet_t2"]
    cal = load_calibration("synthetic", Preprocessing.for_size(224), size=32, held_out=8)
    rows, fid_rows, notes, head = [], [], [], {}
    for name in names:
        fp32, int8 = artifacts(ctx, name, "fp32"), artifacts(ctx, name, "int8", ("tflite",))
        if isinstance(fp32["onnx"], Exception):
            notes.append(f"{pretty(name)}: fnx's ONNX export failed ({short_error(fp32['onnx'])})")
            continue
        folder = ctx.work / f"onnx2tf_{name}"
        folder.mkdir(exist_ok=True)
        np.save(folder / SAMPLE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
        np.save(folder / "calib.npy", cal.calib[:20].astype(np.float32))
        cmd = [str(exe), "-i", str(fp32["onnx"]), "-o", str(folder / "out"), "-oiqt", "-cind", "input",
               str(folder / "calib.npy"), "[[[[0.0,0.0,0.0]]]]", "[[[[1.0,1.0,1.0]]]]", "-n"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=folder, capture_output=True, timeout=600,
                                  env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        except subprocess.TimeoutExpired:
            notes.append(f"{pretty(name)}: onnx2tf ran over 10 minutes")
            continue
        conv_s = time.perf_counter() - t0
        stem = Path(fp32["onnx"]).stem
        peer = {"fp32": folder / "out" / f"{stem}_float32.tflite", "int8": folder / "out" / f"{stem}_full_integer_quant.tflite"}
        if proc.returncode or not peer["fp32"].exists():
            err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            notes.append(f"{pretty(name)}: onnx2tf failed (rc {proc.returncode}): {err[0][:200]}")
            continue
        fnx_s = sum(v for k, v in ctx.cache.items() if isinstance(k, tuple) and k[0] == "export_s" and k[1] == name
                    and k[2] in ("fp32", "int8"))
        ours = {"fp32": fp32["tflite"], "int8": int8["tflite"]}
        # the same weights in PyTorch, for fidelity
        model = create_model(name, weights=str(checkpoint(ctx, name)), num_classes=1000).eval()
        with torch.no_grad():
            ref = model(torch.from_numpy(np.ascontiguousarray(cal.held_out.transpose(0, 3, 1, 2)))).numpy()
        x1 = cal.held_out[:1].astype(np.float32)
        for prec in ("fp32", "int8"):
            for who, path in (("fnx (litert-torch)", ours[prec]), ("onnx2tf", peer[prec])):
                if isinstance(path, Exception) or not Path(path).exists():
                    rows.append([pretty(name), prec, who, "—", "—", "—", "—", "not produced"])
                    continue
                ms = stats(time_engine(Path(path), x1, warmup, runs, engine="litert"))["median_ms"]
                ops = tflite_op_counts(Path(path))
                outs = run_tflite(Path(path), cal.held_out)
                fid = (f"max |diff| {np.abs(outs - ref).max():.1e}" if prec == "fp32" else f"cosine {cosine(outs, ref):.4f}")
                head[(name, prec, who)] = ms
                rows.append([pretty(name), prec, who, f(ms, 2), str(ops.get("TRANSPOSE", 0)), str(sum(ops.values())),
                             f"{Path(path).stat().st_size / 1e6:.1f}", fid])
        fid_rows.append([pretty(name), f(fnx_s, 0), f(conv_s, 0)])
        for prec in ("fp32", "int8"):
            a, b = head.get((name, prec, "fnx (litert-torch)")), head.get((name, prec, "onnx2tf"))
            if a and b:
                head[(name, prec, "ratio")] = b / a
        ctx.log(f"    {pretty(name)}: " + ", ".join(f"{k[1]} {k[2]} {v:.2f}" for k, v in head.items() if k[0] == name))
    sec.tables.append(Table(
        f"Same engine (LiteRT, XNNPACK, 1 thread, batch 1, {runs} runs), two converters",
        ["model", "precision", "converter", "median ms", "TRANSPOSE ops", "ops", "MB", "vs PyTorch fp32 (8 images)"], rows,
        "int8: fnx = PT2E static per-channel (litert-torch), onnx2tf = TFLiteConverter full-integer (int8 I/O), both "
        "calibrated on the same 20-32 synthetic images."))
    if fid_rows:
        sec.tables.append(Table("Conversion time, s (this run)", ["model", "fnx fp32 + int8 exports (ONNX and TFLite)",
                                                                "onnx2tf run (all its fp32/fp16/int8 variants)"], fid_rows))
    sec.intro = ("ONNX -> onnx2tf is the path Ultralytics and many model zoos take to TFLite. Here it converts fnx's "
                 f"own fp32 ONNX export ({how}). " + ", ".join(f"{k} {v}" for k, v in _peer_versions().items()))
    sec.notes = notes
    sec.headline = {"ms": {f"{k[0]}/{k[1]}/{k[2]}": v for k, v in head.items()}}
    return sec


def _peer_versions() -> dict:
    out = {}
    site = list((VENV / "lib").glob("python*/site-packages"))
    if not site:
        return out
    for dist in ("onnx2tf", "tensorflow"):
        hits = list(site[0].glob(f"{dist}-*.dist-info"))
        if hits:
            out[dist] = hits[0].name[len(dist) + 1:].removesuffix(".dist-info")
    return out
