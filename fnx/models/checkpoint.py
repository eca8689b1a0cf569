"""Reading checkpoints safely (never unpickling code) and loading them strictly into FasterNet.

Accepted: the official release layout (flat state_dict) and timm's layout, as `.pth`/`.pt` or
`.safetensors`, bare or wrapped in `state_dict`/`model` keys and `module.`/`model.` prefixes.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn

from fnx.errors import FnxError
from fnx.models.variants import VARIANTS

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")
PREFIXES = ("module.", "model.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Return the tensors of a checkpoint file, unwrapped and in the official key layout."""
    path = Path(path)
    if not path.is_file():
        raise FnxError(f"checkpoint {path} does not exist; pass an existing file to --weights")
    raw = _read_file(path)
    return to_official_layout(unwrap(raw, path))


def _read_file(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise FnxError(f"could not read {path} as safetensors ({str(e)[:200]}); the file is truncated or corrupt") from e
    if path.suffix.lower() in (".onnx", ".tflite"):
        raise FnxError(f"{path} is an exported artifact, not a PyTorch checkpoint: pass the .pth/.pt/.safetensors "
                       f"file it was exported from")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e):  # not a pickle of code, just not a pickle of tensors
            raise FnxError(f"could not read {path} as a PyTorch checkpoint ({torch_reason(e)}): the file is truncated "
                           f"or corrupt, or not a checkpoint of tensors (.pth/.pt/.safetensors)") from e
        raise FnxError(
            f"refused to load {path}: it contains pickled Python objects that could run code "
            f"({torch_reason(e)}). Re-save it as a plain state_dict of tensors or as .safetensors"
        ) from e
    except Exception as e:  # torch raises many types for a damaged file (RuntimeError, EOFError, IndexError...)
        raise FnxError(f"could not read checkpoint {path} ({torch_reason(e)}); the file is truncated or corrupt") from e


def torch_reason(error: BaseException) -> str:
    """Return the part of a torch.load error that says what is wrong, without torch's advice to unpickle anyway.

    fnx never suggests `weights_only=False`: that would run whatever code the file carries.
    """
    sentences = [s.strip() for line in str(error).splitlines() for s in line.split(". ") if s.strip()]
    advice = ("weights_only", "trusted source", "documentation", "PyTorch 2.6", "arbitrary code", "Weights only load",
              "file an issue")
    kept = [s for s in sentences if not any(a in s for a in advice)]
    return (kept[0] if kept else type(error).__name__).rstrip(".")[:200]


def unwrap(obj, source: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """Return the flat tensor dict inside a training checkpoint, with wrapper prefixes removed."""
    for _ in range(3):
        if isinstance(obj, dict):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = inner
                continue
        break
    if not isinstance(obj, dict) or not obj:
        raise FnxError(f"{source} holds no state_dict of tensors; expected a dict of parameter name -> tensor")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise FnxError(f"{source} holds no tensors; expected a dict of parameter name -> tensor")
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def is_timm_layout(sd: dict) -> bool:
    return any(k.startswith(("conv_head.", "classifier.")) or ".downsample." in k for k in sd)


def to_official_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return sd with timm's names mapped to the official ones (unchanged if already official).

    timm nests merging inside the next stage (`stages.N.downsample`, N >= 1) and names the head
    `conv_head`/`classifier`; the official model has merging as its own entry (`stages.2N-1`).
    """
    if not is_timm_layout(sd):
        return dict(sd)
    out = {}
    for k, v in sd.items():
        if k == "conv_head.weight":
            k = "avgpool_pre_head.1.weight"
        elif k.startswith("classifier."):
            k = "head." + k[len("classifier."):]
        else:
            m = re.match(r"stages\.(\d+)\.(downsample|blocks)\.(.*)", k)
            if m:
                i, part, rest = int(m.group(1)), m.group(2), m.group(3)
                k = f"stages.{2 * i - 1}.{rest}" if part == "downsample" else f"stages.{2 * i}.blocks.{rest}"
        out[k] = v
    return out


def to_timm_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return an official-layout state_dict in timm's layout (the inverse of to_official_layout)."""
    out = {}
    for k, v in sd.items():
        if k == "avgpool_pre_head.1.weight":
            k = "conv_head.weight"
        elif k.startswith("head."):
            k = "classifier." + k[len("head."):]
        else:
            m = re.match(r"stages\.(\d+)\.(.*)", k)
            if m:
                j, rest = int(m.group(1)), m.group(2)
                k = f"stages.{j // 2}.{rest}" if j % 2 == 0 else f"stages.{(j + 1) // 2}.downsample.{rest}"
        out[k] = v
    return out


def infer_config(sd: dict[str, torch.Tensor]) -> dict:
    """Return {variant, num_classes, in_chans} guessed from an official-layout state_dict."""
    info: dict = {}
    stem = sd.get("patch_embed.proj.weight")
    if stem is not None:
        info["in_chans"] = int(stem.shape[1])
        depths = []
        for j in (0, 2, 4, 6):
            ids = {int(m.group(1)) for k in sd if (m := re.match(rf"stages\.{j}\.blocks\.(\d+)\.", k))}
            depths.append(len(ids))
        for v in VARIANTS.values():
            if v.embed_dim == stem.shape[0] and tuple(depths) == v.depths:
                info["variant"] = v.name
    if "head.weight" in sd:
        info["num_classes"] = int(sd["head.weight"].shape[0])
    elif "avgpool_pre_head.1.weight" in sd:
        info["num_classes"] = 0
    return info


def load_state_dict_strict(model: nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy sd into model; any missing, unexpected or mis-shaped key raises FnxError naming it."""
    expected = model.state_dict()
    guess = infer_config(sd)
    hint = _hint(model, guess)
    for k, v in expected.items():
        if k not in sd:
            raise FnxError(f"{source} does not match {_describe(model)}: missing key {k!r}.{hint}")
        if sd[k].shape != v.shape:
            raise FnxError(
                f"{source} does not match {_describe(model)}: {k!r} has shape {tuple(sd[k].shape)} "
                f"in the checkpoint but {tuple(v.shape)} in the model.{hint}"
            )
    extra = [k for k in sd if k not in expected]
    if extra:
        raise FnxError(f"{source} does not match {_describe(model)}: unexpected key {extra[0]!r}.{hint}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in sd.items()}, strict=True)


def _describe(model: nn.Module) -> str:
    v = getattr(model, "variant", None)
    name = v.name if v else type(model).__name__
    return f"{name} (num_classes={getattr(model, 'num_classes', '?')})"


def _hint(model: nn.Module, guess: dict) -> str:
    tips = []
    v = getattr(model, "variant", None)
    if guess.get("variant") and v and guess["variant"] != v.name:
        tips.append(f"the checkpoint looks like {guess['variant'].replace('_', '-')}: use that model name")
    elif v and "variant" not in guess and "patch_embed.proj.weight" in guess:
        tips.append("the checkpoint matches no FasterNet variant")
    if "num_classes" in guess and guess["num_classes"] != getattr(model, "num_classes", None) and not getattr(model, "features_only", False):
        tips.append(f"its head has {guess['num_classes']} classes: pass --num-classes {guess['num_classes']}")
    return (" Hint: " + "; ".join(tips) + ".") if tips else ""
