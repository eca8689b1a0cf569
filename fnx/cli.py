"""The `fnx` command line: thin typer commands over importable functions, printed with rich."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from fnx.errors import FnxError

app = typer.Typer(
    name="fnx",
    help="FasterNet to the edge: export, quantize, run and verify FasterNet models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print fnx's version and exit.", is_eager=True),
) -> None:
    """FasterNet to the edge: export, quantize, run and verify FasterNet models."""
    if version:
        from fnx import __version__

        typer.echo(f"fnx {__version__}")
        raise typer.Exit()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # fnx's own warnings speak to the user; third-party deprecation chatter does not.
    if f"{os.sep}fnx{os.sep}" in str(filename) or category.__module__.startswith("fnx"):
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def command(*args, **kwargs) -> Callable:
    """Register a typer command whose FnxError is printed as one line, with exit code 1."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            previous = warnings.showwarning
            warnings.showwarning = _show_warning
            try:
                return fn(*a, **kw)
            except FnxError as e:
                err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                err_console.print("[bold red]interrupted[/]: no partial files were left")
                raise typer.Exit(130) from None
            finally:
                warnings.showwarning = previous

        return app.command(*args, **kwargs)(wrapper)

    return register


def print_json(data) -> None:
    """Print data as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@command("models")
def models_cmd(
    img_size: int = typer.Option(224, "--img-size", help="Input size for the FLOPs figure (multiple of 32)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the FasterNet variants: params, GFLOPs, activation and the paper's ImageNet top-1."""
    from fnx.models import VARIANTS, check_img_size, describe

    check_img_size(img_size)
    rows = [describe(name, img_size) for name in VARIANTS]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"FasterNet variants (FLOPs = multiply-accumulates at {img_size}x{img_size})")
    for col in ("model", "params (M)", f"GFLOPs @{img_size}", "act", "embed", "depths", "paper top-1"):
        table.add_column(col, justify="left" if col in ("model", "act", "depths") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"].replace("_", "-"), f"{r['params'] / 1e6:.3f}", f"{r['flops'] / 1e9:.3f}",
                      r["act"].upper(), str(r["embed_dim"]), "-".join(map(str, r["depths"])), f"{r['paper_top1']:.1f}")
    console.print(table)


FORMAT_HELP = "onnx, tflite or all."


def _formats(fmt: str) -> tuple[str, ...]:
    from fnx.exporter.pipeline import FORMATS

    fmt = fmt.lower()
    if fmt == "all":
        return FORMATS
    if fmt not in FORMATS:
        raise FnxError(f"unknown format {fmt!r}; use onnx, tflite or all")
    return (fmt,)


def default_weights(model: str, weights: Optional[str]) -> str:
    """Return --weights, or when it was not given: "official" if it can be had, else "random" with a warning."""
    if weights:
        return weights
    from fnx.models import get_variant
    from fnx.models.weights import resolve

    try:
        resolve("official", get_variant(model))
        return "official"
    except FnxError as e:
        warnings.warn(f"no --weights given and the official weights cannot be had ({str(e).split(' (')[0]}): "
                      f"using RANDOM weights, whose outputs mean nothing. Pass --weights PATH|URL|official to require "
                      f"trained weights, or --weights random to silence this.")
        return "random"


