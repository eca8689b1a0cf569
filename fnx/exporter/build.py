"""The PyTorch side of an export: the eval model, its config, its outputs and where its weights came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fnx.calibration.data import CalibrationSet
from fnx.exporter.options import ExportOptions
from fnx.labels import imagenet_1k
from fnx.manifest import ModelConfig, Preprocessing, WeightsInfo
from fnx.manifest_tensors import TensorSpec
from fnx.models import check_img_size, count_flops, count_params, create_model, get_variant, hub
from fnx.models.sidecar import Sidecar
from fnx.models.weights import WeightSource

OFFICIAL_TRAIN_SIZE = 224  # the official FasterNet release was trained on ImageNet at 224 px


@dataclass
class BuildCache:
    """Work one built model's artifacts share, each computed once: the calibration set, the held-out images' outputs
    per reference module, a QAT checkpoint's ranges (per ranges file) and the QAT reference graph."""

    calibration: CalibrationSet | None = None
    held_out_refs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # reference name -> its outputs
    qat_ranges: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # checkpoint -> (facts, graph state)
    qat_reference: torch.nn.Module | None = None


@dataclass
class BuiltModel:
    """A model ready to export: eval-mode module, input size, outputs (from the model), labels and preprocessing."""

    name: str
    model: torch.nn.Module
    img_size: int
    num_classes: int
    weights: WeightsInfo
    labels: list[str] | None
    preprocessing: Preprocessing
    class_ids: list[str] | None = None
    trained_img_size: int | None = None  # the input size the weights were trained at, where known
    trained_img_size_source: str = ""  # who says so, e.g. "its sidecar X.json"
    cache: BuildCache = field(default_factory=lambda: BuildCache())  # work its artifacts share, each done once

    @property
    def features_only(self) -> bool:
        return bool(self.model.features_only)

    def output_specs(self, batch: int | None = 1) -> list[TensorSpec]:
        """Return the model's outputs (NCHW), as the model itself describes them."""
        return self.model.output_specs(self.img_size, batch)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.output_specs()]

    @property
    def has_logits(self) -> bool:
        return any(o.kind == "logits" for o in self.output_specs())

    def config(self) -> ModelConfig:
        return ModelConfig(self.name, get_variant(self.name).to_dict(), self.num_classes, self.model.in_chans,
                           self.img_size, count_params(self.model), count_flops(self.model, self.img_size),
                           features_only=self.features_only, trained_img_size=self.trained_img_size)


def build(name: str, opts: ExportOptions) -> BuiltModel:
    """Return the eval-mode PyTorch model for an export, with labels and preprocessing from its sidecar or variant."""
    variant = get_variant(name)
    info: dict = {}
    model = create_model(variant.name, weights=opts.weights, num_classes=opts.num_classes,
                         features_only=opts.features, source_out=info)
    sidecar = info["sidecar"]
    img_size = check_img_size(opts.img_size if opts.img_size is not None else
                              (sidecar.img_size if sidecar else variant.default_img_size))
    preprocessing = sidecar.preprocessing if sidecar else variant.preprocessing(img_size)
    if preprocessing.crop != img_size:  # another input size than trained at: the same transform, resized
        preprocessing = preprocessing.resized(img_size)
    labels, class_ids = (None, None) if opts.features else class_names(info["weights"], sidecar, info["num_classes"])
    trained, said_by = trained_size(info["weights"], sidecar)
    return BuiltModel(variant.name, model, img_size, info["num_classes"], info["weights"].info(), labels, preprocessing,
                      class_ids=class_ids, trained_img_size=trained, trained_img_size_source=said_by)


def trained_size(source: WeightSource, sidecar: Sidecar | None) -> tuple[int | None, str]:
    """Return (the input size the weights were trained at, who says so); (None, "") where nothing says."""
    if sidecar is not None and sidecar.img_size:
        return sidecar.img_size, f"its sidecar {Path(source.path).with_suffix('.json').name}"
    if source.kind == "official":
        return OFFICIAL_TRAIN_SIZE, "the official ImageNet release"
    return None, ""


def class_names(source: WeightSource, sidecar: Sidecar | None, num_classes: int) -> tuple[list[str] | None, list[str] | None]:
    """Return (names, IDs) of a classifier's classes: its sidecar's (fnx train), its Hub config's, else ImageNet-1k's
    for a 1000-class head with trained weights; (None, None) when unknown (the runtime then shows indices)."""
    if sidecar is not None:
        return (sidecar.labels, None) if sidecar.labels and len(sidecar.labels) == num_classes else (None, None)
    if source.hub_ref is not None and (names := hub.label_names(source.hub_ref, num_classes)):
        return names, None
    imagenet = imagenet_1k()
    if source.kind != "random" and num_classes == len(imagenet):
        return list(imagenet.names), list(imagenet.ids)
    return None, None
