"""torch.distributed for `fnx train`: who this process is under torchrun, its process group, and `--nproc N`
(fnx starting N processes through torch's own elastic launcher, as `torchrun --standalone` does)."""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import timedelta
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from fnx.errors import FnxError


@dataclass(frozen=True)
class Rank:
    """This process's place in a distributed run (rank 0 of 1 when not distributed) and its torch device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def under_launcher() -> bool:
    """True when torchrun (or fnx's --nproc) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def resolve_device(device: str) -> str:
    """Return "cpu" or "cuda" for auto|cpu|cuda; FnxError when CUDA is asked for and absent."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise FnxError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); use --device cpu")
    if device not in ("cpu", "cuda"):
        raise FnxError(f"--device {device!r}: training runs on cpu or cuda (or auto)")
    return device


def this_rank(device: str) -> Rank:
    """Return this process's Rank from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE)."""
    if not under_launcher():
        return Rank(device=device)
    env = {k: int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0))}
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"]))
    where = f"cuda:{env['LOCAL_RANK']}" if device == "cuda" else "cpu"
    return Rank(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], local_world, where)


@contextlib.contextmanager
def process_group(rank: Rank) -> Iterator[None]:
    """Join the run's process group (NCCL on GPUs, gloo on CPU) for the block; nothing when not distributed."""
    if not rank.distributed or dist.is_initialized():
        yield
        return
    if rank.device.startswith("cuda"):
        torch.cuda.set_device(rank.local_rank)
    # rank 0 validates and saves alone while the others wait at a barrier: allow a long validation
    dist.init_process_group(backend="nccl" if rank.device.startswith("cuda") else "gloo", timeout=timedelta(hours=2))
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier(rank: Rank) -> None:
    if rank.distributed:
        dist.barrier()


def broadcast(rank: Rank, value: Any) -> Any:
    """Return rank 0's value on every rank."""
    if not rank.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def launch(nproc: int, entry: Callable, *args: Any) -> Any:
    """Run entry(*args) in nproc processes on this machine under torch's elastic launcher; returns rank 0's result.

    A failed process fails the run: FnxError with its error, the others are stopped by the launcher.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    try:
        results = elastic_launch(config, entry)(*args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        message = str(failure.message.get("message", failure.message) if isinstance(failure.message, dict)
                      else failure.message).strip()
        last = message.splitlines()[0] if message else f"exit code {failure.exitcode}"
        raise FnxError(f"training process {rank} of {nproc} failed: {last.removeprefix('FnxError: ')}") from None
    except SignalException:  # the launcher turns Ctrl-C into its own exception, after stopping the processes
        raise KeyboardInterrupt from None
    return results[0]
