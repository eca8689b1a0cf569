"""`fnx verify ART --layers`: every conv/linear layer's error measured in the artifact itself, against the float
PyTorch model's matching module on the same images.

The guard ranks int8 layers on what the quantizer sees (TFLite: the PT2E fake-quant graph; ONNX: the int8 file
against its fp32 file); this reads the shipped file's own intermediate tensors instead (LiteRT with every tensor
kept, int8 ones dequantized; ONNX Runtime and OpenVINO with each layer's output added to the graph), matched to
PyTorch modules by name, so the two can be compared layer by layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fnx.errors import FnxError
from fnx.manifest import Manifest

DISAGREE_DB = 6.0  # a layer whose SQNR in the file and in the guard's record differ by more is flagged


@dataclass
class LayerInFile:
    """One layer: cosine and SQNR (dB) of the artifact's output vs the float model's; the guard's figure if any."""

    layer: str
    cosine: float
    sqnr_db: float
    recorded_snr_db: float | None = None  # what the export's guard measured for this layer (its top-10 record)

    @property
    def disagrees(self) -> bool:
        return self.recorded_snr_db is not None and abs(self.recorded_snr_db - self.sqnr_db) > DISAGREE_DB

    def to_dict(self) -> dict:
        return {**asdict(self), "disagrees": self.disagrees}


def artifact_layers(artifact: Path, manifest: Manifest, model: torch.nn.Module,
                    batch_nhwc: np.ndarray) -> list[LayerInFile]:
    """Return each conv/linear layer of the artifact with its error vs model's module of the same name, worst first
    (by SQNR). FnxError for a format whose intermediate tensors fnx cannot read or a file that matches no module."""
    from fnx.exporter.fold import deploy_form
    from fnx.exporter.stem_form import with_stem_form
    from fnx.exporter.formats import get_format

    from fnx.exporter.formats import FORMATS

    fmt = get_format(manifest.artifact.format)
    if fmt.layer_tensors is None:
        readable = ", ".join(f.name for f in FORMATS.values() if f.layer_tensors is not None)
        why = f": {fmt.layers_absent}" if fmt.layers_absent else ""
        raise FnxError(f"--layers reads the intermediate tensors of {readable} artifacts; {artifact.name} is {fmt.name}"
                       f"{why}")
    found = fmt.layer_tensors(artifact, batch_nhwc)
    deployed = with_stem_form(deploy_form(model, fmt.pconv_form), fmt.stem_form)
    reference = _module_outputs(deployed, set(found), batch_nhwc)
    if not reference:
        raise FnxError(f"no layer of {artifact.name} matches a module of the PyTorch model: was it exported by fnx?")
    recorded = {e.layer: e.snr_db for e in (manifest.calibration.report.layer_errors if manifest.calibration else [])}
    rows = [_compare(name, found[name], ref, recorded.get(name)) for name, ref in reference.items()]
    return sorted(rows, key=lambda r: r.sqnr_db)


def _module_outputs(model: torch.nn.Module, names: set[str], batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    outputs: dict[str, np.ndarray] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, n=n: outputs.__setitem__(n, out.detach().numpy()))
             for n, m in model.named_modules() if n in names]
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))))
    finally:
        for h in hooks:
            h.remove()
    return outputs


def _compare(name: str, got: np.ndarray, ref: np.ndarray, recorded: float | None) -> LayerInFile:
    got = got.reshape(ref.shape) if got.size == ref.size else got
    if got.shape != ref.shape:
        raise FnxError(f"layer {name}: the artifact's output {got.shape} does not fit the model's {ref.shape}")
    if got.min() >= 0 > ref.min():  # the converter fused the activation that follows (ReLU) into the layer
        ref = np.maximum(ref, 0)
    g, r = got.ravel().astype(np.float64), ref.ravel().astype(np.float64)
    cosine = float(g @ r / (np.linalg.norm(g) * np.linalg.norm(r) + 1e-30))
    noise = float(np.sum((g - r) ** 2))
    sqnr = float(10 * np.log10(np.sum(r**2) / noise)) if noise > 0 else float("inf")
    return LayerInFile(name, cosine, sqnr, recorded)
