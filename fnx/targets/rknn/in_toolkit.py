"""Run by the rknn toolchain's own Python (`python in_toolkit.py JOB.json`), never imported by fnx: it sees only numpy
and rknn-toolkit2. Builds the ONNX into an int8 .rknn, runs the simulator on the given inputs in the same session (a
saved .rknn cannot be reloaded into the simulator), runs the per-layer accuracy analysis, and writes what it found.

JOB.json: onnx, target, algorithm (quantized_algorithm), dataset (a list file of .npy inputs, one a line), rknn
(where to write it), inputs (.npy, N x C x H x W float32, simulated one by one), outputs (.npz written: output_0, ...
stacked over N), analysis (.npy inputs for accuracy_analysis), analysis_dir, log (the toolkit's verbose log), result
(.json written).
"""

import json
import sys
import time
from importlib.metadata import version

import numpy as np


def main(job_path: str) -> int:
    from rknn.api import RKNN

    job = json.load(open(job_path))
    rknn = RKNN(verbose=True, verbose_file=job["log"])
    steps = [
        ("config", lambda: rknn.config(target_platform=job["target"], quantized_dtype="w8a8",
                                       quantized_algorithm=job["algorithm"], optimization_level=3)),
        ("load_onnx", lambda: rknn.load_onnx(model=job["onnx"])),
        ("build", lambda: rknn.build(do_quantization=True, dataset=job["dataset"])),
        ("export_rknn", lambda: rknn.export_rknn(job["rknn"])),
        ("init_runtime", lambda: rknn.init_runtime()),  # no target: the simulator
    ]
    seconds = {}
    for name, call in steps:
        t0 = time.perf_counter()
        ret = call()
        seconds[name] = round(time.perf_counter() - t0, 3)
        if ret not in (0, None):
            print(f"rknn-toolkit2 {name} failed (returned {ret})", file=sys.stderr)
            return 2
    x = np.load(job["inputs"])
    t0 = time.perf_counter()
    runs = [rknn.inference(inputs=[x[i:i + 1]], data_format="nchw") for i in range(len(x))]
    seconds["simulate"] = round(time.perf_counter() - t0, 3)
    np.savez(job["outputs"], **{f"output_{k}": np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))})
    t0 = time.perf_counter()
    ret = rknn.accuracy_analysis(inputs=job["analysis"], output_dir=job["analysis_dir"])
    seconds["accuracy_analysis"] = round(time.perf_counter() - t0, 3)
    if ret != 0:
        print(f"rknn-toolkit2 accuracy_analysis failed (returned {ret})", file=sys.stderr)
        return 2
    rknn.release()
    json.dump({"toolkit": version("rknn-toolkit2"), "seconds": seconds}, open(job["result"], "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
