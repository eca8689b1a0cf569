"""`fnx train --qat`: quantization-aware fine-tuning of a trained FasterNet (PT2E fake quantization, one process).

Writes three files: the fine-tuned float weights as an ordinary checkpoint (`m_qat.pth` + sidecar, official
layout: `--weights` loads it anywhere), the learned fake-quant graph (`m_qat.qat.pt`, what
`fnx export --from-qat` converts) and the resumable state (`m_qat.last.pt`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from fnx.calibration.qat import NchwView, float_state, qat_graph, ranges_path, save_ranges, set_observing, set_training
from fnx.errors import FnxError
from fnx.exporter.fold import deploy_form, load_folded_weights
from fnx.targets.tflite.convert import channel_last
from fnx.training.distributed import resolve_device
from fnx.fileio import check_output_file
from fnx.models import check_img_size, create_model, get_variant
from fnx.models.sidecar import Sidecar, write_sidecar
from fnx.progress import Steps
from fnx.training.fit import TrainOptions, accuracy_on, optimizer_and_schedule, save_checkpoint, splits
from fnx.training.data import TrainImages
from fnx.training.state import TrainState, load_state, state_path

# Fine-tuning a trained model: a few epochs at ~1% of fnx train's learning rate, no warm-up (the CLI's --qat defaults).
QAT_DEFAULTS = {"epochs": 3, "lr": 2e-5, "warmup_epochs": 0}
RANGE_BATCHES = 8  # training batches that set the fake-quant ranges before QAT starts
INHERITED = ("label_smoothing", "weight_decay")  # taken from the base run's sidecar (same_objective)


@dataclass
class QatRun:
    """What a QAT run starts from: the float model, its preprocessing and the data's classes and splits."""

    name: str
    model: nn.Module  # eval-mode FasterNet with BN (the starting weights)
    size: int
    spec: object  # Preprocessing
    classes: list[str]
    train_items: list
    val_items: list
    weights: str
    base_options: dict  # the options of the run that trained the weights (its sidecar), if known


def check_qat(opts: TrainOptions, world: int) -> None:
    """Refuse what QAT cannot do, before anything is loaded."""
    if world > 1:
        raise FnxError("fnx train --qat runs in one process: leave out --nproc (and torchrun); QAT fine-tunes for a "
                       "few epochs, where one process is enough")
    if opts.weights == "random":
        raise FnxError("--qat fine-tunes a trained model: pass --weights (a fnx train checkpoint, official, a URL or "
                       "hf-hub:ORG/REPO); train it first with fnx train if you have none")
    if opts.sync_bn:
        raise FnxError("--sync-bn does not apply to --qat: QAT runs on the BatchNorm-folded model")


def prepare_run(name: str, data: Path, opts: TrainOptions) -> QatRun:
    """Load the starting model and the data; FnxError if they do not belong together."""
    classes, train_items, val_items = splits(data, opts.seed)
    info: dict = {}
    model = create_model(name, weights=opts.weights, source_out=info)
    sidecar = info["sidecar"]
    if model.num_classes != len(classes) or (sidecar and sidecar.labels and sidecar.labels != classes):
        known = sidecar.labels if sidecar and sidecar.labels else f"{model.num_classes} classes"
        raise FnxError(f"--weights {opts.weights} was trained on {known}, and {data} has {len(classes)} classes "
                       f"({', '.join(classes[:5])}...): QAT fine-tunes a model on its own classes; train it on this "
                       f"data first with fnx train")
    variant = get_variant(name)
    size = check_img_size(opts.img_size or (sidecar.img_size if sidecar else variant.default_img_size))
    spec = sidecar.preprocessing if sidecar else variant.preprocessing(size)
    if spec.crop != size:
        spec = spec.resized(size)
    return QatRun(variant.name, model, size, spec, classes, train_items, val_items, str(opts.weights),
                  dict(sidecar.options or {}) if sidecar else {})


def same_objective(opts: TrainOptions, base_options: dict) -> TrainOptions:
    """Return opts with the base run's label smoothing and weight decay: QAT fine-tunes the loss the model was
    trained on, not fnx train's defaults (a model trained without label smoothing, fine-tuned with 0.1, drifts)."""
    keep = {k: base_options[k] for k in INHERITED if isinstance(base_options.get(k), (int, float))}
    return replace(opts, **keep)


def train_qat(name: str, data: Path, out: Path, opts: TrainOptions, steps: Steps | None = None,
              resume: str | Path | None = None) -> Sidecar:
    """Fine-tune name's opts.weights with fake quantization on data; saves the best by int8 (fake-quant) val top-1.

    resume= continues from the `X.last.pt` state a run writes after every epoch."""
    steps = steps or Steps(quiet=True)
    opts = replace(opts, qat=True)  # the state records it: --resume comes back here
    check_qat(opts, max(opts.nproc, int(os.environ.get("WORLD_SIZE", "1"))))
    check_output_file(out, "checkpoint")
    state = load_state(resume) if resume else None
    with steps.step(f"load {opts.weights} and trace it for QAT"):
        run = prepare_run(name, Path(data), opts)
        deployed = deploy_form(run.model)
        graph = qat_graph(channel_last(deployed), torch.zeros(2, run.size, run.size, run.model.in_chans),
                          dynamic_batch=True)
    if state is not None:
        if state.model_name != run.name or state.classes != run.classes:
            raise FnxError(f"--resume {resume} is {state.model_name} on other data: resume with its own model and data")
        graph.load_state_dict(state.model)
    else:
        opts = same_objective(opts, run.base_options)
    for p in graph.parameters():
        p.requires_grad_(True)
    return _fit_qat(run, graph, deployed, Path(data), Path(out), opts, steps, state)


