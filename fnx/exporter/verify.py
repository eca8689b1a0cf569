"""`fnx verify`: the export's parity check, re-run on an existing artifact."""

from __future__ import annotations

from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.pipeline import FEATURE_NAMES, reference_outputs, run_artifact, verification_images
from fnx.manifest import read_manifest
from fnx.models import create_model
from fnx.parity import ParityReport, check


def verify_artifact(artifact: Path, weights: str | None = None, data: Path | None = None) -> ParityReport:
    """Return the ParityReport of artifact against its PyTorch model (weights from the manifest unless given)."""
    manifest = read_manifest(artifact)
    if manifest is None:
        raise FnxError(f"{artifact} has no manifest beside it ({Path(artifact).with_suffix('.json').name}); "
                       f"verify needs it to rebuild the model: re-export with fnx export")
    m = manifest["model"]
    w = manifest.get("weights") or {}
    weights = weights or w.get("path") or w.get("url") or w.get("kind")
    if weights == "random":
        raise FnxError("the artifact was exported from random weights, which cannot be rebuilt: pass --weights")
    model = create_model(m["name"], weights=weights, num_classes=m["num_classes"], in_chans=m.get("in_chans", 3),
                         features_only=m.get("features_only", False))
    batch, _ = verification_images(data, manifest["preprocessing"])
    refs = reference_outputs(model, batch)
    outs = run_artifact(Path(artifact), batch, manifest["input"]["layout"])
    if m.get("features_only") and manifest["input"]["layout"] == "NHWC":
        outs = [o.transpose(0, 3, 1, 2) for o in outs]
    precision = manifest["artifact"]["precision"]
    bounds = (manifest.get("calibration") or {}).get("guard", {})
    bounds = {"min_cosine": bounds["min_cosine"]} if precision == "int8" and bounds.get("min_cosine") else None
    names = FEATURE_NAMES if m.get("features_only") else ["logits"]
    return check(refs, outs, precision, names, logits=not m.get("features_only"), bounds=bounds)
