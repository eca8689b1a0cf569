"""Parity between an artifact's outputs and a reference: figures, and the bounds, all in one place.

Torch-free (numpy only), so the runtime's `fnx verify` and the ARM check use the same code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# The bounds. fp32: max abs <= 1e-4 * max(1, max|ref|) and cosine >= 0.99999; fp16: cosine >= 0.9999.
# int8 (default guard; `--min-cosine` overrides): cosine >= 0.99 against fp32.
BOUNDS: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_rel": 1e-4, "min_cosine": 0.99999},
    "fp16": {"min_cosine": 0.9999},
    "int8": {"min_cosine": 0.99},
}


def bounds_for(precision: str, min_cosine: float | None = None) -> dict[str, float]:
    """Return the parity bounds for precision; a user's `--min-cosine` replaces the int8 cosine bound."""
    bounds = dict(BOUNDS[precision])
    if precision == "int8" and min_cosine is not None:
        bounds["min_cosine"] = float(min_cosine)
    return bounds


@dataclass
class OutputParity:
    """Figures for one output tensor over a set of inputs."""

    name: str
    max_abs: float
    max_rel: float  # max_abs / max(1, max|ref|)
    cosine: float  # the lowest per-sample cosine similarity
    top1_agreement: float | None  # for logits only
    n: int


@dataclass
class ParityReport:
    """The parity of one artifact against its reference, with the verdict against BOUNDS."""

    precision: str
    reference: str
    outputs: list[OutputParity]
    bounds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def cosine_per_sample(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the cosine similarity of each sample's flattened a and b."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.maximum(den, 1e-300), np.where(np.abs(a - b).max(1) == 0, 1.0, 0.0))


def compare_output(name: str, ref: np.ndarray, out: np.ndarray, logits: bool) -> OutputParity:
    """Return the parity figures of out against ref (same shape, batch first)."""
    if ref.shape != out.shape:
        raise ValueError(f"output {name}: shape {out.shape} differs from the reference's {ref.shape}")
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
    top1 = float((out.argmax(-1) == ref.argmax(-1)).mean()) if logits and ref.ndim == 2 else None
    return OutputParity(name, max_abs, max_abs / scale, float(cosine_per_sample(ref, out).min()), top1, int(ref.shape[0]))


def check(
    refs: list[np.ndarray],
    outs: list[np.ndarray],
    precision: str,
    names: list[str] | None = None,
    logits: bool = True,
    reference: str = "pytorch fp32",
    bounds: dict[str, float] | None = None,
) -> ParityReport:
    """Return the ParityReport of outs against refs under the bounds for precision (or the given ones)."""
    names = names or [f"output_{i}" for i in range(len(refs))]
    bounds = dict(BOUNDS[precision] if bounds is None else bounds)
    outputs = [compare_output(n, r, o, logits) for n, r, o in zip(names, refs, outs)]
    failures = []
    for p in outputs:
        if "max_abs_rel" in bounds and p.max_rel > bounds["max_abs_rel"]:
            failures.append(f"{p.name}: max abs diff {p.max_abs:.3g} exceeds {bounds['max_abs_rel']:g} x max(1, max|ref|)")
        if "min_cosine" in bounds and p.cosine < bounds["min_cosine"]:
            failures.append(f"{p.name}: cosine {p.cosine:.6f} is below {bounds['min_cosine']}")
        if "min_top1" in bounds and p.top1_agreement is not None and p.top1_agreement < bounds["min_top1"]:
            failures.append(f"{p.name}: top-1 agreement {p.top1_agreement:.3f} is below {bounds['min_top1']}")
    return ParityReport(precision, reference, outputs, bounds, failures)
