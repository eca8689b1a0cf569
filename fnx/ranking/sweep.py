"""`fnx bench all`: one model through every format x precision x engine this machine has, ranked by latency.

Each row is an artifact on one engine (and, for OpenVINO, one inference precision): its size, its parity
against the PyTorch fp32 model on the same images under that combination's bounds (fnx.parity), top-1
on labelled data if given, and latency at the requested threads. The fastest row within its bounds is
the recommendation. The model is built once; each artifact is exported once, with the export's own checks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fnx.errors import FnxError
from fnx.exporter.checks import as_nchw
from fnx.exporter.formats import installed_formats
from fnx.exporter.options import ExportOptions
from fnx.exporter.pipeline import export_prepared, prepare
from fnx.formats import artifact_digest
from fnx.install import pip_install
from fnx.parity import bounds_for, check
from fnx.progress import Steps
from fnx.runtime.bench import estimate_row
from fnx.runtime.placement import RunOptions

def combinations(fmt: str, precision: str) -> list[tuple[str, str | None, str]]:
    """Return (engine, inference precision, device kind) triples that can run an artifact here: every CPU engine,
    and each accelerator an engine offers here (ONNX Runtime's CUDA/TensorRT providers on a GPU machine)."""
    from fnx.runtime.engines import ENGINES

    pairs: list[tuple[str, str | None, str]] = []
    timed: set[str] = set()  # kernels already timed: engines that share them (LiteRT, tflite-runtime) run alike
    for engine in ENGINES.values():
        if fmt not in engine.formats or "cpu" not in engine.devices or not engine.available():
            continue
        if engine.kernels is not None:
            if engine.kernels in timed:
                continue
            timed.add(engine.kernels)
        hints = [None]
        if engine.precisions_here is not None and precision != "int8":
            hints += [h for h in engine.precisions_here() if h != "f32"]
        pairs += [(engine.name, h, "cpu") for h in hints]
    for engine in ENGINES.values():
        if fmt in engine.formats and engine.available() and engine.offers is not None:
            pairs += [(engine.name, None, kind) for kind in engine.devices if kind != "cpu" and engine.offers(kind)]
    return pairs


def bench_all(name: str, opts: ExportOptions, threads: int = 1, runs: int = 50, warmup: int = 10,
              data: Path | None = None, precisions: tuple[str, ...] = ("fp32", "fp16", "int8"),
              steps: Steps | None = None) -> list[dict]:
    """Export name to every format x precision here and time each on every engine; rows sorted by p50 latency, then
    the refusals ("error"), then the estimates of files compiled for an NPU ("estimate")."""
    steps = steps or Steps(quiet=True)
    formats = installed_formats()
    if not formats:
        raise FnxError(f"no export format is installed here: {pip_install('export')}")
    if "int8" in precisions and opts.int8.data is None:
        steps.info("[yellow]note:[/] no --calib-data: int8 rows are left out (pass an image folder, or synthetic)")
        precisions = tuple(p for p in precisions if p != "int8")
    if data is not None:
        from fnx.runtime.preprocess import list_images

        if not list_images(data):
            raise FnxError(f"fnx bench all --data {data} holds no images (jpg, jpeg, png, bmp, webp)")

    def data_fits(built) -> None:  # --data's class folders must be the model's before any export starts
        from fnx.imagefolder import class_index, image_folder

        class_index(image_folder(data, what="fnx bench all --data"), built.labels, built.class_ids)

    opts = replace(opts, formats=tuple(formats), verify=True)
    # one flow: every option checked, the model built and folded, the parity references computed, once
    prepared = prepare(name, opts, precisions, steps, check_built=data_fits if data is not None else None)
    built, (batch, source, refs) = prepared.built, prepared.check_inputs
    results, refused = export_prepared(prepared, opts, precisions, steps, keep_going=True)
    # e.g. the int8 guard refused: a row saying so, the others went on
    rows = [{"format": fmt, "precision": precision, "engine": None, "error": str(e)} for fmt, precision, e in refused]
    for res in results:
        for engine, hint, device in combinations(res.manifest.artifact.format, res.manifest.artifact.precision):
            label = f"{res.artifact.name} on {engine}" + (f" ({hint})" if hint else "") + \
                (f" {device}" if device != "cpu" else "")
            with steps.step(f"bench {label}"):
                try:
                    rows.append(_measure(res, RunOptions(device, threads, engine, hint), (batch, source, refs),
                                         built.has_logits, warmup, runs, data))
                except Exception as e:  # noqa: BLE001 - an accelerator listed but not startable (or failing) here: a row
                    if device == "cpu":
                        raise
                    rows.append({"format": res.manifest.artifact.format, "precision": res.manifest.artifact.precision,
                                 "engine": engine, "device": device, "error": str(e)})
    failed = [r for r in rows if "error" in r]
    timed = sorted((r for r in rows if "error" not in r), key=lambda r: r["p50_ms"])
    best = next((r for r in timed if r["parity_passed"]), None)
    for r in timed:
        r["fastest_within_bounds"] = r is best
    # a file compiled for an NPU runs on no engine here: its compiler's estimates, marked so, never ranked with timings
    estimates = [estimate_row(res.artifact.name, res.manifest) for res in results if res.manifest.compilation]
    return timed + failed + estimates


def _measure(res, run: RunOptions, check_inputs: tuple, logits: bool, warmup: int, runs: int,
             data: Path | None) -> dict:
    """Return one row: an exported artifact run as `run` says (engine, inference precision, device): parity, top-1
    (CPU rows; the same artifact's), latency."""
    from fnx.runtime import load
    from fnx.runtime.bench import bench_session
    from fnx.runtime.preprocess import to_layout

    batch, source, refs = check_inputs
    m = res.manifest
    precision, engine, hint, device = m.artifact.precision, run.engine, run.inference_precision, run.device
    session = load(res.artifact, run=run)
    outs = as_nchw(session.run(to_layout(batch, m.input.layout)), m.outputs)
    min_cos = m.calibration.guard.min_cosine if m.calibration else None
    parity = check(refs, outs, precision, [o.name for o in m.outputs], logits=logits,
                   bounds=bounds_for(precision, min_cos, hint), inputs=source)
    timing = bench_session(session, 1, warmup, runs)
    return {"artifact": res.artifact.name, "format": m.artifact.format, "precision": precision, "engine": engine,
            "device": device, "engine_label": session.engine_label,
            "inference_precision": hint or getattr(session.engine, "precision", None) or "native",
            "computed_precision": getattr(session.engine, "precision", None) or "native",  # read back from the engine
            "file_mb": artifact_digest(res.artifact)[1] / 1e6,
            "cosine": min(o.cosine for o in parity.outputs), "parity_passed": parity.passed,
            "parity_failures": parity.failures, "threads": run.threads,
            "top1": _top1(res.artifact, data, run) if data is not None and device == "cpu" else None,
            "p50_ms": timing["p50_ms"], "mean_ms": timing["mean_ms"], "throughput_ips": timing["throughput_ips"]}


def _top1(artifact: Path, data: Path, run: RunOptions) -> float:
    from fnx.evaluation import evaluate

    return evaluate(artifact, data, run=run)["top1"]
