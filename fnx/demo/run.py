"""`fnx demo` (what `make demo` runs): the whole chain on the shipped digits model, in one table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from fnx.demo.digits import build_digits
from fnx.demo.train_demo import DEMO_CHECKPOINT
from fnx.errors import FnxError
from fnx.evaluation import evaluate
from fnx.calibration.options import Int8Options
from fnx.exporter.options import ExportOptions
from fnx.runtime.placement import RunOptions
from fnx.exporter.pipeline import export_model
from fnx.progress import Steps
from fnx.runtime import load
from fnx.runtime.bench import bench_session


def run_demo(out: Path, console: Console, err_console: Console) -> list[dict]:
    """Export the demo model to fp32 and int8 TFLite and ONNX, run, evaluate and time them; returns the rows."""
    if not DEMO_CHECKPOINT.is_file():
        raise FnxError(f"the demo checkpoint {DEMO_CHECKPOINT} is missing; rebuild it: python -m fnx.demo.train_demo")
    steps = Steps(console=err_console)
    with steps.step("build the digits image folder (scikit-learn's real scans)"):
        digits = build_digits(out / "digits")
    results = []
    for precision in ("fp32", "int8"):
        opts = ExportOptions(formats=("tflite", "onnx"), precision=precision, weights=str(DEMO_CHECKPOINT),
                             out_dir=out / "artifacts", data=digits / "test",
                             int8=Int8Options(str(digits / "train"), 256, max_top1_drop=1.0))
        results += export_model("fasternet_t0", opts, steps)
    samples = sorted((digits / "test").rglob("*.png"))[::90][:4]
    session = load(results[-2].artifact, device="cpu", threads=1)
    console.print(f"[bold]fnx run {results[-2].artifact.name}[/] on {len(samples)} test images:")
    for p in session.predict([str(s) for s in samples], topk=1):
        console.print(f"  {Path(p.source).parent.name}/{Path(p.source).name}: predicted {p.labels[0]} ({p.scores[0]:.3f})")
    rows = [{"artifact": DEMO_CHECKPOINT.name, "size_mb": DEMO_CHECKPOINT.stat().st_size / 1e6, "parity": None,
             "top1": evaluate(DEMO_CHECKPOINT, digits / "test", steps=steps)["top1"], "latency_ms": None}]
    for r in results:
        acc = evaluate(r.artifact, digits / "test", run=RunOptions("cpu", threads=1), steps=steps)["top1"]
        lat = bench_session(load(r.artifact, device="cpu", threads=1), warmup=5, runs=50)["mean_ms"]
        rows.append({"artifact": r.artifact.name.replace("fasternet_t0_64_", "t0_64_"), "size_mb": r.artifact.stat().st_size / 1e6,
                     "parity": r.parity.outputs[0], "top1": acc, "latency_ms": lat})
    table = Table(title="fnx demo: FasterNet-T0 (64x64) trained on digits; parity and accuracy on the 360 test scans",
                  caption="cosine, max abs, top-1 agree(ment): vs the PyTorch fp32 model on the same images; latency: 1 thread, batch 1")
    for col in ("artifact", "size", "cosine", "max abs", "agree", "test top-1", "latency"):
        table.add_column(col, no_wrap=col != "artifact", overflow="fold", justify="left" if col == "artifact" else "right")
    for r in rows:
        p = r["parity"]
        table.add_row(r["artifact"], f"{r['size_mb']:.1f}MB", "reference" if p is None else f"{p.cosine:.6f}",
                      "-" if p is None else f"{p.max_abs:.1e}", "-" if p is None else f"{100 * p.top1_agreement:.1f}%",
                      f"{100 * r['top1']:.2f}%", "-" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms")
    console.print(table)
    console.print(next_steps(out, results), soft_wrap=True, highlight=False)  # unwrapped: each command copies whole
    return rows


def next_steps(out: Path, results: list) -> str:
    """Return what to try after the demo, on its own artifacts: where they are, how to reach `fnx`, five commands."""
    import os
    import shutil
    import sys

    def shown(path: Path) -> str:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else str(path)

    int8_tflite = next(r.artifact for r in results if r.artifact.suffix == ".tflite" and "int8" in r.artifact.name)
    fp32_onnx = next(r.artifact for r in results if r.artifact.suffix == ".onnx" and "fp32" in r.artifact.name)
    test = out / "digits" / "test"
    lines = ["", "[bold]Next[/]",
             f"  The artifacts are in {shown(out / 'artifacts')}/ (each with its manifest beside it, X.json)."]
    here = Path(sys.prefix) / "bin" / "fnx"
    found = shutil.which("fnx")
    if found is None or Path(found).resolve() != here.resolve():
        lines.append(f"  fnx is installed in {shown(Path(sys.prefix))}: first  [bold]. {shown(Path(sys.prefix))}/bin/activate[/]")
    lines += ["  Label images, check parity layer by layer, measure accuracy and latency, serve over HTTP:",
              f"    fnx run {shown(int8_tflite)} {shown(test / '7')}",
              f"    fnx verify {shown(int8_tflite)} --data {shown(test)} --layers",
              f"    fnx eval {shown(int8_tflite)} --data {shown(test)}",
              f"    fnx bench {shown(int8_tflite)} {shown(fp32_onnx)}",
              f"    fnx serve digits={shown(int8_tflite)}",
              "  The README's quickstart walks through each; task guides are in docs/guides/."]
    return "\n".join(lines)
