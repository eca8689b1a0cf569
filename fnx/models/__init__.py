"""FasterNet models: the variant table, the network, checkpoints, weights and complexity."""

from fnx.models.variants import VARIANTS, Variant, canonical_name, check_img_size, get_variant
from fnx.models.fasternet import FasterNet, PartialConv
from fnx.models.factory import RandomWeightsWarning, create_model
from fnx.models.complexity import count_flops, count_params, describe

__all__ = [
    "VARIANTS", "Variant", "canonical_name", "check_img_size", "get_variant", "FasterNet", "PartialConv",
    "RandomWeightsWarning", "create_model", "count_flops", "count_params", "describe",
]
