"""The FasterNet variant table (the paper's T0..L), each carrying its preprocessing (timm's manner); torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fnx.errors import FnxError
from fnx.manifest import DEFAULT_CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, Preprocessing

OFFICIAL_RELEASE = "https://github.com/JierunChen/FasterNet/releases/download/v1.0/"
HUB_MIRROR = "hf-hub:timm/{name}.in1k"  # timm's copy of the same ImageNet-1k weights (safetensors, Apache-2.0)


@dataclass(frozen=True)
class Variant:
    """One FasterNet configuration plus the paper's published figures for it."""

    name: str
    embed_dim: int
    depths: tuple[int, int, int, int]
    act: str  # "gelu" | "relu"
    official_file: str
    paper_top1: float
    feature_dim: int = 1280
    n_div: int = 4
    mlp_ratio: float = 2.0
    patch_size: int = 4
    merge_size: int = 2
    layer_scale_init: float = 0.0
    default_img_size: int = 224
    # The evaluation transform the weights were trained for (timm's pretrained cfg for FasterNet).
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bicubic"
    extra: dict = field(default_factory=dict, compare=False)

    def preprocessing(self, img_size: int | None = None) -> Preprocessing:
        """Return this variant's evaluation transform at img_size (default: its own input size)."""
        return Preprocessing.for_size(img_size or self.default_img_size, self.mean, self.std, self.crop_pct,
                                      self.interpolation)

    @property
    def official_url(self) -> str:
        return OFFICIAL_RELEASE + self.official_file

    @property
    def hub_mirror(self) -> str:
        """The `hf-hub:` spec of timm's copy of the official weights (used when the release cannot be had)."""
        return HUB_MIRROR.format(name=self.name)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        for key in ("depths", "mean", "std"):
            d[key] = list(d[key])
        return d


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fasternet_t0", 40, (1, 2, 8, 2), "gelu", "fasternet_t0-epoch.281-val_acc1.71.9180.pth", 71.9),
        Variant("fasternet_t1", 64, (1, 2, 8, 2), "gelu", "fasternet_t1-epoch.291-val_acc1.76.2180.pth", 76.2),
        Variant("fasternet_t2", 96, (1, 2, 8, 2), "relu", "fasternet_t2-epoch.289-val_acc1.78.8860.pth", 78.9),
        Variant("fasternet_s", 128, (1, 2, 13, 2), "relu", "fasternet_s-epoch.299-val_acc1.81.2840.pth", 81.3),
        Variant("fasternet_m", 144, (3, 4, 18, 3), "relu", "fasternet_m-epoch.291-val_acc1.82.9620.pth", 83.0),
        Variant("fasternet_l", 192, (3, 4, 18, 3), "relu", "fasternet_l-epoch.299-val_acc1.83.5060.pth", 83.5),
    )
}

# The paper's Table 3 CPU latency (ms, i9-9900X, PyTorch, batch 1, one thread), for benchmarks.
PAPER_CPU_MS = {"fasternet_t0": 9.2, "fasternet_t1": 17.7, "fasternet_t2": 33.5,
                "fasternet_s": 71.2, "fasternet_m": 129.5, "fasternet_l": 219.5}


def canonical_name(name: str) -> str:
    """Return the table key for `name` ("fasternet-t2", "FasterNet_T2" and "t2" all give "fasternet_t2")."""
    key = name.strip().lower().replace("-", "_")
    if not key.startswith("fasternet_"):
        key = "fasternet_" + key
    if key not in VARIANTS:
        valid = ", ".join(n.replace("_", "-") for n in VARIANTS)
        raise FnxError(f"unknown model {name!r}; valid models: {valid}")
    return key


def get_variant(name: str) -> Variant:
    """Return the Variant for a model name in any accepted spelling."""
    return VARIANTS[canonical_name(name)]


def check_img_size(img_size: int) -> int:
    """Return img_size if FasterNet can take it (a positive multiple of 32), else raise FnxError."""
    if img_size < 32:
        raise FnxError(f"input size {img_size} is too small: FasterNet takes a positive multiple of 32 (the stem and "
                       f"three merging layers downsample by 32 in all); use 224 (the default) or another multiple of 32")
    if img_size % 32:
        lower, upper = max(32, img_size // 32 * 32), (img_size // 32 + 1) * 32
        raise FnxError(
            f"input size {img_size} is not a multiple of 32 (the stem and three merging layers "
            f"downsample by 32 in all); use {lower} or {upper}"
        )
    return img_size
