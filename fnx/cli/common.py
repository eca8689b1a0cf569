"""What every command shares: the consoles, the error wrapper, JSON output, option aliases and registry choices."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, NoReturn, Optional

import typer
from rich.console import Console

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.interrupts import caused_by_interrupt, keep_interrupts
from fnx.calibration.options import AUTO_FORM, DEFAULT_FORM
from fnx.exporter.options import GELU_FORMS
from fnx.runtime.placement import CONSENT, INFERENCE_PRECISIONS
from fnx.runtime.preprocess import PREPROCESS_MODES

console = Console()
err_console = Console(stderr=True)

# What to install for a missing optional module that no format (`requires`) or engine (`modules`) declares.
OTHER_EXTRAS = {**{m: pip_install("export") for m in ("torchao", "safetensors", "ai_edge_quantizer", "huggingface_hub")},
                **{m: pip_install("serve") for m in ("starlette", "uvicorn", "prometheus_client", "multipart")},
                "ray": pip_install("scale"), "PIL": pip_install("runtime"),
                "sklearn": "pip install scikit-learn (the demo's digits data set)"}


def install_hint(module: str) -> str | None:
    """Return what to install for a missing top-level module: the format that requires it, the engine that imports
    it (the registries say), or OTHER_EXTRAS; None for a module fnx does not know."""
    from fnx.exporter.formats import FORMATS
    from fnx.runtime.engines import ENGINES

    hints = [f.install for f in FORMATS.values() if module in f.requires]
    hints += [e.install for e in ENGINES.values() if module in e.modules]
    return hints[0] if hints else OTHER_EXTRAS.get(module)


def _choices(name: str, values) -> type[Enum]:
    """Return a str Enum of values (typer lists its members in --help and rejects others)."""
    return Enum(name, {v.replace(".", "_").replace("-", "_"): v for v in values}, type=str)  # type: ignore[return-value]


def format_choices() -> type[Enum]:
    from fnx.exporter.formats import FORMATS

    return _choices("FormatChoice", [*FORMATS, "all"])


def engine_choices() -> type[Enum]:
    from fnx.runtime.engines import ENGINES

    return _choices("EngineChoice", ENGINES)


def device_choices() -> type[Enum]:
    from fnx.devices import PROFILES
    from fnx.runtime.placement import KINDS

    return _choices("DeviceChoice", ["auto", *KINDS, *PROFILES])


def _precisions() -> type[Enum]:
    from fnx.formats import PRECISIONS

    return _choices("PrecisionChoice", PRECISIONS)


def _methods() -> type[Enum]:
    from fnx.calibration.options import CALIBRATION_METHODS, INT8_IO

    return _choices("CalibMethod", CALIBRATION_METHODS), _choices("Int8IO", INT8_IO)


PreprocessChoice = _choices("PreprocessChoice", PREPROCESS_MODES)
FormatChoice = format_choices()
EngineChoice = engine_choices()
DeviceChoice = device_choices()
PrecisionChoice = _precisions()
CalibMethod, Int8IO = _methods()

# Option aliases shared by several commands.
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="Engine threads (default: the engine's, or the device profile's).")]
Device = Annotated[DeviceChoice, typer.Option("--device", help="Where to run: auto (this machine's profile), a kind, or a profile (fnx devices).", case_sensitive=False)]
InferencePrecisionChoice = _choices("InferencePrecisionChoice", [*INFERENCE_PRECISIONS, CONSENT])
InferencePrecision = Annotated[Optional[InferencePrecisionChoice], typer.Option(
    "--inference-precision", case_sensitive=False,
    help="OpenVINO: compute in f32 (fnx's default), or bf16/f16 where the CPU has them (faster, looser parity); auto: "
         "you accept bf16/f16 and --device auto takes it where fnx bench all measured it faster within its bound.")]
Engine = Annotated[Optional[EngineChoice], typer.Option("--engine", help="Force an engine (default: the first installed one for the artifact's format).", case_sensitive=False)]
SkipCheck = Annotated[bool, typer.Option("--skip-manifest-check", help="Use the manifest beside the artifact even if it describes another file (sha256, shape).")]
CalibData = Annotated[Optional[str], typer.Option("--calib-data", help="int8: calibration image folder, or 'synthetic' (recorded as such).")]
CalibSize = Annotated[int, typer.Option("--calib-size", min=1, help="int8: number of calibration images (seeded sample).")]
CalibMethodOpt = Annotated[Optional[CalibMethod], typer.Option("--calib-method", help="int8: the activations' range estimator (default: each format's own: minmax, or mse where it is the quantizer's own default; a format whose quantizer lacks the one asked refuses it).", case_sensitive=False, show_default=False)]
def _int8_forms() -> type[Enum]:
    from fnx.exporter.int8_forms import all_form_names

    return _choices("Int8FormChoice", [AUTO_FORM, DEFAULT_FORM, *all_form_names()])


Int8FormChoice = _int8_forms()
Int8Form = Annotated[Int8FormChoice, typer.Option(
    "--int8-form", case_sensitive=False, help="int8: the form to write, per target (activation and weight types, NNCF "
    "preset, GELU as x*sigmoid(1.702x) for T0/T1; docs/guides/int8.md). auto: every candidate quantized, checked on "
    "the held-out images and timed here (1 thread), the fastest within the bound of the guard kept, the figures of "
    "every candidate in the manifest; with --target, the rule of each target. default: each target's default form, "
    "nothing measured (the quickest export). A format without the form named stays at auto.")]
OnnxInt8Form = Annotated[Optional[str], typer.Option("--onnx-int8-form", hidden=True, help="Deprecated: --int8-form.")]


def int8_form_of(form, onnx_form: str | None) -> str:
    """Return the --int8-form value, taking the deprecated --onnx-int8-form (said once) when it is given instead."""
    value = getattr(form, "value", form)
    if onnx_form is None:
        return value
    err_console.print("[yellow]warning:[/] --onnx-int8-form is deprecated: use --int8-form (it takes every "
                      "target's forms)", highlight=False)
    if value != AUTO_FORM and value != onnx_form:
        raise FnxError(f"--onnx-int8-form {onnx_form} and --int8-form {value} disagree: give --int8-form alone")
    return onnx_form
GeluFormChoice = _choices("GeluFormChoice", GELU_FORMS)
GeluForm = Annotated[GeluFormChoice, typer.Option(
    "--gelu-form", case_sensitive=False, help="int8 of T0/T1: exact, or sigmoid (GELU as x*sigmoid(1.702x): one "
                                              "XNNPACK partition, no float op, at most 0.02 from GELU).")]
def _target_help() -> str:
    from fnx.formats import file_formats

    compiled = "".join(f"; {f.name}: the device its file is compiled for ({', '.join(f.targets)}; default "
                       f"{f.targets[0]})" for f in file_formats().values() if f.targets)
    return ("The device the artifact is made for. int8 with --int8-form auto: the device profile the form is chosen "
            "for, by each target's rule instead of timing it here (fnx devices: rpi4, rpi5, aarch64, x86, ...; "
            f"default: this machine){compiled}.")


Target = Annotated[Optional[str], typer.Option("--target", help=_target_help())]
MinCosine = Annotated[Optional[float], typer.Option("--min-cosine", help="int8: bound on held-out and parity cosine vs fp32 (default: 0.99).")]
MaxTop1Drop = Annotated[Optional[float], typer.Option("--max-top1-drop", min=0, help="int8 with labelled data: max top-1 drop in points.")]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # fnx's own warnings speak to the user; third-party deprecation chatter does not.
    if f"{os.sep}fnx{os.sep}" in str(filename) or category.__module__.startswith("fnx"):
        err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def command(app: typer.Typer, *args, **kwargs) -> Callable:
    """Register a typer command whose FnxError is printed as one line, with exit code 1."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            previous = warnings.showwarning
            warnings.showwarning = _show_warning
            try:
                with keep_interrupts():
                    return fn(*a, **kw)
            except FnxError as e:
                _debug_traceback(e)
                err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            except ModuleNotFoundError as e:
                extra = install_hint((e.name or "").split(".")[0])
                if extra is None:
                    raise
                _debug_traceback(e)
                err_console.print(f"[bold red]error:[/] this command needs {e.name}, which is not installed here: "
                                  f"{escape(extra)}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                _interrupted()
            except Exception as e:
                if not caused_by_interrupt(e):
                    raise
                _debug_traceback(e)
                _interrupted()
            finally:
                warnings.showwarning = previous

        return app.command(*args, **kwargs)(wrapper)

    return register


def _interrupted() -> NoReturn:
    """Say a Ctrl-C ended the command (its files were cleaned up on the way out) and exit 130, as a shell does."""
    err_console.print("[bold red]interrupted[/]: no partial files were left")
    raise typer.Exit(130) from None


def _debug_traceback(e: BaseException) -> None:
    """With FNX_DEBUG=1, print the traceback behind a one-line error (huggingface_hub's HF_DEBUG habit)."""
    if os.environ.get("FNX_DEBUG") == "1":
        import traceback

        traceback.print_exception(e, file=sys.stderr)


def run_options(device: str = "auto", threads: int | None = None, engine=None, inference_precision=None):
    """Return the RunOptions record of a command's --device/--threads/--engine/--inference-precision (Enum choices)."""
    from fnx.runtime.placement import RunOptions

    return RunOptions(getattr(device, "value", device), threads, engine.value if engine else None,
                      inference_precision.value if inference_precision else None)


def escape(text: str) -> str:
    """Return text with rich markup escaped (error messages quote user paths and options in brackets)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_json(data) -> None:
    """Print data as JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def need_file(path: Path, what: str) -> Path:
    """Return path if it is a file; FnxError saying what is wrong otherwise."""
    if path.is_dir():
        raise FnxError(f"{what} {path} is a directory; pass the file itself")
    if not path.is_file():
        raise FnxError(f"{what} {path} does not exist")
    return path


def report_failures(errors: list[dict], total: int, done: str = "processed") -> None:
    """Print one line per input that failed (after the others were `done`); FnxError (exit 1) if any did."""
    for e in errors:
        err_console.print(f"[bold red]failed:[/] {escape(e['error'])}", highlight=False, soft_wrap=True)
    if not errors:
        return
    rest = total - len(errors)
    if rest == 0:
        raise FnxError(f"none of the {total} input(s) could be {done} (listed above)")
    raise FnxError(f"{len(errors)} of {total} input(s) could not be {done} (listed above); the other {rest} "
                   f"{'was' if rest == 1 else 'were'}")
