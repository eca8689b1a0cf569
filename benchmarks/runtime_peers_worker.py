"""Runs inside a peer's benchmark-only venv (never fnx's): one FasterNet on ExecuTorch (XNNPACK, fp32 and PT2E
int8) or ncnn (fp32, converted by pnnx), timed at each thread count; logits saved for the caller's cosine.

    python runtime_peers_worker.py ENGINE MODEL WEIGHTS INPUTS.npy CALIB.npy WORK --threads 1,2 --runs N --warmup N

fnx is not installed there: the model comes from this checkout's fnx.models (torch + safetensors only).
Prints one JSON list of rows: {"label", "threads", "median_ms"} or {"label", "error"}; WORK/<label>.npy holds the
logits for INPUTS (NCHW float32, preprocessed as fnx does).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import median_ms  # noqa: E402  (numpy only: importable in a peer's venv)


def executorch_rows(model, x, calib, threads, warmup, runs, work: Path) -> list[dict]:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    example = (torch.from_numpy(x[:1]),)
    rows = []
    for precision in ("fp32", "int8"):
        label = f"ExecuTorch XNNPACK {precision}"
        try:
            program = torch.export.export(model, example)
            if precision == "int8":  # PT2E with XNNPACK's own quantizer, per-channel symmetric weights
                from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                    XNNPACKQuantizer, get_symmetric_quantization_config)
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                prepared = prepare_pt2e(program.module(), XNNPACKQuantizer().set_global(
                    get_symmetric_quantization_config(is_per_channel=True)))
                with torch.no_grad():
                    for i in range(len(calib)):
                        prepared(torch.from_numpy(calib[i:i + 1]))
                program = torch.export.export(convert_pt2e(prepared), example)
            pte = work / f"{label.replace(' ', '_')}.pte"
            pte.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
                            .to_executorch().buffer)
        except Exception as e:  # noqa: BLE001 - a row saying so
            rows.append({"label": label, "error": f"export: {type(e).__name__}: {str(e)[:200]}"})
            continue
        for t in threads:
            method = None
            gc.collect()
            portable_lib._unsafe_reset_threadpool(t)  # resize with nothing loaded: resizing under a loaded XNNPACK
            method = Runtime.get().load_program(pte).load_method("forward")  # method crashed ExecuTorch 1.4.1
            if t == threads[0]:
                out = np.concatenate([method.execute([torch.from_numpy(x[i:i + 1])])[0].numpy() for i in range(len(x))])
                np.save(work / f"{label}.npy", out)
            first = torch.from_numpy(x[:1])
            rows.append({"label": label, "threads": t, "median_ms": median_ms(lambda: method.execute([first]), warmup,
                                                                                runs), "mb": pte.stat().st_size / 1e6})
    return rows


def ncnn_rows(model, x, threads, warmup, runs, work: Path) -> list[dict]:
    import ncnn
    import pnnx
    import torch

    label = "ncnn fp32"
    folder = work / "ncnn"
    folder.mkdir(exist_ok=True)
    cwd, saved = os.getcwd(), os.dup(1)
    os.chdir(folder)  # pnnx writes beside the traced file, and chats on stdout (the caller reads JSON there)
    os.dup2(2, 1)
    try:
        pnnx.export(model, str(folder / "model.pt"), (torch.from_numpy(x[:1]),), fp16=False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.chdir(cwd)
    rows = []
    for t in threads:
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.num_threads = t
        for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            if hasattr(net.opt, flag):  # strict fp32: ncnn's defaults may store in fp16/bf16 on x86
                setattr(net.opt, flag, False)
        net.load_param(str(folder / "model.ncnn.param"))
        net.load_model(str(folder / "model.ncnn.bin"))

        def infer(img: np.ndarray) -> np.ndarray:
            ex = net.create_extractor()
            ex.input("in0", ncnn.Mat(np.ascontiguousarray(img)))
            return np.array(ex.extract("out0")[1]).reshape(1, -1)

        if t == threads[0]:
            np.save(work / f"{label}.npy", np.concatenate([infer(x[i]) for i in range(len(x))]))
        rows.append({"label": label, "threads": t, "median_ms": median_ms(lambda: infer(x[0]), warmup, runs),
                     "mb": (folder / "model.ncnn.bin").stat().st_size / 1e6})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("engine", "model", "weights", "inputs", "calib", "work"):
        ap.add_argument(name)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    from fnx.models import create_model

    model = create_model(a.model, weights=a.weights).eval()
    x, calib, work = np.load(a.inputs), np.load(a.calib), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    threads = [int(t) for t in a.threads.split(",")]
    try:
        rows = (executorch_rows(model, x, calib, threads, a.warmup, a.runs, work) if a.engine == "executorch"
                else ncnn_rows(model, x, threads, a.warmup, a.runs, work))
    except Exception as e:  # noqa: BLE001 - reported by the caller
        rows = [{"label": a.engine, "error": f"{type(e).__name__}: {str(e)[:300]}"}]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
