"""GPU throughput beside gpu_table.py's batch-1 latency: T0/T2 dynamic-batch ONNX (fp32, fp16) on ONNX Runtime's
CUDA provider with its layout/TF32 options, and PyTorch eager (fp32, fp16, channels_last), at batch 1 and 64.

    python scripts/gpu_throughput.py OUT.json [--work DIR]

Rows: median ms per batch and images/s. ONNX Runtime takes numpy input (the host-to-GPU copy is in its figure, as
in fnx's Session); PyTorch's input is already on the GPU. The cosine is against PyTorch fp32 on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_ms  # noqa: E402

MODELS = tuple(os.environ.get("FNX_GPU_MODELS", "fasternet_t0,fasternet_t2").split(","))
BATCHES = (1, 64)
ORT_VARIANTS = {  # label: (precision, CUDA provider options)
    "fp32": ("fp32", {"use_tf32": "0"}),
    "fp32 tf32": ("fp32", {"use_tf32": "1"}),
    "fp32 nhwc": ("fp32", {"use_tf32": "0", "prefer_nhwc": "1"}),
    "fp16": ("fp16", {}),
    "fp16 nhwc": ("fp16", {"prefer_nhwc": "1"}),
    "fp16 nhwc heuristic": ("fp16", {"prefer_nhwc": "1", "cudnn_conv_algo_search": "HEURISTIC"}),
}


def export_dynamic(name: str, precision: str, weights: Path, work: Path) -> Path:
    from fnx.exporter import ExportOptions, export_model
    from fnx.quiet import silenced

    with silenced():
        (res,) = export_model(name, ExportOptions(formats=("onnx",), precision=precision, weights=str(weights),
                                                  img_size=224, dynamic_batch=True, verify=False,
                                                  out_dir=work / f"dyn-{name}-{precision}"))
    return res.artifact


def main() -> None:
    import onnxruntime as ort
    import torch

    from fnx.dev import write_lively_checkpoint
    from fnx.models import create_model
    from fnx.parity import cosine_per_sample

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fnx-gpu-work"))
    args = ap.parse_args()
    provider = "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() else "CPUExecutionProvider"
    cuda = torch.cuda.is_available()
    rows = []
    for name in MODELS:
        weights = write_lively_checkpoint(name, args.work / f"{name}_1000_lively_seed0.pth", 1000, 0)
        model = create_model(name, weights=str(weights)).eval()
        arts = {p: export_dynamic(name, p, weights, args.work) for p in ("fp32", "fp16")}
        for batch in BATCHES:
            x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            runs = 200 if batch == 1 else 30

            def add(path: str, fn, got) -> None:
                ms = median_ms(fn, warmup=10, runs=runs)
                row = {"model": name, "batch": batch, "path": path, "ms": ms, "img_s": batch * 1e3 / ms,
                       "cosine": float(cosine_per_sample(ref, got).min())}
                rows.append(row)
                print(f"{name:14s} b{batch:<3d} {path:34s} {ms:8.3f} ms {row['img_s']:9.0f} img/s  cos {row['cosine']:.6f}",
                      flush=True)

            for label, (precision, options) in ORT_VARIANTS.items():
                try:
                    sess = ort.InferenceSession(str(arts[precision]), providers=[provider],
                                                provider_options=[options if provider != "CPUExecutionProvider" else {}])
                    if sess.get_providers()[0] != provider:
                        raise RuntimeError(f"ONNX Runtime fell back to {sess.get_providers()[0]}")
                    feed = {sess.get_inputs()[0].name: x}
                    where = provider.replace("ExecutionProvider", "").lower()
                    add(f"onnxruntime {where} {label}", lambda: sess.run(None, feed), sess.run(None, feed)[0])
                except Exception as e:  # noqa: BLE001 - reported
                    print(f"{name} b{batch} onnxruntime {label}: {type(e).__name__}: {str(e)[:200]}", flush=True)
            if not cuda:
                continue
            for dtype, label in ((torch.float32, "fp32"), (torch.float16, "fp16"), (torch.float16, "fp16 channels_last")):
                torch.backends.cudnn.allow_tf32 = False
                fmt = torch.channels_last if "channels_last" in label else torch.contiguous_format
                m = create_model(name, weights=str(weights)).eval().cuda().to(dtype).to(memory_format=fmt)
                xt = torch.from_numpy(x).cuda().to(dtype).contiguous(memory_format=fmt)

                def step(m=m, xt=xt):
                    with torch.no_grad():
                        y = m(xt)
                    torch.cuda.synchronize()
                    return y

                add(f"pytorch eager {label}", step, step().float().cpu().numpy())
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
