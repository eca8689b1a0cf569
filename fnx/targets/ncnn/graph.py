"""Reading and editing ncnn's .param text: its layers, the input's shape, PyTorch's module names on its layers.

A .param file is `7767517`, then `LAYERS BLOBS`, then one line per layer:
`Type name n_in n_out in_blobs... out_blobs... key=value...`. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fnx.errors import FnxError

WEIGHTED = ("Convolution", "ConvolutionDepthWise", "InnerProduct")  # ncnn's conv/linear layer types
PNNX_WEIGHTED = ("nn.Conv2d", "nn.Linear")  # the same modules in pnnx's own .param, named as in PyTorch


@dataclass
class Layer:
    """One line of a .param file."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        fields = [self.type.ljust(24), self.name.ljust(24), str(len(self.inputs)), str(len(self.outputs)),
                  *self.inputs, *self.outputs, *(f"{k}={v}" for k, v in self.params.items())]
        return " ".join(fields)


def read_layers(path: Path) -> list[Layer]:
    """Return the layers of an ncnn (or pnnx) .param file; FnxError for a file that is not one."""
    lines = Path(path).read_text(errors="replace").splitlines()
    if len(lines) < 2 or lines[0].strip() != "7767517":
        raise FnxError(f"{path} is not an ncnn .param file (its first line is not ncnn's magic 7767517): re-export it")
    layers = []
    for text in lines[2:]:
        parts = text.split()
        if not parts:
            continue
        try:
            n_in, n_out = int(parts[2]), int(parts[3])
        except (IndexError, ValueError):
            raise FnxError(f"{path}: a damaged layer line {text[:80]!r}: re-export it") from None
        blobs = parts[4:4 + n_in + n_out]
        params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:] if "=" in p)
        layers.append(Layer(parts[0], parts[1], blobs[:n_in], blobs[n_in:], params))
    return layers


def write_layers(path: Path, layers: list[Layer]) -> None:
    """Write layers as an ncnn .param file (blob count: every distinct blob name)."""
    blobs = {b for layer in layers for b in (*layer.inputs, *layer.outputs)}
    path.write_text("\n".join(["7767517", f"{len(layers)} {len(blobs)}", *(x.line() for x in layers)]) + "\n")


def input_shape(layers: list[Layer]) -> tuple[int, int, int]:
    """Return (C, H, W) of the Input layer (fnx writes it there: pnnx leaves it out); FnxError where absent."""
    layer = next((x for x in layers if x.type == "Input"), None)
    if layer is None or not {"0", "1", "2"} <= set(layer.params):
        raise FnxError("the .param file's Input layer has no shape (0=W 1=H 2=C): export it with fnx (fnx export "
                       "--format ncnn), or add the shape to its Input line")
    return int(layer.params["2"]), int(layer.params["1"]), int(layer.params["0"])


def set_input_shape(layers: list[Layer], chans: int, size: int) -> None:
    """Give the Input layer its shape (0=W 1=H 2=C), so the file alone says what it takes."""
    for layer in layers:
        if layer.type == "Input":
            layer.params = {"0": str(size), "1": str(size), "2": str(chans)}


def name_weighted_layers(layers: list[Layer], pnnx_layers: list[Layer]) -> bool:
    """Rename ncnn's conv/linear layers (conv_3, linear_58) to the PyTorch modules pnnx's own graph names, matched in
    order and checked by output channels; returns False (names left alone) where the two do not line up."""
    ours = [x for x in layers if x.type in WEIGHTED]
    theirs = [x for x in pnnx_layers if x.type in PNNX_WEIGHTED]
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs):
        if a.params.get("0") != b.params.get("out_channels", b.params.get("out_features")):
            return False
    for a, b in zip(ours, theirs):
        a.name = b.name
    return True
