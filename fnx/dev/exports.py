"""Exports made once and reused: a recipe (model, size, precision, calibration), cached by content."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import fnx
from fnx.calibration.options import Int8Options
from fnx.formats import artifact_files
from fnx.versions import versions


@dataclass(frozen=True)
class ExportRecipe:
    """One artifact to make: the model, its weights (a lively random seed, or a checkpoint path), size, precision."""

    model: str = "fasternet_t0"
    fmt: str = "tflite"
    precision: str = "fp32"
    img_size: int = 224
    num_classes: int = 1000
    seed: int = 0  # lively random weights from this seed, unless weights is given
    weights: str | None = None
    int8: Int8Options = field(default_factory=lambda: Int8Options("synthetic", 32))
    data: str | None = None  # images for the export's parity check
    verify: bool = True

    def key(self) -> str:
        """Return a short hash of the recipe, fnx's sources and the versions of its format's converters (the format
        registry's list: an upgraded converter makes a new export)."""
        from fnx.exporter.formats import get_format

        recipe = json.dumps(asdict(self), sort_keys=True, default=str)
        converters = versions(get_format(self.fmt).converters, missing="absent")
        return hashlib.sha256((recipe + sources_key() + json.dumps(converters, sort_keys=True)).encode()).hexdigest()[:16]


def sources_key() -> str:
    """Return a hash of fnx's own source files (a change to fnx invalidates cached exports)."""
    root = Path(fnx.__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json", ".txt"):
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()[:16]


def cached_export(recipe: ExportRecipe, cache: Path) -> Path:
    """Return the artifact for recipe under cache/<key>/ (with its manifest), exporting it on the first call."""
    from fnx.dev.checkpoints import write_lively_checkpoint
    from fnx.exporter import ExportOptions, export_model
    from fnx.quiet import silenced

    folder = Path(cache) / recipe.key()
    done = folder / "artifact.txt"
    if done.is_file() and (folder / done.read_text().strip()).is_file():
        path = folder / done.read_text().strip()
        if all(f.is_file() for f in artifact_files(path)):
            return path
    folder.mkdir(parents=True, exist_ok=True)
    weights = recipe.weights or str(write_lively_checkpoint(
        recipe.model, Path(cache) / f"{recipe.model}_{recipe.num_classes}_lively_seed{recipe.seed}.pth",
        recipe.num_classes, recipe.seed))
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        opts = ExportOptions(formats=(recipe.fmt,), precision=recipe.precision, weights=weights, img_size=recipe.img_size,
                             out_dir=tmp, int8=recipe.int8, verify=recipe.verify,
                             data=Path(recipe.data) if recipe.data else None)
        with silenced():
            (res,) = export_model(recipe.model, opts)
        for p in (*artifact_files(res.artifact), res.artifact.with_suffix(".json")):
            shutil.move(str(p), folder / p.name)  # every file of the artifact (OpenVINO IR: .xml and .bin)
        done.write_text(res.artifact.name + "\n")
        return folder / res.artifact.name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
