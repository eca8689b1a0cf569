"""`fnx quantize ARTIFACT.onnx`: int8 from an existing fp32 ONNX export and its manifest; torch-free."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from fnx.calibration import onnx_int8
from fnx.calibration.data import load_calibration
from fnx.calibration.guard import run_guarded
from fnx.calibration.report import record
from fnx.errors import FnxError
from fnx.fileio import atomic_path, sha256_file
from fnx.manifest import embed_in_onnx, read_manifest, write_manifest
from fnx.parity import BOUNDS
from fnx.progress import Steps


def int8_name(artifact: Path) -> Path:
    """Return the int8 sibling name of an fp32 artifact (`X_onnx_fp32.onnx` -> `X_onnx_int8.onnx`)."""
    stem = artifact.stem
    stem = stem[: -len("_fp32")] + "_int8" if stem.endswith("_fp32") else stem + "_int8"
    return artifact.with_name(stem + artifact.suffix)


def quantize_artifact(artifact: Path, calib_data: str | None, size: int = 256, method: str = "minmax",
                      min_cosine: float | None = None, max_top1_drop: float | None = None, out: Path | None = None,
                      steps: Steps | None = None) -> tuple[Path, dict]:
    """Write the guarded int8 model of an fp32 ONNX export beside it; returns (path, manifest)."""
    from fnx.runtime import load

    steps = steps or Steps(quiet=True)
    artifact = Path(artifact)
    if artifact.suffix != ".onnx":
        raise FnxError("fnx quantize takes an fp32 .onnx export; for int8 TFLite use: fnx export MODEL --format tflite "
                       "--precision int8 --calib-data DIR")
    if not artifact.is_file():
        raise FnxError(f"{artifact} does not exist")
    manifest = read_manifest(artifact)
    if manifest is None:
        raise FnxError(f"{artifact} has no manifest beside it ({artifact.with_suffix('.json').name}): fnx quantize reads "
                       f"its preprocessing from there; re-export with fnx export --format onnx")
    if manifest["artifact"].get("precision") != "fp32":
        raise FnxError(f"{artifact.name} is {manifest['artifact'].get('precision')}, not fp32: quantize an fp32 export")
    bar, task = steps.progress("reading calibration images", None)
    with bar:
        data = load_calibration(calib_data, manifest["preprocessing"], size=size, progress=(bar, task))
    steps.info(f"calibration: {len(data.calib)} images from {data.source}, {len(data.held_out)} held out")
    held = np.ascontiguousarray(data.held_out.transpose(0, 3, 1, 2))
    refs = load(artifact, device="cpu").run(held)[0]
    final = out or int8_name(artifact)
    min_cosine = min_cosine or BOUNDS["int8"]["min_cosine"]
    new = copy.deepcopy(manifest)
    with atomic_path(final) as tmp:
        report, keep, ranking = run_guarded(
            lambda keep: onnx_int8.quantize_file(artifact, tmp, data, method, keep),
            lambda: load(tmp, device="cpu").run(held)[0],
            lambda: onnx_int8.layer_errors(artifact, tmp, data.held_out[:8]),
            tmp, refs, data, min_cosine, max_top1_drop, steps, "onnx")
        new["artifact"].update(precision="int8", quantized_from={"file": artifact.name, "sha256": sha256_file(artifact)})
        record(new, tmp, "onnx", data, method, "float", keep, report, ranking, min_cosine, max_top1_drop)
        new["parity"] = {"reference": "fp32 artifact (held-out images)", "passed": report["passed"],
                         "outputs": [{"name": "logits", "cosine": report["cosine_min"], "max_abs": report["max_abs"],
                                      "top1_agreement": report["top1_agreement"], "n": report["held_out"]}]}
        embed_in_onnx(tmp, new)
        new["artifact"].update(file=final.name, sha256=sha256_file(tmp), size_bytes=tmp.stat().st_size)
        write_manifest(final, new)
    return final, new
