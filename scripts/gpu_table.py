"""The GPU check's table: FasterNet-T0/T2 at 224, fp32/fp16/int8 ONNX on ONNX Runtime's CPU, CUDA and TensorRT.

Run by scripts/gpu_check.sh on a machine with an NVIDIA GPU; argv[1] is the JSON to write. Each row: median ms
(batch 1, after warm-up) and the logits cosine against the same artifact on the CPU provider.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def median_ms(session, x: np.ndarray, warmup: int = 20, runs: int = 200) -> float:
    for _ in range(warmup):
        session.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main(out: Path) -> None:
    from fnx.calibration.options import Int8Options
    from fnx.dev import ExportRecipe, cached_export
    from fnx.parity import cosine_per_sample
    from fnx.runtime import load

    work = Path(tempfile.mkdtemp(prefix="fnx-gpu-"))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    rows = []
    for name in ("fasternet_t0", "fasternet_t2"):
        for precision in ("fp32", "fp16", "int8"):
            recipe = ExportRecipe(name, "onnx", precision, img_size=224, int8=Int8Options("synthetic", 64, min_cosine=0.5),
                                  verify=False)
            art = cached_export(recipe, work)
            ref = load(art, device="cpu").run(x)[0]
            for device in ("cpu", "cuda", "tensorrt"):
                row = {"model": name, "precision": precision, "device": device}
                try:
                    s = load(art, device=device)
                    row.update(engine=s.engine_label, ms=median_ms(s, x),
                               cosine_vs_cpu=float(cosine_per_sample(ref, s.run(x)[0]).min()))
                except Exception as e:  # noqa: BLE001 - reported in the table
                    row["error"] = f"{type(e).__name__}: {e}"[:200]
                rows.append(row)
                print(f"{name:14s} {precision:5s} {device:9s} " + (f"{row['ms']:8.3f} ms  cosine {row['cosine_vs_cpu']:.5f}"
                      if "ms" in row else row["error"]), flush=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_check.json"))
