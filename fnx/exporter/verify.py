"""`fnx verify`: the export's parity check, re-run on an existing artifact."""

from __future__ import annotations

from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.checks import as_nchw, reference_outputs, verification_images
from fnx.manifest import read_manifest
from fnx.models import create_model
from fnx.runtime import Session
from fnx.runtime.preprocess import to_layout
from fnx.parity import ParityReport, bounds_for, check


def verify_artifact(artifact: Path, weights: str | None = None, data: Path | None = None,
                    device: str = "cpu", layers: bool = False):
    """Return the ParityReport of artifact, run on device, against its PyTorch model (weights from the manifest
    unless given); with layers, (report, every conv/linear layer's error in the file, worst first)."""
    manifest = read_manifest(artifact)
    if manifest is None:
        raise FnxError(f"{artifact} has no manifest beside it ({Path(artifact).with_suffix('.json').name}); "
                       f"verify needs it to rebuild the model: re-export with fnx export")
    m, w = manifest.model, manifest.weights
    here = w.path if w.path and Path(w.path).is_file() else None
    weights = weights or here or w.url or w.kind  # the file if still here, else where it came from (URL, hf-hub:)
    if weights == "random":
        raise FnxError("the artifact was exported from random weights, which cannot be rebuilt: pass --weights")
    batch, source = verification_images(data, manifest.preprocessing)  # the images and the device before the model
    session = Session(artifact, device=device)
    model = create_model(m.name, weights=weights, num_classes=m.num_classes, in_chans=m.in_chans,
                         features_only=m.features_only)
    refs = reference_outputs(model, batch)
    outs = as_nchw(session.run(to_layout(batch, manifest.input.layout)), manifest.outputs)
    precision = manifest.artifact.precision
    min_cosine = manifest.calibration.guard.min_cosine if manifest.calibration else None
    report = check(refs, outs, precision, [o.name for o in manifest.outputs],
                   logits=any(o.kind == "logits" for o in manifest.outputs), bounds=bounds_for(precision, min_cosine),
                   inputs=source)
    if not layers:
        return report
    from fnx.exporter.layers import artifact_layers

    return report, artifact_layers(Path(artifact), manifest, model, batch[:8])
