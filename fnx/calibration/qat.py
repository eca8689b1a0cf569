"""Quantization-aware training's graph: the NHWC deploy form with PT2E fake quantization, and its saved ranges.

QAT runs on the BatchNorm-folded deploy form: BN is folded once, before training, so no BN runs in train mode
and none is folded twice; the deploy form is traced in eval mode, so no dropout or drop-path is in the graph.
The quantizer is the one PTQ uses for TFLite (litert-torch's, per-channel symmetric int8 weights) in its QAT
form. What training learns, the float weights and every fake-quant's range, is the graph's state_dict; an export
rebuilds the same graph and loads it strictly, so a file from another model or version is refused, not guessed.
Imports nothing from fnx.exporter (callers pass the NHWC-wrapped module).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fnx.calibration.sensitivity import MAX_BATCH, make_quantizer
from fnx.errors import FnxError
from fnx.torch_records import read_record, save_record

RANGES_FORMAT = "fnx.qat-ranges/1"
WRAPPED = "wrapped."  # litert-torch's channel-last wrapper keeps the model under this name


def ranges_path(ckpt: str | Path) -> Path:
    """Return where a QAT checkpoint keeps its fake-quant graph state: `runs/m_qat.pth` -> `runs/m_qat.qat.pt`."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + ".qat.pt")


def qat_graph(wrapped_nhwc: torch.nn.Module, sample_nhwc: torch.Tensor, dynamic_batch: bool = False):
    """Return the PT2E QAT graph (fake quantization on every quantized tensor) of an NHWC-input model.

    dynamic_batch: any batch size (training); otherwise the sample's (what litert-torch converts)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    shapes = (({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},),) if dynamic_batch else None
    exported = torch.export.export(wrapped_nhwc, (sample_nhwc,), dynamic_shapes=shapes).module()
    return prepare_qat_pt2e(exported, make_quantizer(qat=True))


class NchwView(torch.nn.Module):
    """An NHWC QAT graph behind the NCHW interface of the float model (training images and references are NCHW)."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x.permute(0, 2, 3, 1).contiguous())

    def train(self, mode: bool = True):  # an exported graph switches with set_training, not .train()/.eval()
        return self


def held_graph(wrapped_nhwc: torch.nn.Module, sample_nhwc: torch.Tensor, state: dict, source: Path):
    """Return the trained QAT graph, any batch, ranges held and in eval mode: the PyTorch int8 simulation."""
    graph = qat_graph(wrapped_nhwc, sample_nhwc, dynamic_batch=True)
    load_graph_state(graph, state, source)
    set_training(graph, False)
    set_observing(graph, False)
    return graph


def set_observing(graph, on: bool) -> None:
    """Let the fake-quant ranges follow the data (training) or hold them (evaluation, export)."""
    from torchao.quantization.pt2e import disable_observer, enable_observer

    graph.apply(enable_observer if on else disable_observer)


def set_training(graph, on: bool) -> None:
    """Switch an exported graph between train and eval behaviour (what .train()/.eval() do for a module)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    (move_exported_model_to_train if on else move_exported_model_to_eval)(graph)


def float_state(graph, deployed_keys) -> dict[str, torch.Tensor]:
    """Return the deploy-form weights a QAT graph holds (its learned float weights, without the fake-quant state)."""
    state = graph.state_dict()
    missing = [k for k in deployed_keys if WRAPPED + k not in state]
    if missing:
        raise FnxError(f"the QAT graph lacks the deploy-form weight {missing[0]}: it is not this model's graph")
    return {k: state[WRAPPED + k].detach().clone() for k in deployed_keys}


def save_ranges(path: Path, graph, facts: dict) -> None:
    """Write the QAT graph's state (weights and fake-quant ranges) atomically, with facts about the run."""
    state = {k: v.detach().to("cpu").clone() for k, v in graph.state_dict().items()}
    save_record(path, RANGES_FORMAT, {"facts": facts, "state": state})


def load_ranges(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return (facts, graph state) of a file save_ranges wrote (tensors and plain values only)."""
    raw = read_record(path, RANGES_FORMAT, "fnx QAT ranges file", "a QAT checkpoint keeps its learned ranges beside "
                      "it (X.pth -> X.qat.pt): pass the .pth that `fnx train --qat` wrote, with its .qat.pt",
                      "train again with fnx train --qat")
    return raw["facts"], raw["state"]


def load_graph_state(graph, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load saved QAT state into a freshly prepared graph of the same model (FnxError if it does not fit)."""
    try:
        graph.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:2] or [str(e)[:200]]
        raise FnxError(f"{source} does not fit this model's QAT graph ({first[0].strip()}): export the model and "
                       f"options it was trained with, or train again with fnx train --qat") from None


def check_qat_files(ckpt: str | Path) -> None:
    """Refuse a --from-qat checkpoint, or its ranges file beside it, that is missing (before anything is built)."""
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FnxError(f"--from-qat {ckpt}: no such file; pass the checkpoint fnx train --qat wrote (runs/model_qat.pth)")
    if not ranges_path(ckpt).is_file():
        raise FnxError(f"--from-qat {ckpt} has no {ranges_path(ckpt).name} beside it: a QAT checkpoint keeps its learned "
                       f"ranges there; pass the .pth that `fnx train --qat` wrote, with its .qat.pt")


def cached_ranges(cache: dict, ckpt: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return (facts, graph state) of ckpt's ranges file, read once per cache (a built model's `cache.qat_ranges`:
    every check and artifact of one export shares it)."""
    key = str(ckpt)
    if key not in cache:
        cache[key] = load_ranges(ranges_path(ckpt))
    return cache[key]


def check_qat_fits(facts: dict, ckpt: Path, model: str, img_size: int, labels: list[str] | None) -> None:
    """Refuse a QAT checkpoint whose ranges were learned for another model, input size or classes."""
    wanted = {"model": model, "img_size": img_size, "classes": labels}
    for key, value in wanted.items():
        if facts.get(key) != value:
            raise FnxError(f"--from-qat {ckpt} was trained with {key} {facts.get(key)!r}, and this export has {value!r}: "
                           f"export with the model and size it was trained at (leave out --img-size and --num-classes)")
