"""Quantize and convert fnx's model for the IMX500 in its toolchain (`in_toolkit`), and keep what MCT's quantized
model computed and what the converter's memory report says.

MCT's quantized model exists only in the toolchain run that made it, so that run computes every batch fnx will judge
(the guard's held-out images, the parity check's images) on MCT's quantized ONNX, the file the converter reads. The
outputs are kept by the packerOut.zip's sha256 (fnx.toolchains.simulated) for the format's `simulate`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fnx.compilation import Compilation, NpuMemory
from fnx.errors import FnxError
from fnx.fileio import sha256_file
from fnx.targets.imx500 import TARGET
from fnx.toolchains.env import create, run_job
from fnx.toolchains.simulated import Simulated, keep

SCRIPT = Path(__file__).with_name("in_toolkit.py")
TIMEOUT_S = 1800
CALIB_BATCH = 8
PARITY = ("measured on Sony MCT's quantized model for the IMX500 (its quantized ONNX, which the converter reads, run "
          "by ONNX Runtime with mct-quantizers' ops) in the run that built this file, against PyTorch fp32: the "
          "calibration guard and the parity check; there is no IMX500 simulator, and fnx could not run it on the "
          "sensor")


def convert_imx500(model, out: Path, calib_nchw: np.ndarray, batches: list[np.ndarray], error_method: str,
                   on_line=lambda line: None) -> Simulated:
    """Quantize model (fnx's deploy form, traceable by torch.fx) with MCT for the IMX500 from calib_nchw, run MCT's
    quantized ONNX on each batch (NCHW), convert it with imxconv-pt and copy its packerOut.zip to out; return what was
    found (also kept: fnx.toolchains.simulated). FnxError with the figures when the model does not fit the sensor's
    memory, and with the tool's own last error when a step fails; out is written only when everything succeeded."""
    from fnx.targets.imx500.toolchain import IMX500, MCT, CONVERTER

    if not IMX500.ready:
        create(IMX500, on_line)  # on first use (fnx export made it already); offline: one line saying what to do
    with tempfile.TemporaryDirectory(prefix="fnx-imx500-") as tmp:
        work = Path(tmp)
        save_traced(model, work / "model.pt")
        np.save(work / "calib.npy", np.ascontiguousarray(calib_nchw, dtype=np.float32))
        np.save(work / "inputs.npy", np.concatenate(batches).astype(np.float32))
        job = {"model": str(work / "model.pt"), "calib": str(work / "calib.npy"), "batch": CALIB_BATCH,
               "error_method": error_method, "inputs": str(work / "inputs.npy"), "outputs": str(work / "outputs.npz"),
               "onnx": str(work / "model_mct.onnx"), "out_dir": str(work / "converted"),
               "log": str(work / "imxconv.log"), "result": str(work / "result.json")}
        started = time.monotonic()
        done = run_job(IMX500, SCRIPT, work, job, "Sony's MCT and imx500-converter", TIMEOUT_S)
        if done.returncode != 0 or not (work / "result.json").is_file():
            raise FnxError(f"Sony's MCT could not quantize the model for the IMX500: {_last_line(done.stderr)}")
        result = json.loads((work / "result.json").read_text())
        log = (work / "imxconv.log").read_text(errors="replace")
        reports = sorted((work / "converted").glob("*_MemoryReport.json"))
        memory = read_memory_report(reports[0]) if reports else None
        if memory is not None and not memory.fits:
            raise FnxError(f"the model does not fit the IMX500: {describe(memory)}, by imx500-converter's memory "
                           f"report; export a smaller variant or input size, or fewer classes")
        packed = work / "converted" / "packerOut.zip"
        if result["returncode"] != 0 or memory is None or not packed.is_file():
            raise FnxError(f"imx500-converter (imxconv-pt) could not convert the model: {_converter_error(log)}")
        npz = np.load(work / "outputs.npz")
        stacked = [npz[f"output_{k}"] for k in range(len(npz.files))]
        onnx = work / "model_mct.onnx"
        record = Compilation(
            compiler=f"imx500-converter {result['converter']}", target=TARGET, source_format="onnx",
            source_sha256=sha256_file(onnx), source_size_bytes=onnx.stat().st_size, parity=PARITY,
            options={"quantizer": f"model-compression-toolkit {result['mct']}", "target_platform": "imx500 v1",
                     "activation_error_method": error_method, "toolchain": f"{MCT}, {CONVERTER}",
                     "seconds": json.dumps(result["seconds"]),
                     "toolchain_run_seconds": f"{time.monotonic() - started:.1f}"},
            memory=memory)
        shutil.copyfile(packed, out)
    return keep(out, record, batches, stacked)


def save_traced(model, path: Path) -> None:
    """Save model traced by torch.fx as a GraphModule of torch's own modules and functions (loadable where fnx is not
    installed, as MCT's front end needs an nn.Module it can trace)."""
    import torch
    import torch.fx

    traced = torch.fx.symbolic_trace(model)
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            node.type = None  # a string annotation (postponed evaluation) that a saved GraphModule cannot name
    traced.recompile()
    torch.save(traced, path)


SIZE = re.compile(r"^(\d+)B$")


def read_memory_report(path: Path) -> NpuMemory:
    """Return the memory report imxconv-pt writes (NAME_MemoryReport.json, sizes in bytes: --report-size-unit B);
    FnxError if it is not one fnx knows."""
    try:
        r = json.loads(Path(path).read_text())["Memory Report"]
        size = lambda key: int(SIZE.match(r[key])[1])  # noqa: E731
        fits = r["Fit In Chip"]
        if not isinstance(fits, bool):
            raise TypeError(fits)
        return NpuMemory(used_bytes=size("Memory Usage"), available_bytes=size("Total Memory Available On Chip"),
                         model_bytes=size("Model Memory Physical Size"),
                         runtime_bytes=size("Runtime Memory Physical Size"), fits=fits)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FnxError(f"{Path(path).name} is not an imx500-converter memory report fnx knows ({e!r}): this converter "
                       f"version is not the one fnx knows") from None


def describe(memory: NpuMemory) -> str:
    """The report in words, in MiB as the converter says them: 'it takes 14.54 MiB of the sensor's 8.00 MiB (182%):
    weights 13.24 MiB, runtime 1.30 MiB'."""
    mb = lambda n: f"{n / 2**20:.2f} MiB"  # noqa: E731
    return (f"it takes {mb(memory.used_bytes)} of the sensor's {mb(memory.available_bytes)} "
            f"({100 * memory.utilization:.0f}%): weights {mb(memory.model_bytes)}, runtime {mb(memory.runtime_bytes)}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:300]


def _converter_error(log: str) -> str:
    """The converter's last ERROR line, without its timestamp and source location."""
    errors = [re.sub(r"^[\d\-:., ]+ERROR\s*:\s*", "", line).split(" [/")[0]
              for line in log.splitlines() if "ERROR" in line]
    return (errors[-1] if errors else _last_line(log))[:300]
