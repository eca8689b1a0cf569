"""Parameters and FLOPs of a FasterNet variant computed from its table entry, without building it (torch-free).

The counts follow the network exactly (tests check them against fnx.models.complexity on the built model):
FLOPs are multiply-accumulates of conv and linear layers (the paper's fvcore convention); parameters include
BatchNorm's affine weights.
"""

from __future__ import annotations

from fnx.models.variants import Variant


def variant_params(v: Variant, num_classes: int = 1000, in_chans: int = 3) -> int:
    """Return the parameter count of the classifier (num_classes > 0) or pooled-feature model (0)."""
    total = backbone_weights(v, in_chans) + 2 * v.embed_dim  # the convs + the stem's BN
    dims = v.stage_dims
    for i, (d, depth) in enumerate(zip(dims, v.depths)):
        total += depth * (2 * int(d * v.mlp_ratio) + (d if v.layer_scale_init > 0 else 0))  # each block's BN, scale
        if i < len(dims) - 1:
            total += 2 * 2 * d  # the merging layer's BN
    total += dims[-1] * v.feature_dim  # pre-head 1x1 conv
    if num_classes:
        total += v.feature_dim * num_classes + num_classes
    return total


def backbone_weights(v: Variant, in_chans: int = 3) -> int:
    """Return the number of conv weights (no BatchNorm, no bias) of the stem, the blocks and the merging layers: what
    every export of the variant holds, classifier and --features alike (its int8 weight bytes at 8 bits)."""
    total = in_chans * v.embed_dim * v.patch_size**2
    dims = v.stage_dims
    for i, (d, depth) in enumerate(zip(dims, v.depths)):
        total += depth * (2 * d * int(d * v.mlp_ratio) + 9 * (d // v.n_div) ** 2)
        if i < len(dims) - 1:
            total += d * 2 * d * v.merge_size**2
    return total


def variant_flops(v: Variant, img_size: int = 224, num_classes: int = 1000, in_chans: int = 3) -> int:
    """Return the multiply-accumulates of every conv and linear layer for one img_size x img_size image."""
    r = img_size // v.patch_size
    total = r * r * v.embed_dim * in_chans * v.patch_size**2
    dims = v.stage_dims
    for i, (d, depth) in enumerate(zip(dims, v.depths)):
        hidden = int(d * v.mlp_ratio)
        pc = d // v.n_div
        total += depth * r * r * (2 * d * hidden + 9 * pc * pc)
        if i < len(dims) - 1:
            r //= v.merge_size
            total += r * r * 2 * d * d * v.merge_size**2
    total += dims[-1] * v.feature_dim
    if num_classes:
        total += v.feature_dim * num_classes
    return total


def describe(name: str, img_size: int = 224, num_classes: int = 1000) -> dict:
    """Return {name, params, flops, img_size, act, embed_dim, depths, paper_top1} for a variant."""
    from fnx.models.variants import get_variant

    v = get_variant(name)
    return {"name": v.name, "params": variant_params(v, num_classes), "flops": variant_flops(v, img_size, num_classes),
            "img_size": img_size, "act": v.act, "embed_dim": v.embed_dim, "depths": list(v.depths),
            "paper_top1": v.paper_top1}
