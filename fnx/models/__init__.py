"""FasterNet models: the variant table, the network, checkpoints, weights and complexity.

The variant table and `describe` are torch-free; the network and everything that builds it load
torch when first used (so `fnx models` and the runtime never import it).
"""

from __future__ import annotations

from fnx.lazy import lazy_getattr
from fnx.models.costs import describe
from fnx.models.variants import VARIANTS, Variant, canonical_name, check_img_size, get_variant

_LAZY = {"FasterNet": "fnx.models.fasternet", "PartialConv": "fnx.models.fasternet",
         "RandomWeightsWarning": "fnx.models.factory", "create_model": "fnx.models.factory",
         "count_flops": "fnx.models.complexity", "count_params": "fnx.models.complexity"}

__all__ = ["VARIANTS", "Variant", "canonical_name", "check_img_size", "describe", "get_variant", *_LAZY]


__getattr__ = lazy_getattr("fnx.models", _LAZY)
