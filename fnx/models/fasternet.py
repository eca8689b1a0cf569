"""FasterNet (Chen et al., CVPR 2023) with the official release's module names.

Parameter names match the official checkpoints exactly (`stages.0.blocks.0.spatial_mixing.
partial_conv3.weight`, `stages.1.reduction.weight`, `avgpool_pre_head.1.weight`, `head.*`),
so those files load with no renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from fnx.errors import FnxError
from fnx.manifest_tensors import TensorSpec
from fnx.models.variants import Variant

PCONV_MODES = ("split_cat", "slicing", "slice_cat")  # a target's pconv_form picks the one its converter takes best


class PartialConv(nn.Module):
    """PConv: a 3x3 conv over the first dim // n_div channels; the rest pass through untouched."""

    def __init__(self, dim: int, n_div: int, mode: str = "split_cat"):
        super().__init__()
        self.dim_conv = dim // n_div
        self.dim_untouched = dim - self.dim_conv
        self.partial_conv3 = nn.Conv2d(self.dim_conv, self.dim_conv, 3, 1, 1, bias=False)
        self.mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in PCONV_MODES:
            raise FnxError(f"unknown PConv mode {mode!r}; use one of {', '.join(PCONV_MODES)}")
        self._mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._mode == "slicing":
            # In-place write into a copy: the caller's tensor is the residual and must stay intact.
            x = x.clone()
            x[:, : self.dim_conv] = self.partial_conv3(x[:, : self.dim_conv])
            return x
        if self._mode == "slice_cat":  # two slices, then cat: for partitioners that take slices but not a split
            return torch.cat((self.partial_conv3(x[:, : self.dim_conv]), x[:, self.dim_conv :]), 1)
        x1, x2 = torch.split(x, [self.dim_conv, self.dim_untouched], dim=1)
        return torch.cat((self.partial_conv3(x1), x2), 1)


def make_act(act: str) -> nn.Module:
    return nn.GELU() if act == "gelu" else nn.ReLU(inplace=True)


class MLPBlock(nn.Module):
    """PConv followed by a 1x1 conv - BN - act - 1x1 conv MLP, with a residual connection."""

    def __init__(self, dim: int, variant: Variant, drop_path: float = 0.0, pconv_mode: str = "split_cat"):
        super().__init__()
        hidden = int(dim * variant.mlp_ratio)
        # Registered in the official order (mlp, then spatial_mixing) so state_dict keys match it exactly.
        self.mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            make_act(variant.act),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )
        self.spatial_mixing = PartialConv(dim, variant.n_div, pconv_mode)
        if variant.layer_scale_init > 0:
            self.layer_scale = nn.Parameter(variant.layer_scale_init * torch.ones(dim))
        else:
            self.layer_scale = None
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.spatial_mixing(x))
        if self.layer_scale is not None:
            y = self.layer_scale[:, None, None] * y
        if self.training and self.drop_path > 0:
            keep = 1 - self.drop_path
            mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
            y = y * mask / keep
        return x + y


