"""The manifest's record of an artifact compiled for an accelerator (an NPU) from another, verified artifact. Torch-free.

An NPU compiler (Arm's Vela for an Ethos-U) turns a file fnx can run and check (an int8 TFLite) into one only the
accelerator runs. Its parity and calibration figures are therefore those of the file it was compiled from, which
the record names by sha256; what the compiler says about speed and memory is its performance model's estimate,
kept apart from anything measured. A compiler with a simulator (Rockchip's rknn-toolkit2) is judged on the
simulator's outputs instead, and its per-layer figures are kept (`layers`); one that places the whole model in the
accelerator's own memory (Sony's IMX500 converter) says how much it takes (`memory`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fnx.records import Record


@dataclass
class NpuEstimate(Record):
    """What the compiler's performance model estimates for one inference (batch 1): never measured on hardware."""

    ops_on_npu: int
    ops_on_cpu: int  # ops left to the host CPU (TFLite Micro's kernels beside the NPU)
    latency_ms: float | None = None
    cycles: int | None = None
    clock_hz: float | None = None
    sram_bytes: int | None = None  # SRAM used: the tensor arena (or its cache, by memory mode)
    off_chip_bytes: int | None = None  # memory used outside the SRAM: weights, and the arena where it lives there
    off_chip_memory: str | None = None  # what that memory is, e.g. "Off-chip Flash" or "DRAM"

    @property
    def npu_share(self) -> float:
        """The fraction of ops on the NPU."""
        total = self.ops_on_npu + self.ops_on_cpu
        return self.ops_on_npu / total if total else 0.0


@dataclass
class SimulatedLayer(Record):
    """One layer of the compiled model on the vendor's simulator against its float run (rknn-toolkit2's
    accuracy_analysis): cosine accumulated from the input (entire) and of that layer alone on float inputs (single)."""

    layer: str
    op: str
    cosine: float
    cosine_single: float


@dataclass
class NpuMemory(Record):
    """The compiler's memory report: what the model takes of the accelerator's on-chip memory (the IMX500's), by the
    converter's own allocation (not measured on hardware). A model that does not fit is refused, so a kept one fits."""

    used_bytes: int  # weights + runtime (activations) + reserved
    available_bytes: int
    model_bytes: int  # the weights' share
    runtime_bytes: int  # the activations' share
    fits: bool

    @property
    def utilization(self) -> float:
        return self.used_bytes / self.available_bytes if self.available_bytes else 0.0


@dataclass
class Compilation(Record):
    """How the artifact was compiled, from which verified file, and the compiler's estimates."""

    compiler: str  # distribution and version, e.g. "ethos-u-vela 5.2.0"
    target: str  # the accelerator configuration it was compiled for, e.g. "ethos-u55-256"
    source_format: str  # the format of the verified file it was compiled from
    source_sha256: str
    source_size_bytes: int
    parity: str  # where the parity and calibration figures of this manifest were measured
    options: dict[str, str] = field(default_factory=dict)  # the compiler's settings beyond the target
    estimate: NpuEstimate | None = None
    layers: list[SimulatedLayer] = field(default_factory=list)  # per layer on a simulator, where the compiler has one
    memory: NpuMemory | None = None  # the on-chip memory the compiled model takes, where the compiler reports it

    def row(self) -> dict[str, Any]:
        """The estimate as a bench row's fields (`fnx bench`, `fnx bench all`): marked an estimate, never a timing."""
        e, mem = self.estimate, self.memory
        kib = lambda n: None if n is None else n / 1024  # noqa: E731
        return {"estimate": True, "target": self.target, "compiler": self.compiler,
                "estimated_ms": e.latency_ms if e else None, "ops_on_npu": e.ops_on_npu if e else None,
                "ops_on_cpu": e.ops_on_cpu if e else None, "sram_kib": kib(e.sram_bytes) if e else None,
                "off_chip_kib": kib(e.off_chip_bytes) if e else None,
                "off_chip_memory": e.off_chip_memory if e else None,
                "on_chip_kib": kib(mem.used_bytes) if mem else None}
