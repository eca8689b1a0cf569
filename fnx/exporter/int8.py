"""int8 artifacts for `fnx export`: one calibration sample per model, the format's Quantizer(s) for the forms it
measures or was asked for, the guard, the record."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fnx.calibration.data import CalibrationSet
from fnx.calibration.flow import read_calibration
from fnx.calibration.form_search import Candidate, FormPlan, guarded_forms
from fnx.calibration.guard import GuardFailed, explained_for_weights, guard_bounds
from fnx.calibration.options import AUTO_FORM
from fnx.calibration.report import record_io_quantization
from fnx.exporter.build import BuiltModel
from fnx.exporter.checks import artifact_outputs, as_nchw, reference_outputs
from fnx.exporter.formats import ArtifactFormat
from fnx.exporter.from_qat import reference_of
from fnx.exporter.gelu_form import gelu_form_note, with_gelu_form
from fnx.exporter.int8_forms import gelu_forms, has_choice, pick_forms
from fnx.exporter.options import ExportOptions
from fnx.manifest import Manifest
from fnx.models import get_variant
from fnx.progress import Steps
from fnx.runtime.preprocess import to_layout


def calibration_data(built: BuiltModel, opts: ExportOptions, steps: Steps,
                     fmt: ArtifactFormat) -> tuple[CalibrationSet, list[np.ndarray]]:
    """Return the calibration set (read once per model) and the outputs of its held-out images by the PyTorch module
    fmt's artifact must reproduce (fp32, or a QAT graph: fnx.exporter.from_qat)."""
    if built.cache.calibration is None:
        built.cache.calibration = read_calibration(opts.int8, built.preprocessing, built.labels, built.class_ids, steps)
    data = built.cache.calibration
    reference, name = reference_of(built, fmt, opts.from_qat)
    refs = built.cache.held_out_refs
    if name not in refs:
        refs[name] = reference_outputs(reference, data.held_out)
    return data, refs[name]


def export_int8(fmt: ArtifactFormat, built: BuiltModel, deployed: torch.nn.Module, opts: ExportOptions, tmp: Path,
                steps: Steps, manifest: Manifest) -> None:
    """Write a guarded int8 artifact of deployed to tmp in the form --int8-form asked (auto: each candidate measured
    here, the fastest within the bound kept); record its calibration, the form's choice and I/O quantization.

    A --features backbone is guarded on its weakest feature map (every output held to the bound). With --calib-method
    unset, the format's default method; where that misses the bound and the format has calib_fallback, its others in
    order (the manifest's notes say which missed, and by how much)."""
    methods = fmt.calib_methods_to_try(opts.int8.method)
    missed: list[str] = []
    with explained_for_weights(built.weights.kind):
        for method, following in zip(methods, (*methods[1:], None)):
            try:
                _export_int8_with(fmt, built, deployed, replace(opts, int8=replace(opts.int8, method=method)), tmp,
                                  steps, manifest)
                break
            except GuardFailed as e:
                if len(methods) == 1:
                    raise
                missed.append(f"{method} ({'; '.join(e.failures)})")
                if following is None:
                    raise GuardFailed(f"int8 accuracy guard failed with every --calib-method {fmt.name} takes: "
                                      f"{', '.join(missed)}. Use more or more representative --calib-data, or a lower "
                                      f"--min-cosine", e.failures) from None
                steps.info(f"[yellow]guard:[/] --calib-method {missed[-1]} missed the bound; trying {following}")
    if missed:
        manifest.calibration.notes.append(f"--calib-method {method}: the format's default order missed the bound "
                                          f"with {', '.join(missed)}")