class BasicStage(nn.Module):
    def __init__(self, dim: int, depth: int, variant: Variant, drop_paths: list[float], pconv_mode: str):
        super().__init__()
        self.blocks = nn.Sequential(*[MLPBlock(dim, variant, dp, pconv_mode) for dp in drop_paths[:depth]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class PatchEmbed(nn.Module):
    """The stem: a 4x4 stride-4 conv and BN."""

    def __init__(self, in_chans: int, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch, bias=False)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class PatchMerging(nn.Module):
    """Downsampling between stages: a 2x2 stride-2 conv doubling the channels, and BN."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.reduction = nn.Conv2d(dim, 2 * dim, patch, patch, bias=False)
        self.norm = nn.BatchNorm2d(2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.reduction(x))


class FasterNet(nn.Module):
    """FasterNet classifier, pooled-feature extractor (num_classes=0) or detection backbone.

    With `features_only=True` the forward returns the four stage outputs, each through its own
    BatchNorm (`norm0`, `norm2`, `norm4`, `norm6`, as in the paper's detection backbone).
    """

    def __init__(
        self,
        variant: Variant,
        num_classes: int = 1000,
        in_chans: int = 3,
        features_only: bool = False,
        drop_path_rate: float = 0.0,
        pconv_mode: str = "split_cat",
    ):
        super().__init__()
        if num_classes < 0:
            raise FnxError(f"num_classes must be >= 0 (0 gives pooled features), got {num_classes}")
        self.variant = variant
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.features_only = features_only
        self.patch_embed = PatchEmbed(in_chans, variant.embed_dim, variant.patch_size)
        total = sum(variant.depths)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages: list[nn.Module] = []
        for i, (dim, depth) in enumerate(zip(variant.stage_dims, variant.depths)):
            start = sum(variant.depths[:i])
            stages.append(BasicStage(dim, depth, variant, dpr[start : start + depth], pconv_mode))
            if i < len(variant.depths) - 1:
                stages.append(PatchMerging(dim, variant.merge_size))
        self.stages = nn.Sequential(*stages)
        self.out_indices = (0, 2, 4, 6)
        # The backbone's outputs, as timm describes them: name, channels, reduction (stride), module.
        self.feature_info = [{"name": f"stage{i + 1}", "num_chs": dim, "reduction": variant.patch_size * variant.merge_size**i,
                              "module": f"norm{idx}"}
                             for i, (idx, dim) in enumerate(zip(self.out_indices, variant.stage_dims))]
        if features_only:
            for idx, dim in zip(self.out_indices, variant.stage_dims):
                self.add_module(f"norm{idx}", nn.BatchNorm2d(dim))
        else:
            self.num_features = variant.feature_dim
            self.avgpool_pre_head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(variant.stage_dims[-1], variant.feature_dim, 1, bias=False),
                make_act(variant.act),
            )
            self.head = nn.Linear(variant.feature_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(_init_weights)
        # the input check runs at the entry point, outside the graph: torch.fx, torch.export and third-party
        # quantizers (Sony's MCT) trace forward without meeting Python control flow on the input's shape
        self.register_forward_pre_hook(_check_input)

    def set_pconv_mode(self, mode: str) -> "FasterNet":
        """Switch every PConv to `mode` (one of PCONV_MODES); returns self."""
        for m in self.modules():
            if isinstance(m, PartialConv):
                m.mode = mode
        return self

    def output_specs(self, img_size: int, batch: int | None = 1) -> list[TensorSpec]:
        """Return what forward() gives for a batch of img_size inputs, in order (NCHW feature maps, or logits)."""
        if self.features_only:
            return [TensorSpec(f["name"], [batch, f["num_chs"], img_size // f["reduction"], img_size // f["reduction"]],
                               layout="NCHW", kind="feature_map", channels=f["num_chs"], reduction=f["reduction"])
                    for f in self.feature_info]
        width = self.num_classes or self.num_features
        kind = "logits" if self.num_classes else "pooled_features"
        return [TensorSpec("logits" if self.num_classes else "features", [batch, width], kind=kind, channels=width)]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the four normalized stage feature maps (strides 4, 8, 16, 32)."""
        x = self.patch_embed(x)
        outs = []
        for idx, stage in enumerate(self.stages):
            x = stage(x)
            if idx in self.out_indices:
                outs.append(getattr(self, f"norm{idx}")(x))
        return outs

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_features(x)
        x = self.stages(self.patch_embed(x))
        x = torch.flatten(self.avgpool_pre_head(x), 1)
        return self.head(x)


def _check_input(model: "FasterNet", args: tuple) -> None:
    """Forward pre-hook: FnxError for an input that is not (N, in_chans, H, W) with H and W multiples of 32."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return  # a tracer's proxy (torch.fx) or a keyword call: nothing to check here
    if x.dim() != 4 or x.shape[1] != model.in_chans:
        raise FnxError(f"expected input of shape (N, {model.in_chans}, H, W), got {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % 32 or w % 32:
        raise FnxError(f"input size {h}x{w} is not a multiple of 32; resize or crop to a multiple of 32")


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
