"""`fnx export --from-qat CKPT`: what a QAT artifact is checked against.

QAT moves the float weights where int8 works best, not where float does: its float weights are not the
model that shipped (on the digits demo their logits' cosine to the fake-quant graph's is 0.97). The
reference is the fake-quant graph itself, ranges held (the PyTorch int8 simulation `fnx train --qat`
validated): parity then proves the file computes what training produced, and accuracy against fp32 is
in the QAT run's record (the sidecar), measured on labelled images. A format that cannot take PT2E ranges
calibrates the QAT weights its own way, and is checked against those float weights like any PTQ.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fnx.calibration.qat import NchwView, cached_ranges, held_graph, ranges_path
from fnx.exporter.build import BuiltModel
from fnx.exporter.fold import deploy_form
from fnx.exporter.formats import ArtifactFormat

QAT_REFERENCE = "pytorch qat (fake-quant)"
FP32 = "pytorch fp32"


def reference_of(built: BuiltModel, fmt: ArtifactFormat, from_qat: Path | None) -> tuple[torch.nn.Module, str]:
    """Return the PyTorch module fmt's artifact must reproduce, and its name in the parity record.

    A format that converts the learned ranges (TFLite) answers to the trained QAT graph; one that calibrates the QAT
    weights itself (ONNX) answers to those float weights, as any PTQ does to its float model."""
    if from_qat is None:
        return built.model, FP32
    if fmt.qat_quantizer is None:
        return built.model, f"{FP32} (QAT weights)"
    if built.cache.qat_reference is None:
        sample = torch.zeros(2, built.img_size, built.img_size, built.model.in_chans)  # 2: 1 would fix the batch axis
        _, state = cached_ranges(built.cache.qat_ranges, from_qat)
        graph = held_graph(fmt.wrap_io(deploy_form(built.model)), sample, state, ranges_path(from_qat))
        built.cache.qat_reference = NchwView(graph)
    return built.cache.qat_reference, QAT_REFERENCE
