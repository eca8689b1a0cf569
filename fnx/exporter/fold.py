"""BatchNorm folding: the deploy form of FasterNet has no BatchNorm left."""

from __future__ import annotations

import copy

import torch
from torch import nn

from fnx.errors import FnxError
from fnx.models.fasternet import FasterNet, MLPBlock, PatchEmbed, PatchMerging


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new conv equal to bn(conv(x)) in eval mode (BN's statistics folded into weight and bias)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    with torch.no_grad():
        fused.weight.copy_(conv.weight.detach() * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return fused


class ChannelAffine(nn.Module):
    """y = x * scale + shift per channel: an eval-mode BatchNorm with no conv in front to fold into."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        self.register_buffer("scale", scale.reshape(1, -1, 1, 1).clone())
        self.register_buffer("shift", (bn.bias.detach() - bn.running_mean * scale).reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def deploy_form(model: FasterNet, pconv_mode: str = "split_cat") -> FasterNet:
    """Return an eval-mode copy of model with every BatchNorm folded away and PConv in pconv_mode.

    The input model is left untouched.
    """
    if not isinstance(model, FasterNet):
        raise FnxError(f"deploy_form expects a fnx FasterNet, got {type(model).__name__}")
    m = copy.deepcopy(model).eval()
    for module in m.modules():
        if isinstance(module, PatchEmbed):
            module.proj, module.norm = fold_bn(module.proj, module.norm), nn.Identity()
        elif isinstance(module, PatchMerging):
            module.reduction, module.norm = fold_bn(module.reduction, module.norm), nn.Identity()
        elif isinstance(module, MLPBlock):
            module.mlp[0], module.mlp[1] = fold_bn(module.mlp[0], module.mlp[1]), nn.Identity()
    if m.features_only:
        for idx in m.out_indices:
            setattr(m, f"norm{idx}", ChannelAffine(getattr(m, f"norm{idx}")))
    left = [n for n, mod in m.named_modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise FnxError(f"BatchNorm left after folding at {left[0]}; this model layout is not supported")
    m.set_pconv_mode(pconv_mode)
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _folded_pairs(model: FasterNet) -> list[tuple[str, str]]:
    """Return (conv path, BatchNorm path) of every conv deploy_form folds a BatchNorm into."""
    pairs = []
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        if isinstance(module, PatchEmbed):
            pairs.append((prefix + "proj", prefix + "norm"))
        elif isinstance(module, PatchMerging):
            pairs.append((prefix + "reduction", prefix + "norm"))
        elif isinstance(module, MLPBlock):
            pairs.append((prefix + "mlp.0", prefix + "mlp.1"))
    return pairs


def load_folded_weights(model: FasterNet, deployed_state: dict[str, torch.Tensor]) -> FasterNet:
    """Load deploy-form weights (BN folded into conv weight and bias) into model, which keeps its BatchNorms.

    Each folded conv's weight goes to the conv and its bias to an identity BatchNorm (weight 1, mean 0, variance
    1 - eps), so deploy_form(model) gives back the same weights and the checkpoint keeps the official layout.
    """
    if model.features_only:
        raise FnxError("folded weights load into a classifier, not a --features backbone")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    expected = set(deploy_form(model).state_dict())
    if set(deployed_state) != expected:
        missing, extra = sorted(expected - set(deployed_state)), sorted(set(deployed_state) - expected)
        raise FnxError(f"these deploy-form weights are not {model.variant.name}'s: missing {missing[:3]}, "
                       f"unexpected {extra[:3]}")
    state.update({k: v for k, v in deployed_state.items() if k in state})  # the convs and layers without a BN
    for conv, bn in _folded_pairs(model):
        norm = model.get_submodule(bn)
        state[f"{bn}.bias"] = deployed_state[f"{conv}.bias"]
        state[f"{bn}.weight"] = torch.ones_like(norm.weight)
        state[f"{bn}.running_mean"] = torch.zeros_like(norm.running_mean)
        state[f"{bn}.running_var"] = torch.full_like(norm.running_var, 1.0 - norm.eps)
    model.load_state_dict(state, strict=True)
    return model
