"""The manifest's tensors: each input and output's name, shape, layout, dtype and int8 parameters (fnx.manifest)."""

from __future__ import annotations

from dataclasses import dataclass

from fnx.records import Record


@dataclass
class Quantization(Record):
    """Affine int8 parameters of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


@dataclass
class TensorSpec(Record):
    """One input or output tensor: name, shape (None for a dynamic axis), layout, dtype, quantization, kind."""

    name: str
    shape: list[int | None]
    dtype: str = "float32"
    layout: str | None = None  # "NHWC" | "NCHW" for images and feature maps
    kind: str = "image"  # image | logits | pooled_features | feature_map
    quantization: Quantization | None = None
    channels: int | None = None
    reduction: int | None = None  # stride of a feature map relative to the input
