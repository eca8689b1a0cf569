"""One benchmark run's settings and caches, and fnx's own artifacts for it (exported once per run)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Ctx:
    """Run-wide settings and caches shared by the benchmarks of one `python -m benchmarks` run."""

    quick: bool
    work: Path
    img_dir: Path
    doc_dir: Path
    log: Callable[[str], None] = print
    cache: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return ["fasternet_t0", "fasternet_t2"] if self.quick else ["fasternet_t0", "fasternet_t1", "fasternet_t2", "fasternet_s"]

    def img(self, name: str) -> tuple[Path, str]:
        """Return (absolute path, path relative to the doc) for a figure."""
        path = self.img_dir / name
        return path, os.path.relpath(path, self.doc_dir)


def checkpoint(ctx: Ctx, name: str) -> Path:
    """The lively model's state dict on disk (what `fnx export --weights PATH` takes)."""
    from fnx.dev import write_lively_checkpoint

    return write_lively_checkpoint(name, ctx.work / f"{name}_lively.pth")


def artifacts(ctx: Ctx, name: str, precision: str, formats=("onnx", "tflite")) -> dict[str, Path | Exception]:
    """fnx's own artifacts for a model at 224 (lively weights; exported once, through fnx.dev.cached_export).

    Returns {format: path}; an export that failed is reported as {format: Exception}.
    """
    from fnx.calibration.options import Int8Options
    from fnx.dev import ExportRecipe, cached_export

    for fmt in formats:
        if (name, precision, fmt) in ctx.cache:
            continue
        recipe = ExportRecipe(name, fmt, precision, img_size=224, weights=str(checkpoint(ctx, name)),
                              int8=Int8Options("synthetic", 32, min_cosine=0.5), verify=False)
        t0 = time.perf_counter()
        try:
            ctx.cache[(name, precision, fmt)] = cached_export(recipe, ctx.work / "exports")
        except Exception as e:  # noqa: BLE001 - reported in the tables
            ctx.cache[(name, precision, fmt)] = e
        ctx.cache[("export_s", name, precision, fmt)] = time.perf_counter() - t0
        failed = isinstance(ctx.cache[(name, precision, fmt)], Exception)
        ctx.log(f"    exported {name} {precision} {fmt} in {time.perf_counter() - t0:.0f} s" + (" (failed)" if failed else ""))
    return {f: ctx.cache[(name, precision, f)] for f in formats}
