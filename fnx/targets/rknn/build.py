"""Build an int8 .rknn from fnx's fp32 ONNX in the rknn toolchain (`in_toolkit`), and keep what its simulator said.

The simulator runs a model only in the toolkit session that built it, so one run builds, simulates every batch fnx
will judge (the guard's held-out images, the parity check's images) and analyses each layer. What it returned is
kept by the .rknn's sha256 (fnx.toolchains.simulated), for the format's `simulate` to answer for exactly that file.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from fnx.compilation import Compilation, NpuEstimate, SimulatedLayer
from fnx.errors import FnxError
from fnx.fileio import sha256_file
from fnx.toolchains.env import create, run_job
from fnx.toolchains.simulated import Simulated, keep

SCRIPT = Path(__file__).with_name("in_toolkit.py")
TIMEOUT_S = 900
PARITY = ("measured on rknn-toolkit2's simulator (init_runtime() with no board) in the session that built this file, "
          "against PyTorch fp32: the calibration guard and the parity check; fnx could not run it on an NPU")


def build_rknn(onnx: Path, out: Path, target: str, calib_nchw: np.ndarray, batches: list[np.ndarray],
               algorithm: str = "normal", on_line=lambda line: None) -> Simulated:
    """Build onnx into an int8 .rknn for target at out, calibrated on calib_nchw by the toolkit's quantized_algorithm,
    and simulate each batch (NCHW); return what was found (also kept: fnx.toolchains.simulated). FnxError with the
    toolkit's own last error when it fails (out is removed then)."""
    from fnx.targets.rknn.toolchain import RKNN, TOOLKIT

    if not RKNN.ready:
        create(RKNN, on_line)  # on first use (fnx export made it already); offline: one line saying what to do
    with tempfile.TemporaryDirectory(prefix="fnx-rknn-") as tmp:
        work = Path(tmp)
        files = []
        for i, x in enumerate(calib_nchw):
            # one .npy per dataset line, shaped as the ONNX input (1, C, H, W): the toolkit refuses an NHWC one
            files.append(str(work / f"calib_{i}.npy"))
            np.save(files[-1], np.ascontiguousarray(x[None], dtype=np.float32))
        (work / "dataset.txt").write_text("\n".join(files) + "\n")
        np.save(work / "inputs.npy", np.concatenate(batches).astype(np.float32))
        job = {"onnx": str(onnx), "target": target, "algorithm": algorithm, "dataset": str(work / "dataset.txt"),
               "rknn": str(out), "inputs": str(work / "inputs.npy"), "outputs": str(work / "outputs.npz"),
               "analysis": files[:1], "analysis_dir": str(work / "analysis"), "log": str(work / "build.log"),
               "result": str(work / "result.json")}
        started = time.monotonic()
        try:
            done = run_job(RKNN, SCRIPT, work, job, f"rknn-toolkit2 building {onnx.name} for {target}", TIMEOUT_S)
        except FnxError:
            out.unlink(missing_ok=True)
            raise
        log = (work / "build.log").read_text(errors="replace") if (work / "build.log").is_file() else ""
        if done.returncode != 0 or not out.is_file() or not (work / "result.json").is_file():
            out.unlink(missing_ok=True)
            raise FnxError(f"rknn-toolkit2 could not build {onnx.name} for {target}: {_last_error(done, log)}")
        result = json.loads((work / "result.json").read_text())
        npz = np.load(work / "outputs.npz")
        stacked = [npz[f"output_{k}"] for k in range(len(npz.files))]
        layers = read_analysis(work / "analysis" / "error_analysis.txt")
    npu, cpu, cpu_ops = op_split(done.stdout)
    record = Compilation(
        compiler=f"rknn-toolkit2 {result['toolkit']}", target=target, source_format="onnx",
        source_sha256=sha256_file(onnx), source_size_bytes=onnx.stat().st_size, parity=PARITY,
        options={"quantized_dtype": "w8a8", "quantized_algorithm": algorithm, "optimization_level": "3",
                 "toolchain": TOOLKIT, "seconds": json.dumps(result["seconds"]),
                 "toolkit_run_seconds": f"{time.monotonic() - started:.1f}", "ops_on_cpu": ", ".join(cpu_ops)},
        estimate=NpuEstimate(ops_on_npu=npu, ops_on_cpu=cpu), layers=layers)
    return keep(out, record, batches, stacked)


ANSI = re.compile(r"\x1b\[[\d;]*m")


def _last_error(done, log: str) -> str:
    """The toolkit's last error line (its log's `E ...` lines, else its stderr's last line), without colour codes."""
    errors = [line for line in ANSI.sub("", log).splitlines()
              if re.match(r"^E\s", line) and "Unkown op target" not in line]  # a harmless error every build logs
    last = (errors or ANSI.sub("", done.stderr.strip() or done.stdout.strip() or "no output").splitlines())[-1]
    return last.strip()[:300]


TABLE = "Network Layer Information Table"
OP_ROW = re.compile(r"^D RKNN: \[[\d:.]+\]\s+\d+\s+(?P<op>\S+)\s+\S+\s+(?P<unit>NPU|CPU)\s")


def op_split(stdout: str) -> tuple[int, int, list[str]]:
    """Return (ops on the NPU, ops on the CPU, the CPU ops' types) from the first Network Layer Information Table
    the toolkit's runtime prints (stdout) while it builds. FnxError if there is none."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if TABLE in line), None)
    rows = []
    for line in lines[start + 1:] if start is not None else []:
        m = OP_ROW.match(line)
        if m:
            rows.append(m)
        elif rows and "-----" in line:
            break
    if not rows:
        raise FnxError(f"rknn-toolkit2's build printed no {TABLE}: this toolkit version is not the one fnx knows")
    cpu = [m["op"] for m in rows if m["unit"] == "CPU"]
    return len(rows) - len(cpu), len(cpu), cpu


ANALYSIS_ROW = re.compile(r"^\[(?P<op>[^\]]+)\]\s+(?P<layer>\S+)\s+(?P<entire>[-+\d.eE]+)\s*\|\s*\S+\s+"
                          r"(?P<single>[-+\d.eE]+)\s*\|")


def read_analysis(path: Path) -> list[SimulatedLayer]:
    """Return each layer's cosines from accuracy_analysis's error_analysis.txt ("[Op] name  cos | euc  cos | euc":
    entire, accumulated from the input; single, that layer alone on float inputs). FnxError if it has none."""
    rows = [m for m in map(ANALYSIS_ROW.match, path.read_text().splitlines() if path.is_file() else []) if m]
    if not rows:
        raise FnxError(f"rknn-toolkit2's accuracy analysis wrote no per-layer table ({path.name}): this toolkit "
                       f"version is not the one fnx knows")
    return [SimulatedLayer(m["layer"], m["op"], float(m["entire"]), float(m["single"])) for m in rows]