def _export_int8_with(fmt: ArtifactFormat, built: BuiltModel, deployed: torch.nn.Module, opts: ExportOptions,
                      tmp: Path, steps: Steps, manifest: Manifest) -> None:
    """export_int8 with the one --calib-method opts names."""
    data, refs = calibration_data(built, opts, steps, fmt)
    gelu = get_variant(built.name).act == "gelu"
    notes = [qat_note(opts.from_qat, fmt.name, learned_ranges=fmt.qat_quantizer is not None)] if opts.from_qat else []
    bounds = guard_bounds(opts.int8.min_cosine, opts.int8.max_top1_drop)
    make = (fmt.qat_quantizer or fmt.int8_quantizer) if opts.from_qat is not None else fmt.int8_quantizer
    learned = opts.from_qat is not None and fmt.qat_quantizer is not None  # the QAT graph as trained: no form to pick
    pick = pick_forms(fmt, opts.int8, gelu_forms(fmt, gelu and not learned, opts))
    outputs_of = lambda path: as_nchw(artifact_outputs(fmt, path, data.held_out), manifest.outputs)  # noqa: E731
    feed = to_layout(np.resize(data.held_out, (opts.batch, *data.held_out.shape[1:])), fmt.file.layout)
    with ExitStack() as stack:
        quantizers = {}
        for form in dict.fromkeys(o.gelu for o in pick.options):  # one quantizer per GELU form (model) it needs
            model, work = deployed, tmp
            if form != opts.gelu_form:
                model, work = with_gelu_form(deployed, form), tmp.with_name(f"{tmp.stem}.{form}-gelu{tmp.suffix}")
            base = pick.options[0].form.name if len(pick.options) == 1 and not learned else AUTO_FORM
            q_opts = replace(opts, gelu_form=form, int8=replace(opts.int8, form=base))
            quantizers[form] = stack.enter_context(make(model, built, q_opts, data, work))
        candidates = [Candidate(o.name, o.description, quantizers[o.gelu], o.form.name, _gelu_notes(fmt, o.gelu, gelu))
                      for o in pick.options]
        plan = FormPlan(candidates, pick.asked, pick.how, pick.reason, pick.left_out, record=has_choice(fmt) and not learned)
        manifest.calibration = guarded_forms(plan, tmp, outputs_of, feed, refs, data, bounds, steps, fmt.name,
                                             [o.name for o in manifest.outputs], notes, qat=opts.from_qat is not None)
    if fmt.gelu_note and fmt.gelu_note in manifest.calibration.notes:
        steps.info(f"[yellow]note:[/] {fmt.gelu_note}")
    if fmt.simulate is None:  # no fnx engine opens a simulated format's file: its I/O stays as the manifest says
        record_io_quantization(manifest, tmp)


def _gelu_notes(fmt: ArtifactFormat, form: str, gelu_variant: bool) -> tuple[str, ...]:
    """The manifest notes of a GELU form: the sigmoid form's (what it is), or, for the exact GELU of a GELU variant,
    the format's word on where int8 pays (the GELU policy, docs/BENCHMARKS.md)."""
    if form != "exact":
        return (gelu_form_note(form),)
    return (fmt.gelu_note,) if gelu_variant and fmt.gelu_note else ()


def qat_note(ckpt: Path, fmt: str, learned_ranges: bool) -> str:
    """Return the manifest note of an int8 artifact made from a `fnx train --qat` checkpoint."""
    from fnx.models.sidecar import read_sidecar

    side = read_sidecar(ckpt)
    qat = (side.extra or {}).get("qat", {}) if side else {}
    accuracy = (f"; QAT val top-1 {100 * side.val_acc:.2f}% (fake-quant) from fp32 {100 * qat['fp32_val_acc']:.2f}%"
                if side and side.val_acc is not None and "fp32_val_acc" in qat else "")
    how = ("weights and activation ranges learned in QAT" if learned_ranges else
           f"weights from QAT; activation ranges calibrated by the {fmt} quantizer (it does not take PT2E ranges)")
    return f"QAT checkpoint {Path(ckpt).name} (from {qat.get('base_weights', '?')}): {how}{accuracy}"
