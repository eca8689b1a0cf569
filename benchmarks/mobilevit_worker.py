"""Run inside the separate benchmark venv (torch + torchvision + timm): FasterNet-T0 vs MobileViT-XXS.

Usage: python benchmarks/mobilevit_worker.py WORKDIR WARMUP RUNS OUT.json (PYTHONPATH = the repo root).
FasterNet comes from fnx (imported from the repo); MobileViT-XXS from timm. Both get the same lively
random re-initialization, one thread, batch 1, 224x224.
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib import metadata
from pathlib import Path

warnings.filterwarnings("ignore")


def main() -> None:
    import torch

    from benchmarks.timing import stats, time_engine, time_torch
    from fnx.dev import lively_model
    from fnx.models.init import lively
    from fnx.exporter import deploy_form

    work, warmup, runs, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    torch.set_num_threads(1)
    import timm

    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    t0 = lively_model("fasternet_t0")
    mvit = lively(timm.create_model("mobilevit_xxs", pretrained=False)).eval()
    models = {"FasterNet-T0": {"unfolded": t0, "BN folded": deploy_form(t0)},
              "MobileViT-XXS": {"unfolded": mvit}}
    notes = []
    try:
        fused = fold_timm_bn(mvit)
        with torch.no_grad():
            diff = float((fused(x) - mvit(x)).abs().max())
        models["MobileViT-XXS"]["BN folded"] = fused
        notes.append(f"MobileViT-XXS: BatchNorm folded into the convs of its {count_bn(mvit)} ConvNormAct blocks "
                     f"(max |diff| {diff:.1e}), as fnx's deploy_form folds FasterNet's")
    except Exception as e:  # noqa: BLE001
        notes.append(f"MobileViT-XXS could not be BN-folded ({type(e).__name__}: {str(e)[:120]}); "
                     "its eager rows are unfolded only")
    res: dict = {}
    for name, forms in models.items():
        params = sum(p.numel() for p in forms["unfolded"].parameters())
        res[name] = {"params_m": params / 1e6}
        for form, m in forms.items():
            res[name][f"eager, {form}"] = stats(time_torch(m, x, warmup, runs))
        onnx_path = work / f"{name}.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(forms["unfolded"], (x,), str(onnx_path), dynamo=False, opset_version=20,
                                  input_names=["input"], output_names=["logits"], do_constant_folding=True)
            res[name]["ORT fp32"] = stats(time_engine(onnx_path, x.numpy(), warmup, runs, engine="onnxruntime"))
        except Exception as e:  # noqa: BLE001
            notes.append(f"{name} -> ONNX Runtime failed: {type(e).__name__}: {str(e)[:160]}")
    vers = {}
    for d in ("torch", "torchvision", "timm", "onnx", "onnxruntime"):
        try:
            vers[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    out.write_text(json.dumps({"results": res, "notes": notes, "versions": vers}))


def count_bn(model) -> int:
    from timm.layers import ConvNormAct

    return sum(isinstance(m, ConvNormAct) for m in model.modules())


def fold_timm_bn(model):
    """Return a copy of a timm model with every ConvNormAct's BatchNorm folded into its conv (eval mode)."""
    import copy

    from timm.layers import BatchNormAct2d, ConvNormAct
    from torch import nn

    from fnx.exporter.fold import fold_bn

    m = copy.deepcopy(model).eval()
    for mod in m.modules():
        if isinstance(mod, ConvNormAct) and isinstance(mod.bn, nn.BatchNorm2d):
            bn = mod.bn
            mod.conv = fold_bn(mod.conv, bn)
            mod.bn = nn.Sequential(bn.drop, bn.act) if isinstance(bn, BatchNormAct2d) else nn.Identity()
    left = [n for n, x in m.named_modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise RuntimeError(f"BatchNorm left at {left[0]}")
    return m


if __name__ == "__main__":
    main()
