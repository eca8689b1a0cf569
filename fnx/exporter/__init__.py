"""Export stage: deploy form (BN folded), the FORMATS registry, verified artifacts with their manifests.

Importing `fnx.exporter` (and its FORMATS registry) is torch-free; `export_model` and friends load
torch when first used.
"""

from __future__ import annotations

from fnx.lazy import lazy_getattr
from fnx.exporter.formats import FORMATS, ArtifactFormat, get_format, register_format
from fnx.exporter.options import ExportOptions, Int8Options

_LAZY = {"export_model": "fnx.exporter.pipeline", "ExportResult": "fnx.exporter.pipeline",
         "ParityError": "fnx.exporter.pipeline", "verify_artifact": "fnx.exporter.verify",
         "deploy_form": "fnx.exporter.fold", "fold_bn": "fnx.exporter.fold"}

__all__ = ["FORMATS", "ArtifactFormat", "ExportOptions", "Int8Options", "get_format", "register_format", *_LAZY]


__getattr__ = lazy_getattr("fnx.exporter", _LAZY)
