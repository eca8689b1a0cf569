"""`fnx eval --ray`: the predictions as a Ray Data job, one actor pool per target, one Session per actor.

The image list is a Ray Dataset of (index, path) rows; each actor decodes, preprocesses and runs its batches with the
same code as the single-process path (`predict_paths`), and the driver puts the rows back in order, so the figures
are identical. Artifacts travel through Ray's object store (a node needs no copy of them); images are read by path,
so every node must see the data folder at the same path (a shared file system), as with any Ray read of local files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fnx.errors import FnxError
from fnx.evaluation import Predictions, target_classes
from fnx.evaluation.predictors import open_predictor, target_files
from fnx.evaluation.scoring import predict_paths
from fnx.install import pip_install
from fnx.progress import Steps
from fnx.runtime.placement import RunOptions

SCALE_EXTRA = pip_install("scale")


def _import_ray():
    # Ray reports usage statistics to its servers unless told not to; fnx does not opt its users in.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise FnxError(f"--ray needs Ray Data, which is not installed: {SCALE_EXTRA}") from e
    return ray


@contextlib.contextmanager
def ray_cluster(address: str, steps: Steps) -> Iterator:
    """Connect to the cluster at address ("auto": RAY_ADDRESS, else the one this machine runs, else a new local
    one); yields the ray module and disconnects after (a cluster fnx did not start keeps running)."""
    ray = _import_ray()
    if ray.is_initialized():  # the caller's own connection: use it, leave it open
        yield ray
        return
    try:
        ray.init(address=None if address == "auto" else address, logging_level=logging.ERROR,
                 log_to_driver=False, configure_logging=True)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise FnxError(f"cannot reach a Ray cluster at {address!r} ({str(e).splitlines()[0]}); start one with "
                       f"`ray start --head`, or pass --ray auto to run a local one") from e
    try:
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # plan and progress lines: fnx shows its own bar
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = int(ray.cluster_resources().get("CPU", 0))
        steps.info(f"Ray cluster: {len(nodes)} node(s), {cpus} CPU(s)")
        yield ray
    finally:
        ray.shutdown()


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes (Ray retries a dead address for long), when nothing listens at address."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise FnxError(f"--ray {address!r}: expected auto, HOST:PORT (the head's GCS, port 6379 by default) or "
                       f"ray://HOST:PORT (Ray Client)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise FnxError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); start one with `ray start "
                       f"--head`, check the address (`ray status` on the head), or pass --ray auto") from None


def _bundle(target: Path) -> tuple[str, dict[str, bytes]]:
    """Return (content digest, {file name: bytes}) of every file the target needs."""
    missing = [p.name for p in target_files(target) if not p.is_file()]
    if missing:
        raise FnxError(f"{target.name} needs {', '.join(missing)} beside it, which is missing: copy the files together")
    files = {p.name: p.read_bytes() for p in target_files(target)}
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest(), files


def local_copy(digest: str, name: str, files: dict[str, bytes]) -> Path:
    """Write a shipped target into this node's temp dir (one copy per content digest, reused) and return its path."""
    from fnx.fileio import atomic_path

    folder = Path(tempfile.gettempdir()) / "fnx-eval" / digest[:24]
    for file_name, data in files.items():
        dest = folder / file_name
        if not dest.is_file() or dest.stat().st_size != len(data):
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
    return folder / name


class TargetScorer:
    """A Ray Data actor: opens one Session (or PyTorch model) at start, then scores batches of image paths."""

    def __init__(self, shipped, digest: str, name: str, modes: tuple[str, ...], run: RunOptions):
        import ray

        path = local_copy(digest, name, ray.get(shipped))
        self.predictor = open_predictor(path, run)
        self.modes = modes

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        top, errors = predict_paths(self.predictor, paths, self.modes)
        error = np.array([""] * len(paths), dtype=object)
        for e in errors:
            error[paths.index(e["source"])] = e["error"]
        return {"index": batch["index"], **{f"top_{m}": top[m] for m in self.modes}, "error": error,
                "kind": np.array([self.predictor.kind] * len(paths), dtype=object)}


def _cluster_error(target: Path, e: Exception) -> FnxError:
    cause = getattr(e, "cause", None) or e
    detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
    return FnxError(f"evaluating {target.name} on the Ray cluster failed: {detail}")


def predict_on_ray(targets: Sequence[Path], paths: Sequence[Path], modes: tuple[str, ...], address: str,
                   workers: int | None, run: RunOptions, batch: int, steps: Steps) -> dict[Path, Predictions]:
    """Return each target's Predictions over paths (in their order), computed by a pool of Ray actors."""
    if address != "auto":
        _probe(address)
    with ray_cluster(address, steps) as ray:
        per_actor = max(1, run.threads or 1)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        biggest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=0)
        if per_actor > biggest:  # no node could host one actor: Ray Data would wait forever
            raise FnxError(f"--threads {per_actor}: the cluster's largest node has {biggest} CPU(s), so no actor could "
                           f"start; use --threads {max(1, biggest)} or fewer")
        pool = workers or max(1, cpus // per_actor)
        rows = ray.data.from_items([{"index": i, "path": os.path.abspath(p)} for i, p in enumerate(paths)],
                                   override_num_blocks=max(1, min(len(paths), pool * 4)))
        runs = {}
        for target in targets:
            digest, files = _bundle(target)
            scored = rows.map_batches(
                TargetScorer, batch_size=batch, batch_format="numpy", num_cpus=per_actor,
                compute=ray.data.ActorPoolStrategy(size=pool),
                fn_constructor_kwargs={"shipped": ray.put(files), "digest": digest, "name": target.name,
                                       "modes": modes, "run": replace(run, threads=per_actor)})
            top = {m: np.full((len(paths), 5), -1, dtype=np.int64) for m in modes}
            errors: dict[int, dict] = {}
            kind = ""
            bar, task = steps.progress(f"eval {target.name} (ray, {pool} workers)", len(paths))
            try:
                with bar:
                    for b in scored.iter_batches(batch_size=None, batch_format="numpy"):
                        index = b["index"].astype(np.int64)
                        for m in modes:
                            top[m][index] = b[f"top_{m}"]
                        for i, msg, k in zip(index.tolist(), b["error"], b["kind"]):
                            kind = kind or str(k)
                            if msg:
                                errors[i] = {"source": str(paths[i]), "error": str(msg)}
                        bar.update(task, advance=len(index))
            except Exception as e:  # a task or actor failed on the cluster: say which target and why
                if isinstance(e, FnxError) and not hasattr(e, "cause"):
                    raise
                raise _cluster_error(target, e) from e
            labels, class_ids = target_classes(target)
            runs[target] = Predictions(kind, labels, class_ids, top, [errors[i] for i in sorted(errors)])
    return runs
