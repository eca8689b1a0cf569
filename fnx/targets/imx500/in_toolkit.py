"""Run by the imx500 toolchain's own Python (`python in_toolkit.py JOB.json`), never imported by fnx: it sees only
torch, numpy, Sony's MCT and imx500-converter. Quantizes fnx's model for the IMX500 with MCT's post-training
quantization, exports its quantized ONNX (what the converter reads), converts it with `imxconv-pt`, runs it on the
given inputs with ONNX Runtime and mct-quantizers' ops where the converter took it, and writes what it found.

JOB.json: model (a torch.fx GraphModule fnx traced from its deploy-form model and saved with torch.save, in this
job's own folder), calib (.npy, N x C x H x W float32), batch (calibration batch size), error_method (MCT's
QuantizationErrorMethod for activations), inputs (.npy, N x C x H x W float32), outputs (.npz written where
converted: output_0, ...), onnx (MCT's quantized ONNX, written), out_dir (the converter's output folder), log (the
converter's output), result (.json written).
"""

import functools
import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

RUN_BATCH = 16  # images per ONNX Runtime call: mct-quantizers' ops cost ~1 s a call on 2 cores, batch 1 or 16


def import_mct():
    """Import MCT beside torchvision's Python modules whose compiled ops cannot load (the index's torchvision 0.28.0
    is built for a CUDA torch; this torch is the CPU build): torchvision registers fake kernels for nms and qnms
    whatever loaded, so where its ops library does not load, their schemas are declared first. Calling either then
    raises (no kernel); MCT calls them only for detection models' NMS layers, never on a classifier."""
    import importlib.util

    import torch

    ops = Path(importlib.util.find_spec("torchvision").origin).with_name("_C.so")
    try:
        torch.ops.load_library(str(ops))
    except OSError:
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import model_compression_toolkit as mct

    return mct


def main(job_path: str) -> int:
    import onnxruntime as ort
    import torch
    from mct_quantizers import get_ort_session_options

    mct = import_mct()
    job = json.load(open(job_path))
    seconds = {}
    t0 = time.perf_counter()
    model = torch.load(job["model"], weights_only=False)  # fnx wrote it into this job's folder moments ago
    calib, batch = np.load(job["calib"]), job["batch"]

    def representative():
        for i in range(0, len(calib), batch):
            yield [calib[i:i + batch]]

    tpc = mct.get_target_platform_capabilities("pytorch", "imx500", target_platform_version="v1")
    method = mct.core.QuantizationErrorMethod[job["error_method"]]
    config = mct.core.CoreConfig(quantization_config=mct.core.QuantizationConfig(activation_error_method=method))
    quantized, _ = mct.ptq.pytorch_post_training_quantization(model, representative, core_config=config,
                                                              target_platform_capabilities=tpc)
    seconds["mct_ptq"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    torch.onnx.export = functools.partial(torch.onnx.export, dynamo=False)  # MCT's export needs the TorchScript one
    mct.exporter.pytorch_export_model(quantized, save_model_path=job["onnx"], repr_dataset=representative)
    seconds["mct_export"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    converter = Path(sys.executable).with_name("imxconv-pt")
    with open(job["log"], "w") as log:
        done = subprocess.run([str(converter), "-i", job["onnx"], "-o", job["out_dir"], "--report-size-unit", "B",
                               "--overwrite-output"], stdout=log, stderr=subprocess.STDOUT)
    seconds["imxconv_pt"] = round(time.perf_counter() - t0, 3)
    if done.returncode == 0:  # a model the converter refuses (one that does not fit) is not judged
        t0 = time.perf_counter()
        session = ort.InferenceSession(job["onnx"], get_ort_session_options(), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = np.load(job["inputs"])
        runs = [session.run(None, {name: x[i:i + RUN_BATCH]}) for i in range(0, len(x), RUN_BATCH)]
        np.savez(job["outputs"], **{f"output_{k}": np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))})
        seconds["onnx_run"] = round(time.perf_counter() - t0, 3)
    json.dump({"mct": version("model-compression-toolkit"), "converter": version("imx500-converter"),
               "returncode": done.returncode, "seconds": seconds}, open(job["result"], "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
