"""`fnx export`, `fnx quantize` and `fnx verify`: make artifacts and prove they compute what PyTorch does."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fnx.cli.app import app
from fnx.cli.common import (AsJson, CalibData, CalibMethodOpt, CalibSize, Device, DeviceChoice, FormatChoice,
                            GeluForm, GeluFormChoice, Int8Form, Int8FormChoice, Int8IO, MaxTop1Drop, MinCosine,
                            OnnxInt8Form, PrecisionChoice, Target, command, console, err_console, int8_form_of, need_file,
                            print_json)
from fnx.calibration.options import AUTO_FORM
from fnx.errors import FnxError


def formats_of(fmt: str) -> tuple[str, ...]:
    """Return the format names for --format ("all": every registered format whose converter is installed here)."""
    from fnx.exporter.formats import FORMATS, installed_formats

    if fmt != "all":
        return (fmt,)
    here = installed_formats()
    missing = [name for name in FORMATS if name not in here]
    if missing:
        err_console.print(f"[yellow]note:[/] --format all leaves out {', '.join(missing)} (converter not installed "
                          f"here; for {missing[0]}: {FORMATS[missing[0]].install})", highlight=False, soft_wrap=True)
    return tuple(here)


@command(app, "export")
def export_cmd(
    model: str = typer.Argument(..., help="fasternet-t0 ... fasternet-l (fasternet_t0 and t0 also accepted)."),
    fmt: FormatChoice = typer.Option(FormatChoice("tflite"), "--format", "-f", help="Artifact format (all: every one).", case_sensitive=False),
    precision: PrecisionChoice = typer.Option(PrecisionChoice("fp32"), "--precision", "-p", help="int8 needs --calib-data.", case_sensitive=False),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="PATH, URL, hf-hub:ORG/REPO\\[@REV], official or random (default: official, else its Hub mirror; an error if neither can be had)."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", min=0, help="Classifier size (default: from the checkpoint, else 1000)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size, a multiple of 32 (default: the checkpoint's, else 224)."),
    batch: int = typer.Option(1, "--batch", min=1, help="Static batch size."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="ONNX: make the batch axis dynamic."),
    opset: int = typer.Option(20, "--opset", help="ONNX opset (>= 20 keeps GELU one op)."),
    out: Path = typer.Option(Path("exports"), "--out", "-o", help="Output directory."),
    data: Optional[Path] = typer.Option(None, "--data", help="Images for the parity check (default: 16 synthetic images)."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the parity check (the manifest says so)."),
    features: bool = typer.Option(False, "--features", help="Export the backbone: its four stage feature maps."),
    calib_data: CalibData = None,
    calib_size: CalibSize = 256,
    calib_method: CalibMethodOpt = None,
    io: Int8IO = typer.Option(Int8IO("int8"), "--io", help="int8: input/output tensor type (TFLite: int8 only).", case_sensitive=False),
    int8_form: Int8Form = Int8FormChoice(AUTO_FORM),
    target: Target = None,
    min_cosine: MinCosine = None,
    max_top1_drop: MaxTop1Drop = None,
    onnx_int8_form: OnnxInt8Form = None,
    from_qat: Optional[Path] = typer.Option(None, "--from-qat", help="int8 from a fnx train --qat checkpoint: its weights and learned ranges (TFLite), or its weights calibrated by ONNX Runtime (ONNX)."),
    gelu_form: GeluForm = GeluFormChoice("exact"),
    as_json: AsJson = False,
) -> None:
    """Export a FasterNet, verified against PyTorch, with a manifest beside each file."""
    from fnx.calibration.options import Int8Options
    from fnx.cli.tables import parity_table, print_results, quant_report_table
    from fnx.exporter.options import ExportOptions
    from fnx.exporter.pipeline import ParityError, export_model
    from fnx.progress import Steps

    steps = Steps(quiet=as_json, console=err_console)
    method = calib_method and calib_method.value  # None: each format's own default
    int8 = Int8Options(calib_data, calib_size, method, io.value, min_cosine, max_top1_drop,
                       int8_form_of(int8_form, onnx_int8_form), target)
    opts = ExportOptions(formats=formats_of(fmt.value), precision=precision.value, weights=weights,
                         num_classes=num_classes, img_size=img_size, batch=batch, dynamic_batch=dynamic_batch,
                         opset=opset, out_dir=out, data=data, verify=not no_verify, features=features, int8=int8,
                         from_qat=from_qat, gelu_form=gelu_form.value)
    try:
        results = export_model(model, opts, steps)
    except ParityError as e:
        err_console.print(parity_table([("(rejected)", e.report)], title="Parity check FAILED"))
        raise
    if as_json:
        manifests = [r.manifest.to_dict() for r in results]
        print_json(manifests if len(manifests) > 1 else manifests[0])
        return
    print_results(console, results, steps.total)
    int8_rows = [(r.artifact.name, r.manifest) for r in results if r.manifest.calibration is not None]
    if int8_rows:
        console.print(quant_report_table(int8_rows))


@command(app, "quantize")
def quantize_cmd(
    artifact: Path = typer.Argument(..., help="An fp32 .onnx export with its manifest beside it."),
    calib_data: CalibData = None,
    calib_size: CalibSize = 256,
    calib_method: CalibMethodOpt = None,
    int8_form: Int8Form = Int8FormChoice(AUTO_FORM),
    target: Target = None,
    min_cosine: MinCosine = None,
    max_top1_drop: MaxTop1Drop = None,
    onnx_int8_form: OnnxInt8Form = None,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (as fnx export --out) or file (default: beside the artifact, its name with int8)."),
    as_json: AsJson = False,
) -> None:
    """Quantize an existing fp32 export (ONNX: to QDQ) to int8 through its manifest, with the report and guard."""
    from fnx.calibration.options import Int8Options
    from fnx.exporter.quantize import quantize_artifact
    from fnx.cli.tables import quant_report_table
    from fnx.progress import Steps

    need_file(artifact, "artifact")
    method = calib_method and calib_method.value
    options = Int8Options(calib_data, calib_size, method, "float", min_cosine, max_top1_drop,
                          int8_form_of(int8_form, onnx_int8_form), target)
    path, manifest = quantize_artifact(artifact, options, out, Steps(quiet=as_json, console=err_console))
    if as_json:
        print_json(manifest.to_dict())
        return
    console.print(quant_report_table([(path.name, manifest)]))
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def synthetic_layers_note(rows) -> str:
    """Return what --layers on synthetic images means, and that --data is the fix."""
    from fnx.exporter.checks import N_VERIFY_IMAGES

    flagged = sum(r.disagrees for r in rows)
    said = (f"[yellow]note:[/] these layers were measured on {N_VERIFY_IMAGES} synthetic images (no --data); the export's "
            f"guard measured on real images. ")
    if flagged:
        said += (f"The {flagged} flagged layer(s) may differ only because synthetic inputs reach values the int8 "
                 f"ranges were not calibrated for. ")
    return said + "Rerun with --data DIR (real images, e.g. the calibration folder) for figures to compare."


@command(app, "verify")
def verify_cmd(
    artifact: Path = typer.Argument(..., help="An exported artifact with its manifest."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="The PyTorch weights to compare against (default: the manifest's source)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Images (default: 16 synthetic images)."),
    device: Device = DeviceChoice("cpu"),
    layers: bool = typer.Option(False, "--layers", help="Also measure every conv/linear layer's error in the file itself (TFLite, ONNX, OpenVINO, ncnn) against the PyTorch module of the same name, beside what the export's guard recorded."),
    top: int = typer.Option(10, "--top", min=1, help="With --layers: how many of the worst layers to list (--json: all)."),
    as_json: AsJson = False,
) -> None:
    """Re-run the export's parity check on an existing artifact against PyTorch (needs the export extra), on the CPU or another device."""
    from fnx.cli.tables import layers_table, parity_table
    from fnx.exporter.verify import verify_artifact

    result = verify_artifact(need_file(artifact, "artifact"), weights=weights, data=data, device=device.value,
                             layers=layers)
    report, rows = result if layers else (result, None)
    if as_json:
        print_json({**report.to_dict(), "layers": [r.to_dict() for r in rows]} if layers else report.to_dict())
    else:
        console.print(parity_table([(artifact.name, report)]))
        if rows is not None:
            console.print(layers_table(rows, top))
            if data is None:
                err_console.print(synthetic_layers_note(rows), highlight=False, soft_wrap=True)
    if not report.passed:
        raise FnxError(f"{artifact.name} broke its parity bounds: {'; '.join(report.failures)}")
