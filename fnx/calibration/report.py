"""What an int8 artifact's manifest says about its calibration: I/O quantization and the Calibration record."""

from __future__ import annotations

from pathlib import Path

from fnx.calibration.data import CalibrationSet
from fnx.manifest import Calibration, GuardBounds, Int8Report, LayerError, Manifest
from fnx.manifest_tensors import Quantization

N_LAYER_ERRORS = 10  # how many of the worst layers the manifest keeps


def calibration_record(data: CalibrationSet, method: str, io: str, keep: list[str], report: Int8Report,
                       ranking: list[LayerError], bounds: GuardBounds, float_ops: dict[str, int],
                       notes: list[str] = (), scheme: str = "") -> Calibration:
    """Return the manifest's Calibration record of a guarded int8 conversion."""
    report.layer_errors = ranking[:N_LAYER_ERRORS]
    report.float_ops = float_ops
    return Calibration(source=data.source, images_found=data.found, calibration_images=int(len(data.calib)),
                       held_out_images=int(len(data.held_out)), method=method, io=io, scheme=scheme, guard=bounds,
                       report=report, kept_float=list(keep), skipped=len(data.skipped),
                       skipped_files=data.skipped[:20], notes=list(notes))


def record_io_quantization(manifest: Manifest, path: Path) -> None:
    """Set the manifest's input and output dtypes and int8 parameters from the artifact's engine."""
    from fnx.runtime.engines import open_engine

    engine = open_engine(path)
    for spec, info in [*zip(manifest.inputs, engine.inputs), *zip(manifest.outputs, engine.outputs)]:
        spec.dtype = str(info.dtype)
        spec.quantization = Quantization(info.scale, info.zero_point) if info.quantized else None
