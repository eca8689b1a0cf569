"""The developer harness shared by tests, benchmarks and scripts (fnx itself never imports it).

- `lively_model` / `write_lively_checkpoint`: FasterNets with signal-preserving random weights
  (O(1) logits, non-default BatchNorm statistics), the stand-in for trained weights offline.
- `ExportRecipe` / `cached_export`: artifacts exported once and reused, keyed by the recipe, fnx's
  sources and the converter versions.
- `fnx.quiet.silenced` quiets third-party logs; `fnx.versions.versions` lists versions.
"""

from fnx.dev.checkpoints import lively_model, write_lively_checkpoint
from fnx.dev.exports import ExportRecipe, cached_export, sources_key

__all__ = ["ExportRecipe", "cached_export", "lively_model", "sources_key", "write_lively_checkpoint"]
