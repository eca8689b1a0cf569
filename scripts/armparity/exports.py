"""The artifacts checked on aarch64, exported on the host once and cached (fnx.dev.cached_export).

FasterNet-T0 at 224x224 with lively random weights (O(1) logits): fp32 and int8, TFLite and ONNX (int8 in the forms
chosen for an aarch64 target), ncnn fp32 and fp16 weights, ExecuTorch (.pte, XNNPACK) fp32 and int8;
and the shipped, trained demo model (digits, T0 at 64x64) as int8 TFLite calibrated on its train split.
"""

from __future__ import annotations

from pathlib import Path

from fnx.calibration.options import Int8Options
from fnx.dev import ExportRecipe, cached_export

# The int8 forms chosen for an ARM64 target, what a user exporting for a Pi gets with --target aarch64 (ONNX: 8-bit
# weights by the rule; TFLite and ExecuTorch: their default form): their parity on emulated aarch64 is checked here.
# Chosen by rule, not timed on this x86 host: the same files on either CPU kind, and no candidate conversions beside
# pytest (timing TFLite's and ExecuTorch's candidates cost about 30 s each at 224 px).
T0_INT8 = Int8Options("synthetic", 32, target="aarch64")
WANTED = [("tflite", "fp32"), ("onnx", "fp32"), ("ncnn", "fp32"), ("ncnn", "fp16"), ("executorch", "fp32"),
          ("onnx", "int8"), ("tflite", "int8"), ("executorch", "int8")]
# exported beside the first jobs, one after the other in WANTED's order: int8 calibrates and guards, and
# ExecuTorch's fp32 lowering took 35 s alone, 177 s at nice 19 beside pytest (the cached exports: 4 s)
BACKGROUND = {("executorch", "fp32"), ("tflite", "int8"), ("executorch", "int8")}


def t0_recipe(fmt: str, precision: str) -> ExportRecipe:
    if precision != "int8":  # --target chooses int8 forms, and a float export refuses it
        return ExportRecipe("fasternet_t0", fmt, precision, img_size=224, num_classes=1000, seed=0)
    return ExportRecipe("fasternet_t0", fmt, precision, img_size=224, num_classes=1000, seed=0, int8=T0_INT8)


def demo_recipe(cache: Path) -> ExportRecipe:
    from fnx.demo.digits import build_digits
    from fnx.demo.train_demo import DEMO_CHECKPOINT

    digits = build_digits(cache / "digits")
    return ExportRecipe("fasternet_t0", "tflite", "int8", img_size=64, num_classes=10, weights=str(DEMO_CHECKPOINT),
                        int8=Int8Options(str(digits / "train"), 128, max_top1_drop=1.0), data=str(digits / "test"))


def export(recipe: ExportRecipe, cache: Path) -> Path:
    """Return the cached artifact for recipe (exporting it on first use)."""
    return cached_export(recipe, cache / "exports")


def is_cached(recipe: ExportRecipe, cache: Path) -> bool:
    return (cache / "exports" / recipe.key() / "artifact.txt").is_file()
