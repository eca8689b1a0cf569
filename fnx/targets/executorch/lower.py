"""ExecuTorch lowering: torch.export, then `to_edge_transform_and_lower` with the XNNPACK partitioner, then the
`.pte` program; and what a written program holds (its delegate subgraphs)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.quiet import quiet

INSTALL = pip_install("export", "executorch")


def executorch_exir():
    """Return executorch.exir (FnxError naming the extra when ExecuTorch is missing)."""
    for name in ("torchao", "torch.utils._pytree"):  # optional CUDA kernels and pytree deprecations: noise here
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from executorch import exir
    except ImportError as e:
        raise FnxError(f"ExecuTorch export needs executorch: {INSTALL}") from e
    return exir


def write_pte(module, sample: tuple, path: Path) -> None:
    """Export module at the sample's shapes, lower it to XNNPACK and write the .pte program to path."""
    import torch

    exir = executorch_exir()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    def lower() -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.export's and exir's deprecation chatter
            program = torch.export.export(module, sample)
            edge = exir.to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            return edge.to_executorch().buffer

    Path(path).write_bytes(quiet(lower))


def delegate_subgraphs(path: Path) -> dict[str, int]:
    """Return {backend id: number of delegate subgraphs} of the .pte at path, and the operators left outside them
    ("ops outside": their count): a graph wholly inside XNNPACK is {"XnnpackBackend": 1, "ops outside": 0}."""
    executorch_exir()
    from executorch.exir._serialize._program import deserialize_pte_binary

    pte = deserialize_pte_binary(Path(path).read_bytes())
    plan = getattr(pte, "program", pte).execution_plan[0]
    counts: dict[str, int] = {}
    for d in plan.delegates:
        counts[d.id] = counts.get(d.id, 0) + 1
    counts["ops outside"] = sum(type(i.instr_args).__name__ == "KernelCall" for c in plan.chains for i in c.instructions)
    return counts