def _val_acc(graph, images: TrainImages, device: str) -> float:
    """Top-1 of the int8 simulation (ranges held) on NCHW images."""
    set_training(graph, False)
    set_observing(graph, False)
    try:
        return accuracy_on(NchwView(graph), images, device)
    finally:
        set_observing(graph, True)
        set_training(graph, True)


def _start_ranges(graph, loader: DataLoader, device: str) -> None:
    """Set the fake-quant ranges from a few training batches before the first step (PTQ's start, not zeros)."""
    set_training(graph, False)
    with torch.no_grad():
        for i, (xb, _) in enumerate(loader):
            if i == RANGE_BATCHES:
                break
            NchwView(graph)(xb.to(device))


def _fit_qat(run: QatRun, graph, deployed, data: Path, out: Path, opts: TrainOptions, steps: Steps,
             state: TrainState | None) -> Sidecar:
    torch.manual_seed(opts.seed)
    train_set = TrainImages(run.train_items, run.spec, crop=run.size, seed=opts.seed)
    val_set = TrainImages(run.val_items, run.spec)
    sampler = DistributedSampler(train_set, num_replicas=1, rank=0, shuffle=True, seed=opts.seed)  # same order resumed
    loader = DataLoader(train_set, batch_size=opts.batch_size, sampler=sampler)
    device = resolve_device(opts.device)
    graph.to(device)
    loss_fn, net = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing), NchwView(graph)
    fp32_acc = accuracy_on(run.model.to(device), val_set, device) if run.val_items else float("nan")
    optim, sched, (best, history, start) = optimizer_and_schedule(graph.parameters(), opts, len(loader), state)
    if state is not None:
        steps.info(f"resumed after epoch {start} of {opts.epochs} (best int8 val top-1 {100 * best:.2f}%)")
    steps.info(f"{len(run.train_items)} train / {len(run.val_items)} val images, {len(run.classes)} classes; "
               f"fp32 val top-1 {100 * fp32_acc:.2f}%")
    sidecar = None
    if state is None:  # the start (the weights as given, ranges as PTQ would set them) is the first candidate
        _start_ranges(graph, loader, device)
        best = _val_acc(graph, val_set, device) if run.val_items else -1.0
        if run.val_items:
            steps.info(f"int8 (fake-quant) val top-1 before QAT: {100 * best:.2f}% "
                       f"(ranges from {min(RANGE_BATCHES, len(loader))} batches, as PTQ would set them)")
        sidecar = _save_best(run, graph, deployed, out, opts, 0, best, fp32_acc)
    set_training(graph, True)
    for epoch in range(start, opts.epochs):
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        bar, task = steps.progress(f"QAT epoch {epoch + 1}/{opts.epochs}", len(loader))
        losses = []
        with bar:
            for xb, yb in loader:
                loss = loss_fn(net(xb.to(device)), yb.to(device))
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()
                losses.append(float(loss.detach()))
                bar.update(task, advance=1, description=f"QAT epoch {epoch + 1}/{opts.epochs} loss {sum(losses) / len(losses):.3f}")
        val_acc = _val_acc(graph, val_set, device) if run.val_items else float("nan")
        history.append({"epoch": epoch + 1, "loss": sum(losses) / max(1, len(losses)), "val_acc": val_acc})
        steps.info(f"epoch {epoch + 1}: loss {history[-1]['loss']:.3f}, int8 (fake-quant) val top-1 {100 * val_acc:.2f}%")
        if not run.val_items or val_acc > best:
            best = val_acc
            sidecar = _save_best(run, graph, deployed, out, opts, epoch + 1, val_acc, fp32_acc)
        TrainState(run.name, run.classes, epoch + 1, best, history, dict(vars(opts)), str(data.resolve()),
                   str(out.resolve()), {k: v.detach().to("cpu").clone() for k, v in graph.state_dict().items()}, optim.state_dict(),
                   sched.state_dict()).save(state_path(out))
    if sidecar is None:
        if not out.is_file():
            raise FnxError(f"{out} is missing: the run resumed after its last epoch and found no best checkpoint")
        from fnx.models.sidecar import read_sidecar

        sidecar = read_sidecar(out)
    sidecar.history = history
    write_sidecar(out, sidecar)
    return sidecar


def _save_best(run: QatRun, graph, deployed, out: Path, opts: TrainOptions, epoch: int, val_acc: float,
               fp32_acc: float) -> Sidecar:
    """Write the QAT graph's ranges and its float weights (official layout, with sidecar) as the best so far."""
    qat = {"ranges": ranges_path(out).name, "base_weights": run.weights, "fp32_val_acc": fp32_acc,
           "int8_val_acc": val_acc, "torch": str(torch.__version__)}
    save_ranges(ranges_path(out), graph, {"model": run.name, "img_size": run.size, "classes": run.classes, **qat})
    model = load_folded_weights(copy.deepcopy(run.model).to("cpu"),
                                {k: v.to("cpu") for k, v in float_state(graph, deployed.state_dict().keys()).items()})
    sidecar = Sidecar(run.name, len(run.classes), run.size, run.spec, run.classes, val_acc, epoch,
                      len(run.train_items), dict(vars(opts)), extra={"qat": qat})
    save_checkpoint(model, out, sidecar)
    return sidecar
