"""The outputs a vendor's toolchain computed for an artifact it built, kept for the guard and the parity check.

A toolchain that judges its own file on a simulator (rknn-toolkit2) or on its quantized model (Sony's MCT) can do
so only in the run that built it, so that run computes every batch fnx will judge and hands the outputs back. They
are kept here by the artifact's sha256 (`SIMULATED`), so `SimulatedFormat.simulate` answers for exactly that file,
and `compile` gives the build's record once the checks are done. Torch-free.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx.compilation import Compilation
from fnx.errors import FnxError
from fnx.fileio import sha256_file


@dataclass
class Simulated:
    """What a toolchain said about one file it built: the record, and its outputs by input batch."""

    compilation: Compilation
    outputs: dict[str, list[np.ndarray]]  # by batch_key of the NCHW input batch


SIMULATED: dict[str, Simulated] = {}  # by the artifact's sha256


def batch_key(batch_nchw: np.ndarray) -> str:
    """A digest of an input batch (its shape and float32 bytes)."""
    x = np.ascontiguousarray(batch_nchw, dtype=np.float32)
    return hashlib.sha256(repr(x.shape).encode() + x.tobytes()).hexdigest()[:16]


def keep(path: Path, compilation: Compilation, batches: list[np.ndarray], stacked: list[np.ndarray]) -> Simulated:
    """Keep the record of the file at path and its outputs (stacked over the NCHW batches, in order); returns them."""
    outputs, start = {}, 0
    for b in batches:
        outputs[batch_key(b)] = [o[start:start + len(b)] for o in stacked]
        start += len(b)
    SIMULATED[sha256_file(path)] = found = Simulated(compilation, outputs)
    return found


class SimulatedFormat:
    """Mixin of an ArtifactFormat whose files no fnx engine runs, judged on what its toolchain computed at build time
    (`keep`): `simulate` and `compile` answer from SIMULATED."""

    not_simulated: ClassVar[str]  # why a file or batch not kept cannot be judged now, and where it runs instead

    def simulate(self, path: Path, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        done = SIMULATED.get(sha256_file(path))
        key = batch_key(batch_nhwc.transpose(0, 3, 1, 2))
        if done is None or key not in done.outputs:
            raise FnxError(f"{Path(path).name} was not simulated on these images when it was built: "
                           f"{self.not_simulated}")
        return done.outputs[key]

    def compile(self, path: Path, opts) -> Compilation:
        """The record of the build that wrote path; its outputs are let go (the guard and the parity check have
        judged them)."""
        return SIMULATED.pop(sha256_file(path)).compilation
