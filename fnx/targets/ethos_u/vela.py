"""Vela, Arm's Ethos-U compiler: an int8 TFLite in, the NPU's TFLite out, with Vela's performance estimates."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fnx.compilation import Compilation, NpuEstimate
from fnx.errors import FnxError
from fnx.fileio import sha256_file
from fnx.targets.ethos_u import ACCELERATORS, compiled_by_vela

KIB = 1024
TIMEOUT_S = 600


def vela_version() -> str:
    """Return the installed ethos-u-vela's version."""
    from importlib.metadata import version

    return version("ethos-u-vela")


def compile_tflite(path: Path, target: str) -> Compilation:
    """Compile the int8 TFLite at path for target with Vela, in place; return what was done and Vela's estimates.

    FnxError with Vela's own last line when it fails, or when it leaves every op to the CPU; path is untouched then."""
    system, memory = ACCELERATORS[target]
    source_sha, source_size = sha256_file(path), path.stat().st_size
    with tempfile.TemporaryDirectory(prefix="fnx-vela-") as work:
        model = Path(shutil.copy(path, Path(work) / "model.tflite"))
        cmd = [sys.executable, "-m", "ethosu.vela", str(model), "--accelerator-config", target, "--config",
               "Arm/vela.ini", "--system-config", system, "--memory-mode", memory, "--output-dir", work]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise FnxError(f"Vela did not finish compiling {path.name} for {target} in {TIMEOUT_S} s") from None
        out = Path(work) / "model_vela.tflite"
        if done.returncode != 0 or not out.is_file():
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1][:300]
            raise FnxError(f"Vela could not compile {path.name} for {target}: {last}")
        estimate = read_estimate(done.stdout, Path(work) / f"model_summary_{system}.csv")
        if estimate.ops_on_npu == 0 or not compiled_by_vela(out):
            raise FnxError(f"Vela placed no op of {path.name} on the {target} NPU ({estimate.ops_on_cpu} on the CPU): "
                           f"nothing to run there; export --format tflite --precision int8 for a CPU")
        shutil.move(out, path)
    return Compilation(
        compiler=f"ethos-u-vela {vela_version()}", target=target, source_format="tflite", source_sha256=source_sha,
        source_size_bytes=source_size, options={"system_config": system, "memory_mode": memory, "config": "Arm/vela.ini"},
        parity=("measured on the int8 TFLite this file was compiled from (source_sha256), run by LiteRT on this "
                "machine's CPU: the calibration guard and the parity check; Vela's file runs only on an Ethos-U NPU "
                "and was not run here"),
        estimate=estimate)


def read_estimate(stdout: str, summary_csv: Path) -> NpuEstimate:
    """Return Vela's estimates: the op split from its network summary (stdout), the rest from its summary CSV."""
    ops = {unit: int(n) for unit, n in re.findall(r"^(CPU|NPU) operators = (\d+)", stdout, re.MULTILINE)}
    if set(ops) != {"CPU", "NPU"} or not summary_csv.is_file():
        raise FnxError("Vela's output has no network summary (CPU/NPU operators, summary CSV): this ethos-u-vela "
                       "is one fnx does not know; install the version the ethos-u extra names")
    with open(summary_csv, newline="") as f:
        row = next(csv.DictReader(f))
    weights = row["weights_storage_area"]  # "Off-chip Flash" (U55, Shared_Sram) or "DRAM" (U65, Dedicated_Sram)
    off_chip = {"Off-chip Flash": "off_chip_flash_memory_used", "DRAM": "dram_memory_used",
                "On-chip Flash": "on_chip_flash_memory_used"}.get(weights)
    return NpuEstimate(
        ops_on_npu=ops["NPU"], ops_on_cpu=ops["CPU"], latency_ms=1e3 * float(row["inference_time"]),
        cycles=int(float(row["cycles_total"])), clock_hz=float(row["core_clock"]),
        sram_bytes=round(float(row["sram_memory_used"]) * KIB),
        off_chip_bytes=round(float(row[off_chip]) * KIB) if off_chip else None,
        off_chip_memory=weights if off_chip else None)
