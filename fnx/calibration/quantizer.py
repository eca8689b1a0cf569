"""The one interface between a format's int8 converter and the calibration library (guard, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from fnx.manifest import LayerError


class Quantizer(Protocol):
    """Writes an int8 artifact from calibration data, with some layers kept in float; explains its errors.

    Used as a context manager: temporary files (an fp32 intermediate) live until it exits.
    """

    scheme: str  # the calibration method, recorded in the manifest, e.g. "minmax" or "minmax (PT2E observers)"
    description: str  # the int8 graph it writes (types, granularity), the manifest's calibration.scheme
    io: str  # the artifact's input/output type: "int8" or "float" (QDQ keeps float I/O)
    notes: list[str]  # what it chose and why, for the manifest's calibration notes
    form: str  # targets with several `int8_forms`: the form the next quantize() writes (the caller sets it)

    def __enter__(self) -> "Quantizer": ...

    def __exit__(self, *exc) -> None: ...

    def quantize(self, out: Path, keep_float: list[str]) -> None:
        """Write the int8 artifact to out; layers named in keep_float (module paths) stay float."""

    def layer_errors(self, out: Path, probe_nhwc: np.ndarray) -> list[LayerError]:
        """Return every conv/linear layer's int8 error on the probe images, worst first."""

    def float_ops(self, out: Path) -> dict[str, int]:
        """Return {op type: count} of the compute ops that run in float in the int8 artifact at out."""


class RestoringQuantizer(Quantizer, Protocol):
    """A Quantizer with an accuracy-aware lever of its own, which the guard uses instead of returning the worst
    layers by their int8 error to float (fnx.calibration.guard)."""

    restorer: str  # what restore() runs, in the guard's progress and the manifest's notes

    def restore(self, out: Path, probe_nhwc: np.ndarray, refs: list[np.ndarray], min_cosine: float,
                max_steps: int) -> list[str]:
        """Replace the all-int8 artifact at out with one whose lowest cosine to refs (the reference outputs of
        probe_nhwc, one array per output) reaches min_cosine, in at most max_steps steps of returning ops to float;
        return the ops it left in float."""
