"""`fnx train`: fine-tune or train a FasterNet on an image folder, CPU-friendly; saves the best checkpoint."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fnx.errors import FnxError
from fnx.fileio import atomic_path
from fnx.imagefolder import image_folder as read_folder
from fnx.manifest import Preprocessing
from fnx.models import check_img_size, create_model, get_variant
from fnx.models.sidecar import Sidecar, write_sidecar
from fnx.progress import Steps
from fnx.runtime.preprocess import load_image, preprocess


@dataclass
class TrainOptions:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    img_size: int = 224
    weights: str = "random"
    seed: int = 0


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


def _random_crops(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    out = torch.empty(n, x.shape[1], size, size)
    for i in range(n):
        top = int(torch.randint(0, h - size + 1, (1,), generator=g))
        left = int(torch.randint(0, w - size + 1, (1,), generator=g))
        out[i] = x[i, :, top : top + size, left : left + size]
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128) -> float:
    """Return top-1 accuracy of model on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    return correct / max(1, len(x))


def train(name: str, data: Path, out: Path, opts: TrainOptions, steps: Steps | None = None) -> dict:
    """Train name on data and save the best (by val accuracy) checkpoint to out, with its sidecar; returns the sidecar."""
    steps = steps or Steps(quiet=True)
    check_img_size(opts.img_size)
    torch.manual_seed(opts.seed)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    variant = get_variant(name)
    spec = variant.preprocessing(opts.img_size)
    classes, train_items, val_items = splits(Path(data), opts.seed)
    with steps.step(f"load {len(train_items)} train / {len(val_items)} val images ({len(classes)} classes)"):
        xtr, ytr = _load(train_items, spec, center=False)
        xva, yva = _load(val_items, spec, center=True) if val_items else (None, None)
    if opts.weights == "random":
        model = create_model(variant.name, num_classes=len(classes))
    else:
        model = create_model(variant.name, weights=opts.weights)  # fine-tune: keep the backbone, new head
        model.head = nn.Linear(variant.feature_dim, len(classes))
        model.num_classes = len(classes)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / opts.batch_size)
    total, warm = opts.epochs * steps_per_epoch, opts.warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: (s + 1) / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    g = torch.Generator().manual_seed(opts.seed)
    best, history = -1.0, []
    out = Path(out)
    for epoch in range(opts.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        bar, task = steps.progress(f"epoch {epoch + 1}/{opts.epochs}", steps_per_epoch)
        running = 0.0
        with bar:
            for i in range(steps_per_epoch):
                idx = perm[i * opts.batch_size : (i + 1) * opts.batch_size]
                xb = _random_crops(xtr[idx], opts.img_size, g)
                loss = loss_fn(model(xb), ytr[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()
                running += float(loss)
                bar.update(task, advance=1, description=f"epoch {epoch + 1}/{opts.epochs} loss {running / (i + 1):.3f}")
        val_acc = accuracy(model, xva, yva) if xva is not None else float("nan")
        history.append({"epoch": epoch + 1, "loss": running / steps_per_epoch, "val_acc": val_acc})
        steps.info(f"epoch {epoch + 1}: loss {running / steps_per_epoch:.3f}, val top-1 {100 * val_acc:.2f}%")
        if xva is None or val_acc > best:
            best = val_acc
            sidecar = Sidecar(variant.name, len(classes), opts.img_size, spec, classes, val_acc, epoch + 1, len(xtr),
                              {k: v for k, v in vars(opts).items()})
            save_checkpoint(model, out, sidecar)
    sidecar.history = history
    write_sidecar(out, sidecar)
    return sidecar


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
