"""`fnx train`: fine-tune or train a FasterNet on an image folder, CPU-friendly; saves the best checkpoint."""

from __future__ import annotations

import math
import os
import random
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from fnx.errors import FnxError
from fnx.fileio import atomic_path, check_output_file
from fnx.imagefolder import image_folder as read_folder
from fnx.manifest import Preprocessing
from fnx.models import check_img_size, create_model, get_variant
from fnx.models.factory import RandomWeightsWarning
from fnx.training.distributed import Rank, barrier, launch, process_group, resolve_device, this_rank, under_launcher
from fnx.models.sidecar import Sidecar, read_sidecar, write_sidecar
from fnx.progress import Steps
from fnx.runtime.preprocess import load_image, preprocess
from fnx.training.data import CACHE_BYTES, TrainImages
from fnx.training.state import TrainState, load_state, state_path


DEFAULT_TRAIN_SIZE = 224


@dataclass
class TrainOptions:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    img_size: int | None = None  # None: the variant's default (224); with qat, the checkpoint's
    weights: str = "random"
    seed: int = 0
    nproc: int = 1  # processes on this machine (DDP); 1 under torchrun, which starts them itself
    device: str = "auto"  # auto, cpu or cuda
    sync_bn: bool = False  # SyncBatchNorm across processes (CUDA only)
    qat: bool = False  # quantization-aware fine-tuning of --weights (fnx.training.qat)


def train_size(opts: TrainOptions) -> int:
    """Return the input size a run trains at (--img-size, else the variant's default)."""
    return opts.img_size or DEFAULT_TRAIN_SIZE


