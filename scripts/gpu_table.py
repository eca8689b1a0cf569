"""The GPU check's table: FasterNet-T0/T2 at 224, fp32/fp16/int8 ONNX through fnx on ONNX Runtime's CPU, CUDA and
TensorRT providers, beside PyTorch eager on the same GPU (fp32, fp16) as the peer.

Run by scripts/gpu_check.sh on a machine with an NVIDIA GPU. Each row: median ms at batch 1 (after warm-up) and the
logits cosine against the PyTorch fp32 model on the CPU (same lively random weights). One more row per model:
ONNX Runtime CUDA with TF32 on (what fnx turns off so fp32 stays fp32), to show what that choice costs.

    python scripts/gpu_table.py OUT.json [--work DIR] [--export-only]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_ms  # noqa: E402

MODELS = tuple(os.environ.get("FNX_GPU_MODELS", "fasternet_t0,fasternet_t2").split(","))
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda", "tensorrt")


def artifacts(work: Path) -> dict[tuple[str, str], Path]:
    """Export (or reuse from work/) every model x precision as ONNX at 224; random lively weights."""
    from fnx.calibration.options import Int8Options
    from fnx.dev import ExportRecipe, cached_export

    out = {}
    for name in MODELS:
        for precision in PRECISIONS:
            recipe = ExportRecipe(name, "onnx", precision, img_size=224,
                                  int8=Int8Options("synthetic", 32, min_cosine=0.5), verify=False)
            t0 = time.perf_counter()
            out[name, precision] = cached_export(recipe, work)
            print(f"export {name} {precision}: {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def torch_rows(name: str, weights: Path, x: np.ndarray, ref: np.ndarray) -> list[dict]:
    import torch

    from fnx.models import create_model
    from fnx.parity import cosine_per_sample

    if not torch.cuda.is_available():
        return [{"model": name, "path": "pytorch eager", "error": "torch sees no CUDA GPU"}]
    rows = []
    for dtype, label in ((torch.float32, "fp32"), (torch.float16, "fp16")):
        torch.backends.cudnn.allow_tf32 = False
        model = create_model(name, weights=str(weights)).eval().cuda().to(dtype)
        xt = torch.from_numpy(x).cuda().to(dtype)

        def step():
            with torch.no_grad():
                y = model(xt)
            torch.cuda.synchronize()
            return y

        got = step().float().cpu().numpy()
        rows.append({"model": name, "path": f"pytorch eager cuda {label}", "precision": label, "ms": median_ms(step, 20, 200),
                     "cosine": float(cosine_per_sample(ref, got).min())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fnx-gpu-work"))
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    arts = artifacts(args.work)
    if args.export_only:
        return
    import onnxruntime as ort
    import torch

    from fnx.models import create_model
    from fnx.parity import cosine_per_sample
    from fnx.runtime import load

    print("onnxruntime", ort.__version__, ort.get_available_providers(), "| torch", torch.__version__, flush=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    rows: list[dict] = []

    def report(row: dict) -> None:
        rows.append(row)
        figures = f"{row['ms']:8.3f} ms  cosine {row['cosine']:.6f}" if "ms" in row else row["error"]
        print(f"{row['model']:14s} {row['path']:34s} {figures}", flush=True)

    for name in MODELS:
        weights = args.work / f"{name}_1000_lively_seed0.pth"
        with torch.no_grad():
            ref = create_model(name, weights=str(weights)).eval()(torch.from_numpy(x)).numpy()
        for precision in PRECISIONS:
            for device in DEVICES:
                row = {"model": name, "path": f"fnx onnx {precision} {device}", "precision": precision, "device": device}
                try:
                    s = load(arts[name, precision], device=device)
                    got = s.run(x)[0]
                    row.update(engine=s.engine.describe(), ms=median_ms(lambda: s.run(x), 20, 200),
                               cosine=float(cosine_per_sample(ref, got).min()))
                except Exception as e:  # noqa: BLE001 - reported in the table
                    row["error"] = f"{type(e).__name__}: {e}"[:300]
                report(row)
        try:  # ONNX Runtime's own default on CUDA: TF32 on
            sess = ort.InferenceSession(str(arts[name, "fp32"]), providers=["CUDAExecutionProvider"],
                                        provider_options=[{"use_tf32": "1"}])
            if sess.get_providers()[0] != "CUDAExecutionProvider":
                raise RuntimeError(f"ONNX Runtime fell back to {sess.get_providers()[0]}")
            feed = {sess.get_inputs()[0].name: x}
            got = sess.run(None, feed)[0]
            report({"model": name, "path": "onnxruntime cuda fp32, TF32 on", "precision": "fp32", "device": "cuda",
                    "ms": median_ms(lambda: sess.run(None, feed), 20, 200), "cosine": float(cosine_per_sample(ref, got).min())})
        except Exception as e:  # noqa: BLE001
            report({"model": name, "path": "onnxruntime cuda fp32, TF32 on", "error": f"{type(e).__name__}: {e}"[:300]})
        for row in torch_rows(name, weights, x, ref):
            report(row)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
