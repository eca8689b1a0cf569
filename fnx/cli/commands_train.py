"""`fnx train`, `fnx eval` and `fnx demo`: the PyTorch side (needs the export extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import (AsJson, PreprocessChoice, Threads, command, console, err_console, escape, print_json,
                            report_failures)


@command(app, "train")
def train_cmd(
    model: str = typer.Argument(..., help="fasternet-t0 ... fasternet-l."),
    data: Path = typer.Option(..., "--data", help="Image folder: class subfolders, or train/ and val/ splits of them."),
    epochs: int = typer.Option(12, "--epochs", min=1, help="Passes over the training images."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per optimizer step."),
    lr: float = typer.Option(2e-3, "--lr", min=0, help="Peak learning rate (AdamW, cosine schedule)."),
    img_size: int = typer.Option(224, "--img-size", help="Input size (multiple of 32)."),
    weights: str = typer.Option("random", "--weights", help="Start from: random, official, a PATH, URL or hf-hub:ORG/REPO (fine-tuning)."),
    out: Path = typer.Option(Path("runs/model.pth"), "--out", help="Best checkpoint (.pth or .safetensors), sidecar .json beside it."),
) -> None:
    """Train or fine-tune a FasterNet on an image folder (AdamW, cosine + warm-up, label smoothing)."""
    from fnx.progress import Steps
    from fnx.train import TrainOptions, train

    side = train(model, data, out, TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, img_size=img_size, weights=weights),
                 Steps(console=err_console))
    console.print(f"saved {out} (best val top-1 {100 * side.val_acc:.2f}% at epoch {side.epoch}); "
                  f"export it with: fnx export {model} --weights {out}", markup=False)


@command(app, "eval")
def eval_cmd(
    target: Path = typer.Argument(..., help="A checkpoint from fnx train, or an exported artifact."),
    data: Path = typer.Option(..., "--data", help="Labelled image folder (one subfolder per class)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate an evenly spaced subset of N images."),
    threads: Threads = None,
    preprocess: PreprocessChoice = typer.Option(PreprocessChoice("exact"), "--preprocess", help="fast: also score the fast preprocessing and say how often it agrees with exact.", case_sensitive=False),
    as_json: AsJson = False,
) -> None:
    """Top-1 / top-5 accuracy over an image folder, through the runtime's preprocessing."""
    from fnx.evaluate import evaluate
    from fnx.progress import Steps

    r = evaluate(target, data, limit=limit, threads=threads, steps=Steps(quiet=as_json, console=err_console),
                 mode=preprocess.value)
    if as_json:
        print_json(r)
    else:
        for mode, figures in (r.get("modes") or {r["preprocess"]: r}).items():
            console.print(f"{escape(target.name)} \\[{escape(r['kind'])}, {mode}]: top-1 {100 * figures['top1']:.2f}%, "
                          f"top-5 {100 * figures['top5']:.2f}% on {r['n']} images")
        if "agreement" in r:
            console.print(f"fast and exact preprocessing agree on the top-1 class of {100 * r['agreement']:.2f}% of "
                          f"the images")
    report_failures(r["errors"], r["n"] + len(r["errors"]))


@command(app, "demo")
def demo_cmd(out: Path = typer.Option(Path("demo_out"), "--out", help="Working folder for data and artifacts.")) -> None:
    """The main job on the built-in default: digits demo model -> fp32/int8 TFLite+ONNX -> run, accuracy, latency."""
    from fnx.demo.run import run_demo

    run_demo(out, console, err_console)