def image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Return (class names, [(path, class index)]) of a class-per-subfolder image folder (at least 2 classes)."""
    folder = read_folder(root, min_classes=2, what="training")
    return folder.classes, folder.items


def splits(data: Path, seed: int = 0) -> tuple[list[str], list, list]:
    """Return (classes, train items, val items): from `train/` and `val/`, else a seeded 90/10 split."""
    data = Path(data)
    if not data.is_dir():
        raise FnxError(f"training data {data} does not exist or is not a directory")
    if (data / "train").is_dir():
        classes, train = image_folder(data / "train")
        val_dir = data / "val"
        val = image_folder(val_dir) if val_dir.is_dir() else (classes, [])
        if val[0] != classes:
            raise FnxError(f"{val_dir} has other classes ({', '.join(val[0])}) than {data / 'train'} ({', '.join(classes)})")
        return classes, train, val[1]
    classes, items = image_folder(data)
    random.Random(seed).shuffle(items)
    n_val = max(1, len(items) // 10)
    return classes, items[n_val:], items[:n_val]


def _load(items, spec: Preprocessing, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (NCHW images, labels): resized (not cropped, for training's random crops) or center-cropped."""
    s = spec if center else replace(spec, crop=spec.resize_short)
    x = np.stack([preprocess(load_image(p), s) for p, _ in items]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor([y for _, y in items])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128) -> float:
    """Return top-1 accuracy of model on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    return correct / max(1, len(x))


def _steps_per_rank(opts: TrainOptions, world: int) -> int:
    """Images per process per step: --batch-size is the global batch, split across the processes."""
    if opts.batch_size % world:
        raise FnxError(f"--batch-size {opts.batch_size} does not split evenly across {world} processes; "
                       f"use a multiple of {world}")
    return opts.batch_size // world


def check_run(opts: TrainOptions, world: int) -> str:
    """Check what can be checked before processes start; returns the device ("cpu" or "cuda")."""
    check_img_size(train_size(opts))
    device = resolve_device(opts.device)
    if opts.sync_bn and device != "cuda":
        raise FnxError("--sync-bn needs GPUs: torch runs SyncBatchNorm on CUDA only; on CPU each process keeps its "
                       "own BatchNorm statistics (DDP broadcasts rank 0's), so leave --sync-bn out")
    _steps_per_rank(opts, world)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world)) if under_launcher() else world
    if device == "cuda" and local > torch.cuda.device_count():
        raise FnxError(f"{local} processes on this machine but {torch.cuda.device_count()} CUDA GPU(s): use "
                       f"--nproc {torch.cuda.device_count()} (one process per GPU), or --device cpu")
    return device


def train(name: str, data: Path, out: Path, opts: TrainOptions, steps: Steps | None = None,
          resume: str | Path | None = None) -> Sidecar:
    """Train name on data and save the best (by val accuracy) checkpoint to out, with its sidecar; returns the sidecar.

    opts.nproc > 1 starts that many processes (DDP; gloo on CPU, NCCL on GPUs); under torchrun this process is
    one of them. After every epoch the run's state goes to `X.last.pt` beside out; resume= continues from one.
    """
    if opts.qat:
        raise FnxError("TrainOptions(qat=True) is fnx.training.qat.train_qat's: call that (the CLI's fnx train --qat does)")
    steps = steps or Steps(quiet=True)
    world = int(os.environ.get("WORLD_SIZE", "1")) if under_launcher() else opts.nproc
    check_run(opts, world)
    check_output_file(out, "checkpoint")  # before the first epoch, not after it
    splits(Path(data), opts.seed)  # a bad folder fails here, before any process starts
    if opts.nproc > 1 and not under_launcher():
        steps.info(f"starting {opts.nproc} training processes (torch.distributed)")
        return launch(opts.nproc, _process_entry, name, Path(data), Path(out), opts, steps.quiet, resume)
    return _train(name, Path(data), Path(out), opts, steps, resume)


@record
def _process_entry(name: str, data: Path, out: Path, opts: TrainOptions, quiet: bool, resume) -> Sidecar | None:
    """One process of `--nproc N`: rank 0 reports progress, the others are silent."""
    rank = int(os.environ.get("RANK", "0"))
    return _train(name, data, out, opts, Steps(quiet=quiet or rank != 0), resume)


def _train(name: str, data: Path, out: Path, opts: TrainOptions, steps: Steps, resume) -> Sidecar | None:
    rank = this_rank(resolve_device(opts.device))
    if not rank.main:  # under torchrun every process gets the CLI's Steps: rank 0 alone reports
        steps = Steps(quiet=True)
    with process_group(rank):
        return _fit(name, data, out, opts, steps, rank, load_state(resume) if resume else None)


def _build_model(variant, n_classes: int, opts: TrainOptions) -> nn.Module:
    if opts.weights == "random":
        with warnings.catch_warnings():  # random initial weights are what training from scratch means
            warnings.simplefilter("ignore", RandomWeightsWarning)
            return create_model(variant.name, num_classes=n_classes)
    model = create_model(variant.name, weights=opts.weights)  # fine-tune: keep the backbone, new head
    model.head = nn.Linear(variant.feature_dim, n_classes)
    model.num_classes = n_classes
    return model


def _fit(name: str, data: Path, out: Path, opts: TrainOptions, steps: Steps, rank: Rank,
         state: TrainState | None) -> Sidecar | None:
    torch.manual_seed(opts.seed)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, cpus // rank.local_world))
    variant = get_variant(name)
    size = train_size(opts)
    spec = variant.preprocessing(size)
    classes, train_items, val_items = splits(data, opts.seed)
    if state is not None and (state.model_name != variant.name or state.classes != classes):
        raise FnxError(f"the state to resume is {state.model_name} on classes {', '.join(state.classes[:5])}...; "
                       f"this run is {variant.name} on {', '.join(classes[:5])}...: resume with the same model and data")
    steps.info(f"{len(train_items)} train / {len(val_items)} val images, {len(classes)} classes"
               + (f", {rank.world} processes on {rank.device.split(':')[0]}" if rank.distributed else ""))
    if not rank.main:
        barrier(rank)  # rank 0 fetches and caches the weights first
    model = _build_model(variant, len(classes), opts)
    if rank.main:
        barrier(rank)
    if state is not None:
        model.load_state_dict(state.model)
    model.to(rank.device)
    if opts.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = DistributedDataParallel(model, device_ids=[rank.local_rank] if rank.device != "cpu" else None) \
        if rank.distributed else model
    train_set = TrainImages(train_items, spec, crop=size, seed=opts.seed,
                            cache_bytes=CACHE_BYTES // rank.local_world)  # the machine's budget, shared
    val_set = TrainImages(val_items, spec)  # decoded once, on rank 0, then kept (the cache)
    sampler = DistributedSampler(train_set, num_replicas=rank.world, rank=rank.rank, shuffle=True, seed=opts.seed)
    loader = DataLoader(train_set, batch_size=_steps_per_rank(opts, rank.world), sampler=sampler)
    steps_per_epoch = len(loader)
    optim, sched, (best, history, start) = optimizer_and_schedule(net.parameters(), opts, steps_per_epoch, state)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    if state is not None:
        steps.info(f"resumed after epoch {start} of {opts.epochs} (best val top-1 {100 * best:.2f}%)")
    sidecar = read_sidecar(out) if state is not None and out.is_file() else None
    for epoch in range(start, opts.epochs):
        net.train()
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        bar, task = steps.progress(f"epoch {epoch + 1}/{opts.epochs}", steps_per_epoch)
        running = torch.zeros(2, dtype=torch.float64, device=rank.device)  # NCCL reduces CUDA tensors only
        with bar:
            for xb, yb in loader:
                loss = loss_fn(net(xb.to(rank.device)), yb.to(rank.device))
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()
                running += torch.tensor([float(loss.detach()), 1.0], dtype=torch.float64, device=rank.device)
                bar.update(task, advance=1, description=f"epoch {epoch + 1}/{opts.epochs} loss {running[0] / running[1]:.3f}")
        if rank.distributed:
            dist.all_reduce(running)  # the loss over every process's steps
        mean_loss = float((running[0] / running[1]).cpu())
        if rank.main:
            val_acc = accuracy_on(model, val_set, rank.device) if val_items else float("nan")
            history.append({"epoch": epoch + 1, "loss": mean_loss, "val_acc": val_acc})
            steps.info(f"epoch {epoch + 1}: loss {mean_loss:.3f}, val top-1 {100 * val_acc:.2f}%")
            if not val_items or val_acc > best:
                best = val_acc
                sidecar = Sidecar(variant.name, len(classes), size, spec, classes, val_acc, epoch + 1,
                                  len(train_items), {k: v for k, v in vars(opts).items()})
                save_checkpoint(model, out, sidecar)
            TrainState(variant.name, classes, epoch + 1, best, history, dict(vars(opts)), str(data.resolve()), str(out.resolve()),
                       _plain_state(model), optim.state_dict(), sched.state_dict()).save(state_path(out))
        barrier(rank)
    if not rank.main:
        return None
    if sidecar is None:
        raise FnxError(f"{out} is missing: the run resumed after its last epoch and found no best checkpoint")
    sidecar.history = history
    write_sidecar(out, sidecar)
    return sidecar


def optimizer_and_schedule(params, opts: TrainOptions, steps_per_epoch: int, state: TrainState | None):
    """Return (AdamW, its per-step schedule: linear warm-up then cosine decay, (best, history, next epoch)),
    restored from state when a run resumes."""
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    total, warm = opts.epochs * steps_per_epoch, opts.warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: (s + 1) / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    if state is None:
        return optim, sched, (-1.0, [], 0)
    optim.load_state_dict(state.optimizer)
    sched.load_state_dict(state.scheduler)
    return optim, sched, (state.best, list(state.history), state.epoch)


def _plain_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def accuracy_on(model: nn.Module, images: TrainImages, device: str = "cpu", batch: int = 128) -> float:
    """Return top-1 accuracy of model on a dataset of (image, class) pairs."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in DataLoader(images, batch_size=batch):
            correct += int((model(xb.to(device)).argmax(1).cpu() == yb).sum())
    return correct / max(1, len(images))


def save_checkpoint(model: nn.Module, out: Path, sidecar: Sidecar, half: bool = False) -> None:
    """Save model's state_dict (official key layout) atomically to out (.pth or .safetensors) with its sidecar."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    with atomic_path(out) as tmp:
        if out.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp))
        else:
            torch.save(sd, tmp)
    write_sidecar(out, sidecar)
