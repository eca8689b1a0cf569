"""Parity between an artifact's outputs and a reference: figures, and the bounds, all in one place.

Torch-free (numpy only), so the runtime's `fnx verify` and the ARM check use the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fnx.records import Record

# An artifact against the PyTorch fp32 model (export, `fnx verify`). fp32: max abs <= 1e-4 * max(1, max|ref|)
# and cosine >= 0.99999; fp16: cosine >= 0.9999. int8 (the guard's default; `--min-cosine` overrides it for
# both the guard and the export check): cosine >= 0.99.
BOUNDS: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_rel": 1e-4, "min_cosine": 0.99999},
    "fp16": {"min_cosine": 0.9999},
    "int8": {"min_cosine": 0.99},
}

# An fp32/fp16 artifact computed by an engine in a lower precision than its own (OpenVINO's inference-precision
# hint): bf16 keeps 8 mantissa bits (~0.4% per op), f16 11 bits. T0/T2 logits cosine 0.99998 in bf16 on an Intel
# Xeon with AMX (shared/FINDINGS.md); not measurable on CPUs without bf16.
INFERENCE_PRECISION_BOUNDS: dict[str, dict[str, float]] = {
    "bf16": {"min_cosine": 0.999},
    "f16": {"min_cosine": 0.9999},
}

# The same artifact on two machines (emulated aarch64 vs x86_64, the ARM parity run), per precision.
# fp32/fp16: max|arm - x86| / max(1, max|x86|). int8: the archs' int8 kernels round differently (+-1 per layer's
# requantization, over 40 layers): measured 2-7 output steps apart, logits cosine 0.996-0.9997, depending on the
# x86 CPU. So int8 is bounded by the relative L2 distance ||arm - x86|| / ||x86|| <= sqrt(2 (1 - 0.99)) ~ 0.141,
# the distance at which two equally long vectors have fnx's default int8 cosine (BOUNDS["int8"]); unlike cosine it
# also catches a wrong output scale. Each arch's int8 output must also meet the artifact's own int8 bound against
# the PyTorch fp32 model (the export's check, repeated on aarch64). Preprocessing (Pillow on both) agrees like fp32.
CROSS_ARCH_BOUNDS: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_rel": 1e-5},
    "fp16": {"max_abs_rel": 1e-2},
    "int8": {"rel_l2": float(np.sqrt(2 * (1 - BOUNDS["int8"]["min_cosine"])))},
    "preprocessing": {"max_abs": 1e-5},
}


def cross_arch_failures(ref: np.ndarray, got: np.ndarray, precision: str) -> tuple[list[str], dict[str, float]]:
    """Return (failures, figures) of one artifact's output on another machine (got) against this one's (ref).

    Each CROSS_ARCH_BOUNDS entry bounds the figure of the same name from above.
    """
    bounds = CROSS_ARCH_BOUNDS[precision]
    if ref.shape != got.shape:
        return [f"shape {got.shape} differs from {ref.shape}"], {}
    r, g = ref.astype(np.float64), got.astype(np.float64)
    figures = {"max_abs": float(np.abs(g - r).max()), "max_abs_rel": float(np.abs(g - r).max() / max(1.0, np.abs(r).max())),
               "rel_l2": float(np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30)),
               "cosine": float(cosine_per_sample(r, g).min())}
    failures = [f"{k} {figures[k]:.3g} exceeds {v:.3g}" for k, v in bounds.items() if figures[k] > v]  # figure <= bound
    return failures, figures


def bounds_for(precision: str, min_cosine: float | None = None,
               inference_precision: str | None = None) -> dict[str, float]:
    """Return the parity bounds for precision; a user's `--min-cosine` replaces the int8 cosine bound.

    A float artifact computed in bf16/f16 by its engine (inference_precision) gets that precision's bound.
    """
    bounds = dict(BOUNDS[precision])
    if precision == "int8" and min_cosine is not None:
        bounds["min_cosine"] = float(min_cosine)
    if precision != "int8" and inference_precision in INFERENCE_PRECISION_BOUNDS:
        bounds = dict(INFERENCE_PRECISION_BOUNDS[inference_precision])
    return bounds


@dataclass
class OutputParity(Record):
    """Figures for one output tensor over a set of inputs."""

    name: str
    max_abs: float
    max_rel: float  # max_abs / max(1, max|ref|)
    cosine: float  # the lowest per-sample cosine similarity
    top1_agreement: float | None  # for logits only
    n: int


@dataclass
class ParityReport(Record):
    """The parity of one artifact against its reference, with the verdict against its bounds."""

    DERIVED: ClassVar[tuple[str, ...]] = ("passed",)

    precision: str
    reference: str
    outputs: list[OutputParity]
    bounds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    inputs: str | None = None  # what the outputs were computed on

    @property
    def passed(self) -> bool:
        return not self.failures


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
    inputs: str | None = None,
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
    return ParityReport(precision, reference, outputs, bounds, failures, inputs)
