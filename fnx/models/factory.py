"""create_model: a FasterNet variant with weights from any source, ready for eval (timm's manner)."""

from __future__ import annotations

import warnings

from torch import nn

from fnx.errors import FnxError

from fnx.models import checkpoint, weights as weights_mod
from fnx.models.fasternet import FasterNet
from fnx.models.sidecar import read_sidecar
from fnx.models.variants import get_variant


class RandomWeightsWarning(UserWarning):
    """Raised (as a warning) when a model is built with random weights."""


def create_model(
    name: str,
    weights: str | None = "random",
    num_classes: int | None = None,
    in_chans: int = 3,
    features_only: bool = False,
    pconv_mode: str = "split_cat",
    drop_path_rate: float = 0.0,
    source_out: dict | None = None,
) -> nn.Module:
    """Return a FasterNet in eval mode with weights from "random", "official", a URL, "hf-hub:ORG/REPO" or a path.

    weights=None applies the default-weights policy (fnx.models.weights.resolve_or_default): the
    official weights, or an error saying how to proceed. num_classes=None takes it from the
    checkpoint, else 1000. `source_out`, if given, receives {"weights": WeightSource,
    "sidecar": Sidecar | None, "num_classes": int}.
    """
    variant = get_variant(name)
    src = weights_mod.resolve_or_default(weights, variant)
    sd = _read(src) if src.path else None
    sidecar = read_sidecar(src.path) if src.kind == "path" else None
    if num_classes is None:
        num_classes = checkpoint.infer_config(sd).get("num_classes", 1000) if sd is not None else 1000
    model = FasterNet(variant, num_classes=num_classes, in_chans=in_chans, features_only=features_only,
                      drop_path_rate=drop_path_rate, pconv_mode=pconv_mode)
    if sd is None:
        warnings.warn(f"{variant.name} has random weights: its outputs mean nothing", RandomWeightsWarning, stacklevel=2)
    else:
        if features_only:
            sd = _classifier_to_backbone(sd, model)
        checkpoint.load_state_dict_strict(model, sd, source=str(src.path))
    if source_out is not None:
        source_out.update(weights=src, sidecar=sidecar, num_classes=num_classes)
    return model.eval()


def _read(src: weights_mod.WeightSource) -> dict:
    """Return the source's state dict; an unreadable cached download is evicted, so the next run fetches it again."""
    try:
        return checkpoint.read_state_dict(src.path)
    except FnxError as e:
        if src.downloaded:
            weights_mod.evict(src.path)
            raise FnxError(f"{e}; the downloaded copy was removed from the cache: run again to download it afresh") from e
        raise


def _classifier_to_backbone(sd: dict, model: FasterNet) -> dict:
    """Drop the classifier head; keep output norms from the checkpoint or, if absent, the model's fresh ones."""
    sd = {k: v for k, v in sd.items() if not k.startswith(("avgpool_pre_head.", "head."))}
    own = model.state_dict()
    missing_norms = [k for k in own if k.startswith("norm") and k not in sd]
    if missing_norms:
        warnings.warn("the checkpoint has no backbone output norms (norm0..norm6): they start as identity",
                      UserWarning, stacklevel=3)
        sd.update({k: own[k] for k in missing_norms})
    return sd
