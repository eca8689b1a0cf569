"""`fnx export --from-qat CKPT`: the reference a QAT artifact is checked against is the model QAT trained.

QAT moves the float weights where int8 works best, not where float does: its float weights are not the
model that shipped (on the digits demo their logits' cosine to the fake-quant graph's is 0.97). The
reference is the fake-quant graph itself, ranges held (the PyTorch int8 simulation `fnx train --qat`
validated): parity then proves the file computes what training produced, and accuracy against fp32 is
in the QAT run's record (the sidecar), measured on labelled images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fnx.calibration.qat import NchwView, held_graph, load_ranges, ranges_path
from fnx.exporter.build import BuiltModel
from fnx.exporter.fold import deploy_form
from fnx.exporter.formats.tflite import channel_last

QAT_REFERENCE = "pytorch qat (fake-quant)"


def attach_qat_reference(built: BuiltModel, ckpt: Path) -> None:
    """Make built's reference the trained QAT graph of ckpt (its weights are already built.model's)."""
    ranges = ranges_path(ckpt)
    _, state = load_ranges(ranges)
    sample = torch.zeros(2, built.img_size, built.img_size, built.model.in_chans)  # 2: a batch of 1 would fix the axis
    graph = held_graph(channel_last(deploy_form(built.model)), sample, state, ranges)
    built.reference, built.reference_name = NchwView(graph), QAT_REFERENCE
