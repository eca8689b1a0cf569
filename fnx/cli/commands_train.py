"""`fnx train` and `fnx demo`: the PyTorch side (needs the export extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import command, console, err_console


@command(app, "train")
def train_cmd(
    model: Optional[str] = typer.Argument(None, help="fasternet-t0 ... fasternet-l (with --resume: taken from the state)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Image folder: class subfolders, or train/ and val/ splits of them."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Passes over the training images \\[default: 12; 3 with --qat]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per optimizer step, across all processes \\[default: 32]."),
    lr: Optional[float] = typer.Option(None, "--lr", min=0, help="Peak learning rate (AdamW, cosine schedule) \\[default: 0.002; 0.00002 with --qat]."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size (multiple of 32) \\[default: 224; with --qat, the checkpoint's]."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Start from: random, official, a PATH, URL or hf-hub:ORG/REPO (fine-tuning) \\[default: random]."),
    out: Optional[Path] = typer.Option(None, "--out", help="Best checkpoint (.pth or .safetensors), sidecar .json and resumable state .last.pt beside it \\[default: runs/model.pth]."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Train in N processes on this machine (DDP; gloo on CPU, NCCL on GPUs). Under torchrun, leave it out."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (each process takes the GPU of its local rank)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across processes (CUDA only)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its .last.pt state (its model, data, output and options)."),
    qat: bool = typer.Option(False, "--qat", help="Quantization-aware fine-tuning of --weights (int8 fake quantization, one process); export with fnx export --from-qat OUT."),
) -> None:
    """Train or fine-tune a FasterNet on an image folder (AdamW, cosine + warm-up, label smoothing); DDP with --nproc or torchrun."""
    from dataclasses import replace

    from fnx.errors import FnxError
    from fnx.progress import Steps
    from fnx.training.fit import TrainOptions, train
    from fnx.training.qat import QAT_DEFAULTS, train_qat

    given = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, img_size=img_size, weights=weights).items()
             if v is not None}
    if resume is not None:
        from fnx.training.state import load_state

        if given:
            raise FnxError(f"--resume continues a run with its own options; leave out "
                           f"{', '.join('--' + k.replace('_', '-') for k in given)} (or start a new run without --resume)")

        state = load_state(resume)
        if model is not None and model.replace("-", "_") != state.model_name:
            raise FnxError(f"--resume {resume} is a {state.model_name} run, not {model}; leave MODEL out to resume it")
        model, data, out = state.model_name, data or Path(state.data), out or Path(state.out)
        opts = replace(TrainOptions(**state.options), nproc=nproc, device=device, sync_bn=sync_bn)
    else:
        if model is None or data is None:
            raise FnxError("name the MODEL and --data to train on (or --resume a run's .last.pt state)")
        out = out or Path("runs/model_qat.pth" if qat else "runs/model.pth")
        opts = TrainOptions(**{**(QAT_DEFAULTS if qat else {}), **given}, nproc=nproc, device=device, sync_bn=sync_bn,
                            qat=qat)
    side = (train_qat if opts.qat else train)(model, data, out, opts, Steps(console=err_console), resume=resume)
    if side is None:  # a non-zero rank under torchrun: rank 0 reports
        return
    if opts.qat:
        when = (f"epoch {side.epoch}" if side.epoch else
                "the start: no QAT epoch beat it on val, so the saved model is the weights given, with PTQ-like ranges")
        console.print(f"saved {out} and its ranges (best int8 val top-1 {100 * side.val_acc:.2f}% at {when}; fp32 "
                      f"{100 * side.extra['qat']['fp32_val_acc']:.2f}%); export it with: fnx export {model} "
                      f"--from-qat {out} --precision int8", markup=False, soft_wrap=True)
        return
    console.print(f"saved {out} (best val top-1 {100 * side.val_acc:.2f}% at epoch {side.epoch}); "
                  f"export it with: fnx export {model} --weights {out}", markup=False, soft_wrap=True)


@command(app, "demo")
def demo_cmd(out: Path = typer.Option(Path("demo_out"), "--out", help="Working folder for data and artifacts.")) -> None:
    """The main job on the built-in default: digits demo model -> fp32/int8 TFLite+ONNX -> run, accuracy, latency."""
    from fnx.demo.run import run_demo

    run_demo(out, console, err_console)