@command("export")
def export_cmd(
    model: str = typer.Argument(..., help="fasternet-t0 ... fasternet-l (fasternet_t0 also accepted)."),
    fmt: str = typer.Option("tflite", "--format", "-f", help=FORMAT_HELP),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8 (int8 needs --calib-data)."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="PATH, URL, official or random [default: official if reachable, else random with a warning]."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Classifier size [default: from the checkpoint, else 1000]."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size, a multiple of 32 [default: the checkpoint's, else 224]."),
    batch: int = typer.Option(1, "--batch", help="Static batch size."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="ONNX: make the batch axis dynamic."),
    opset: int = typer.Option(20, "--opset", help="ONNX opset (>= 20 keeps GELU one op)."),
    out: Path = typer.Option(Path("exports"), "--out", "-o", help="Output directory."),
    data: Optional[Path] = typer.Option(None, "--data", help="Images for the parity check [default: 16 synthetic images]."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the parity check (the manifest says so)."),
    features: bool = typer.Option(False, "--features", help="Export the backbone: four normalized stage feature maps."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", help="int8: calibration image folder, or 'synthetic' (recorded as such)."),
    calib_size: int = typer.Option(256, "--calib-size", help="int8: number of calibration images (seeded sample)."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="int8 ONNX: minmax, percentile or entropy."),
    io: str = typer.Option("int8", "--io", help="int8 TFLite: int8 or float input/output tensors."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="int8: accuracy guard on held-out cosine vs fp32 [default 0.99]."),
    max_top1_drop: Optional[float] = typer.Option(None, "--max-top1-drop", help="int8 with labelled data: max top-1 drop in points."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest(s) as JSON instead of tables."),
) -> None:
    """Export a FasterNet to ONNX and/or TFLite, verified against PyTorch, with a manifest beside each file."""
    from fnx.cli_export import print_results, parity_table
    from fnx.exporter.pipeline import ExportOptions, ParityError, export_model
    from fnx.progress import Steps

    steps = Steps(quiet=False, console=err_console)
    opts = ExportOptions(
        formats=_formats(fmt), precision=precision.lower(), weights=default_weights(model, weights),
        num_classes=num_classes, img_size=img_size, batch=batch, dynamic_batch=dynamic_batch, opset=opset, out_dir=out,
        data=data, verify=not no_verify, features=features,
        calibration={"data": calib_data, "size": calib_size, "method": calib_method, "io": io,
                     "min_cosine": min_cosine, "max_top1_drop": max_top1_drop},
    )
    try:
        results = export_model(model, opts, steps)
    except ParityError as e:
        err_console.print(parity_table([("(rejected)", e.report)], title="Parity check FAILED"))
        raise
    if as_json:
        print_json([r.manifest for r in results] if len(results) > 1 else results[0].manifest)
    else:
        print_results(console, results, steps.total)
        int8 = [(r.artifact.name, r.manifest) for r in results if r.manifest.get("calibration")]
        if int8:
            from fnx.cli_export import quant_report_table

            console.print(quant_report_table(int8))


@command("quantize")
def quantize_cmd(
    artifact: Path = typer.Argument(..., help="An fp32 .onnx export with its manifest beside it."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", help="Calibration image folder, or 'synthetic' (recorded as such)."),
    calib_size: int = typer.Option(256, "--calib-size", help="Number of calibration images (seeded sample)."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="minmax, percentile or entropy."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Accuracy guard: held-out cosine vs fp32 [default 0.99]."),
    max_top1_drop: Optional[float] = typer.Option(None, "--max-top1-drop", help="With labelled data: max top-1 drop in points."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file [default: the artifact's name with int8]."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest instead of tables."),
) -> None:
    """Quantize an existing fp32 ONNX export to int8 (QDQ) through its manifest, with the report and guard."""
    from fnx.calibration.quantize import quantize_artifact
    from fnx.cli_export import quant_report_table
    from fnx.progress import Steps

    path, manifest = quantize_artifact(artifact, calib_data, calib_size, calib_method.lower(), min_cosine, max_top1_drop,
                                       out, Steps(console=err_console))
    if as_json:
        print_json(manifest)
    else:
        console.print(quant_report_table([(path.name, manifest)]))
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


@command("run")
def run_cmd(
    artifact: Path = typer.Argument(..., help="A .tflite or .onnx file (its manifest, if beside it, is used)."),
    images: list[Path] = typer.Argument(..., help="Image files (a camera frame saved as a file works too)."),
    topk: int = typer.Option(5, "--topk", help="Classes to show per image."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="A text file with one label per line (overrides the manifest's)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, tensorrt or a profile name (fnx devices)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Engine threads [default: the engine's]."),
    as_json: bool = typer.Option(False, "--json", help="Print predictions as JSON."),
) -> None:
    """Classify images with an exported artifact (torch-free: needs numpy, Pillow and one engine)."""
    import time

    from fnx.runtime import load

    t0 = time.perf_counter()
    session = load(artifact, device=device, threads=threads)
    if labels is not None:
        if not labels.is_file():
            raise FnxError(f"labels file {labels} does not exist")
        session.labels = [l.strip() for l in labels.read_text().splitlines() if l.strip()]
    load_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    preds = session.predict([str(p) for p in images], topk=topk)
    run_ms = (time.perf_counter() - t1) * 1e3
    if as_json:
        print_json({"artifact": str(artifact), "engine": f"{session.engine_name} {session.engine.version}",
                    "load_ms": load_ms, "predict_ms": run_ms, "predictions": [p.to_dict() for p in preds]})
        return
    for p in preds:
        table = Table(title=p.source, title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("label")
        table.add_column("score", justify="right")
        for r, (lab, sc) in enumerate(zip(p.labels, p.scores), 1):
            table.add_row(str(r), lab, f"{sc:.4f}")
        console.print(table)
    console.print(f"[dim]{session.engine_name} {session.engine.version}: load {load_ms:.0f} ms, "
                  f"{len(preds)} image(s) in {run_ms:.1f} ms[/]")


@command("bench")
def bench_cmd(
    artifacts: list[Path] = typer.Argument(..., help="One or more .tflite / .onnx files."),
    threads: str = typer.Option("1", "--threads", help="Comma-separated thread counts, e.g. 1,2,4."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed warm-up runs."),
    runs: int = typer.Option(50, "--runs", help="Timed runs."),
    paper_protocol: bool = typer.Option(False, "--paper-protocol", help="The paper's protocol: batch 1, one thread, 10 warm-up, 200 timed runs, mean."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or tensorrt (ONNX)."),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Latency, throughput and achieved GFLOPS (the paper's metric) per artifact x thread count."""
    from fnx.runtime.bench import bench

    if paper_protocol:
        threads, batch, warmup, runs = "1", 1, 10, 200
    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise FnxError(f"--threads takes comma-separated integers like 1,2,4; got {threads!r}") from None
    rows = []
    for a in artifacts:
        for t in counts:
            with err_console.status(f"bench {a.name}, {t} thread(s)"):
                rows.append(bench(a, threads=t, batch=batch, warmup=warmup, runs=runs, device=device))
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"fnx bench (batch {batch}, {warmup} warm-up, {runs} runs)")
    for col in ("artifact", "engine", "thr", "mean ms", "p50", "p90", "p99", "img/s", "GFLOPS", "RSS MB", "file MB"):
        table.add_column(col, justify="left" if col in ("artifact", "engine") else "right", overflow="fold")
    for r in rows:
        gf = "-" if r["gflops"] is None else f"{r['gflops']:.1f}"
        table.add_row(r["artifact"], r["engine"], str(r["threads"]), f"{r['mean_ms']:.2f}", f"{r['p50_ms']:.2f}",
                      f"{r['p90_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['throughput_ips']:.1f}", gf,
                      f"{r['peak_rss_mb']:.0f}", f"{r['file_mb']:.2f}")
    console.print(table)


@command("verify")
def verify_cmd(
    artifact: Path = typer.Argument(..., help="An exported .tflite or .onnx with its manifest."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="The PyTorch weights to compare against [default: the manifest's source]."),
    data: Optional[Path] = typer.Option(None, "--data", help="Images [default: 16 synthetic images]."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-run the export's parity check on an existing artifact against PyTorch (needs the export extra)."""
    from fnx.cli_export import parity_table
    from fnx.exporter.verify import verify_artifact

    report = verify_artifact(artifact, weights=weights, data=data)
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(parity_table([(artifact.name, report)]))
    if not report.passed:
        raise FnxError(f"{artifact.name} broke its parity bounds: {'; '.join(report.failures)}")


@command("devices")
def devices_cmd(as_json: bool = typer.Option(False, "--json", help="Print profiles and detection as JSON.")) -> None:
    """List the device profiles and mark the one detected on this machine."""
    from fnx.devices import PROFILES, detection_report

    det = detection_report()
    if as_json:
        print_json({"detected": det, "profiles": [p.to_dict() for p in PROFILES.values()]})
        return
    table = Table(title=f"Device profiles (detected: {det['profile']} - {det['reason']})")
    for col in ("", "profile", "arch", "format", "precision", "engine", "threads", "description"):
        table.add_column(col, overflow="fold")
    for p in PROFILES.values():
        table.add_row("*" if p.name == det["profile"] else "", p.name, p.arch, p.format, p.precision, p.engine,
                      str(p.threads or "all"), p.description)
    console.print(table)


@command("train")
def train_cmd(
    model: str = typer.Argument(..., help="fasternet-t0 ... fasternet-l."),
    data: Path = typer.Option(..., "--data", help="Image folder: class subfolders, or train/ and val/ splits of them."),
    epochs: int = typer.Option(12, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    img_size: int = typer.Option(224, "--img-size", help="Input size (multiple of 32)."),
    weights: str = typer.Option("random", "--weights", help="Start from: random, official, a PATH or URL (fine-tuning)."),
    out: Path = typer.Option(Path("runs/model.pth"), "--out", help="Best checkpoint (.pth or .safetensors), sidecar .json beside it."),
) -> None:
    """Train or fine-tune a FasterNet on an image folder (AdamW, cosine + warm-up, label smoothing)."""
    from fnx.progress import Steps
    from fnx.train import TrainOptions, train

    side = train(model, data, out, TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, img_size=img_size, weights=weights),
                 Steps(console=err_console))
    console.print(f"saved {out} (best val top-1 {100 * side['val_acc']:.2f}% at epoch {side['epoch']}); "
                  f"export it with: fnx export {model} --weights {out}")


@command("eval")
def eval_cmd(
    target: Path = typer.Argument(..., help="A checkpoint from fnx train, or a .tflite / .onnx artifact."),
    data: Path = typer.Option(..., "--data", help="Labelled image folder (one subfolder per class)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate an evenly spaced subset of N images."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Top-1 / top-5 accuracy over an image folder, through the runtime's preprocessing."""
    from fnx.evaluate import evaluate
    from fnx.progress import Steps

    r = evaluate(target, data, limit=limit, threads=threads, steps=Steps(quiet=as_json, console=err_console))
    if as_json:
        print_json(r)
    else:
        console.print(f"{target.name} [{r['kind']}]: top-1 {100 * r['top1']:.2f}%, top-5 {100 * r['top5']:.2f}% on {r['n']} images")


@command("demo")
def demo_cmd(out: Path = typer.Option(Path("demo_out"), "--out", help="Working folder for data and artifacts.")) -> None:
    """The main job on the built-in default: digits demo model -> fp32/int8 TFLite+ONNX -> run, accuracy, latency."""
    from fnx.demo.run import run_demo

    run_demo(out, console, err_console)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
