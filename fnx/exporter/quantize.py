"""`fnx quantize ARTIFACT`: int8 from an existing fp32 export and its manifest, for the formats that quantize a file
(`ArtifactFormat.file_quantizer`); torch-free."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np

from fnx.calibration.data import check_calibration_classes, check_calibration_source
from fnx.calibration.flow import read_calibration
from fnx.calibration.form_search import Candidate, FormPlan, guarded_forms
from fnx.calibration.forms import check_form
from fnx.calibration.guard import explained_for_weights, guard_bounds
from fnx.calibration.options import AUTO_FORM, Int8Options
from fnx.calibration.report import record_io_quantization
from fnx.errors import FnxError
from fnx.exporter.formats import FORMATS, ArtifactFormat, get_format
from fnx.exporter.int8_forms import form_names, has_choice, pick_forms
from fnx.formats import detect_format
from fnx.fileio import atomic_path, check_output_file, sha256_file
from fnx.manifest import Manifest, finish_artifact, read_manifest
from fnx.parity import check
from fnx.progress import Steps


def int8_name(artifact: Path) -> Path:
    """Return the int8 sibling name of an fp32 artifact (`X_onnx_fp32.onnx` -> `X_onnx_int8.onnx`)."""
    stem = artifact.stem
    stem = stem[: -len("_fp32")] + "_int8" if stem.endswith("_fp32") else stem + "_int8"
    return artifact.with_name(stem + artifact.suffix)


def int8_path(artifact: Path, out: Path | None) -> Path:
    """Return where the int8 model goes: out as a file (X.onnx), or in the folder out (as `fnx export --out` takes
    one: an existing folder, or a new path without a suffix), or beside the artifact; FnxError for another suffix."""
    if out is None:
        return int8_name(artifact)
    if out.is_dir() or (not out.exists() and not out.suffix):
        return out / int8_name(artifact).name
    if out.suffix.lower() != artifact.suffix.lower():
        raise FnxError(f"--out {out}: give a folder, or a file name ending in {artifact.suffix}")
    return out


def quantizable_format(artifact: Path) -> ArtifactFormat:
    """Return the format of an existing artifact if fnx quantizes files of it; FnxError saying what to do otherwise."""
    if not artifact.is_file():
        raise FnxError(f"{artifact} does not exist")
    fmt = get_format(detect_format(artifact).name)
    if fmt.file_quantizer is None:
        takers = ", ".join(f.file.suffix for f in FORMATS.values() if f.file_quantizer is not None)
        raise FnxError(f"fnx quantize takes an fp32 {takers} export; a {fmt.name} int8 is made from the PyTorch model: "
                       f"fnx export MODEL --format {fmt.name} --precision int8 --calib-data DIR")
    return fmt


def quantize_artifact(artifact: Path, options: Int8Options, out: Path | None = None,
                      steps: Steps | None = None) -> tuple[Path, Manifest]:
    """Write the guarded int8 model of an fp32 export beside it; returns (path, manifest)."""
    from fnx.runtime import load

    steps = steps or Steps(quiet=True)
    artifact = Path(artifact)
    fmt = quantizable_format(artifact)
    manifest = read_manifest(artifact)
    if manifest is None:
        raise FnxError(f"{artifact} has no manifest beside it ({artifact.with_suffix('.json').name}): fnx quantize reads "
                       f"its preprocessing from there; re-export with fnx export --format {fmt.name}")
    if manifest.artifact.precision != "fp32":
        raise FnxError(f"{artifact.name} is {manifest.artifact.precision}, not fp32: quantize an fp32 export")
    out = int8_path(artifact, out)
    check_output_file(out, "int8 model")
    has_logits = any(o.kind == "logits" for o in manifest.outputs)
    if options.max_top1_drop is not None and not has_logits:
        raise FnxError(f"--max-top1-drop needs class logits, and {artifact.name} (a --features backbone) has none; "
                       f"guard it on cosine alone (--min-cosine)")
    check_calibration_source(options.data, needs_labels=options.max_top1_drop is not None)
    if options.max_top1_drop is not None:
        check_calibration_classes(options.data, manifest.labels, manifest.class_ids)
    check_form(options.form, form_names(fmt), f"fnx quantize of a {fmt.name} file")
    fmt.check_calib_method(options.method)
    options = replace(options, method=fmt.calib_methods_to_try(options.method)[0])
    data = read_calibration(options, manifest.preprocessing, manifest.labels, manifest.class_ids, steps)
    held = np.ascontiguousarray(data.held_out.transpose(0, 3, 1, 2))
    refs = load(artifact, device="cpu").run(held)  # every output: a --features backbone has four
    final = out
    bounds = guard_bounds(options.min_cosine, options.max_top1_drop)
    new = copy.deepcopy(manifest)
    new.artifact.precision = "int8"
    new.artifact.quantized_from = {"file": artifact.name, "sha256": sha256_file(artifact)}
    pick = pick_forms(fmt, options)
    with (explained_for_weights(manifest.weights.kind), atomic_path(final) as tmp,
          fmt.file_quantizer(artifact, data, replace(options, form=AUTO_FORM)) as quantizer):
        outputs_of = lambda path: load(path, device="cpu", check_manifest=False).run(held)  # noqa: E731
        names = [o.name for o in new.outputs]
        plan = FormPlan([Candidate(o.name, o.description, quantizer, o.form.name) for o in pick.options], pick.asked,
                        pick.how, pick.reason, pick.left_out, record=has_choice(fmt))
        feed = np.resize(held, (manifest.input.shape[0] or 1, *held.shape[1:]))
        new.calibration = guarded_forms(plan, tmp, outputs_of, feed, refs, data, bounds, steps, fmt.name, names)
        record_io_quantization(new, tmp)
        # The parity record: the int8 model against the fp32 artifact it came from, on the held-out images.
        new.parity = check(refs, outputs_of(tmp), "int8", names, bounds={"min_cosine": bounds.min_cosine},
                           reference="fp32 artifact", inputs=f"{len(held)} held-out calibration images")
        finish_artifact(new, tmp, final)
    return final, new
