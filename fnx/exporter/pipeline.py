"""`fnx export`: build -> fold -> for each format: convert -> verify -> manifest.

Every artifact is written under a temp name and renamed only after it passed its parity check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from fnx.errors import FnxError
from fnx.exporter.build import BuiltModel, build
from fnx.exporter.checks import (artifact_outputs, as_nchw, check_against_model, preflight, reference_outputs,
                               verification_images)
from fnx.exporter.fold import deploy_form
from fnx.exporter.gelu_form import with_gelu_form
from fnx.exporter.formats import ArtifactFormat, get_format
from fnx.exporter.from_qat import reference_of
from fnx.exporter.options import ExportOptions
from fnx.exporter.size_check import warn_if_resized
from fnx.exporter.stem_form import with_stem_form
from fnx.fileio import atomic_path, ensure_dir
from fnx.interrupts import keep_interrupts
from fnx.manifest import ArtifactInfo, Manifest, finish_artifact, manifest_path
from fnx.manifest_tensors import TensorSpec
from fnx.models import Variant, get_variant
from fnx.parity import ParityReport, bounds_for, check
from fnx.progress import Steps
from fnx.versions import versions

class ParityError(FnxError):
    """An artifact broke a parity bound; it was not kept."""

    def __init__(self, message: str, report: ParityReport):
        super().__init__(message)
        self.report = report


@dataclass
class ExportResult:
    artifact: Path
    manifest: Manifest
    parity: ParityReport | None


def artifact_name(built: BuiltModel, fmt: ArtifactFormat, precision: str) -> str:
    """Return e.g. `fasternet_t2_224_tflite_fp32.tflite` (`_features` for backbone exports).

    The format is in the stem too, so an ONNX and a TFLite export share a folder without their
    manifests (`X.json`) colliding.
    """
    kind = "_features" if built.features_only else ""
    return f"{built.name}_{built.img_size}{kind}_{fmt.name}_{precision}{fmt.file.suffix}"


def base_manifest(built: BuiltModel, fmt: ArtifactFormat, opts: ExportOptions) -> Manifest:
    """Return the manifest fields known before conversion: model, weights, tensors, preprocessing, labels."""
    layout, size, chans = fmt.file.layout, built.img_size, built.model.in_chans
    batch = None if opts.dynamic_batch else opts.batch
    shape = [batch, size, size, chans] if layout == "NHWC" else [batch, chans, size, size]
    outputs = built.output_specs(batch)
    for o in outputs:
        if o.layout == "NCHW" and layout == "NHWC":
            o.layout, o.shape = "NHWC", [o.shape[0], o.shape[2], o.shape[3], o.shape[1]]
    return Manifest(artifact=ArtifactInfo(fmt.name, opts.precision), model=built.config(), weights=built.weights,
                    inputs=[TensorSpec("input", shape, layout=layout, kind="image")], outputs=outputs,
                    preprocessing=built.preprocessing, labels=built.labels, class_ids=built.class_ids,
                    converter=versions(("fnx", *fmt.converters)))


@dataclass
class Prepared:
    """What every artifact of one export shares, made once: the built model, its deploy forms (one per PConv form the
    formats want), the output folder and the parity check's inputs and PyTorch outputs (None without verify)."""

    built: BuiltModel
    deployed: dict[tuple[str, str], torch.nn.Module]  # by (PConv form, stem form)
    out_dir: Path
    check_inputs: tuple | None


def made_pairs(opts: ExportOptions, precisions: tuple[str, ...], steps: Steps | None = None,
               variant: Variant | None = None) -> list[tuple[str, ArtifactFormat]]:
    """Return the (precision, format) pairs to export: of several formats (--format all, bench all), those a format
    does not make, or whose options or variant it refuses (ncnn's --features, a model too big for the IMX500), are
    left out (said on steps, with why); the one format asked for is kept, so its `check` says why not. FnxError if
    several were asked and none is left."""
    formats = [get_format(f) for f in opts.formats]
    if len(formats) == 1:
        return [(p, formats[0]) for p in precisions]
    pairs, skipped = [], []
    for p in precisions:
        for f in formats:
            try:
                f.check(opts.seen_by(f.file, p), variant)  # a precision it does not make is refused there too
                pairs.append((p, f))
            except FnxError as e:
                skipped.append(f"{f.name} {p} ({e})")
    if not pairs:
        raise FnxError(f"none of the formats asked for can export with these options: {'; '.join(skipped)}")
    if skipped and steps is not None:
        steps.info(f"[yellow]note:[/] left out: {'; '.join(skipped)}")
    return pairs


def prepare(name: str, opts: ExportOptions, precisions: tuple[str, ...], steps: Steps,
            built: BuiltModel | None = None, check_built: Callable[[BuiltModel], None] | None = None) -> Prepared:
    """Validate every option for every format x precision once (the checks that need no model first), build the model
    once, fold it once per PConv form and compute the parity references once.

    built: the model as `build(name, opts)` made it, to export it again without building it again (what it depends
    on: weights, classes, size, features, must be the same). check_built: a caller's own check of the built model
    (bench all's --data classes), run with the others before anything is written."""
    formats = [get_format(f) for f in opts.formats]
    variant = get_variant(name)
    pairs = made_pairs(opts, precisions, steps, variant)
    for precision, fmt in pairs:
        fmt.check(opts.seen_by(fmt.file, precision), variant)
    preflight(opts, precisions)  # every input that can be checked without the model, before building it
    make_toolchains([fmt for _, fmt in pairs], steps)
    if built is None:
        weights = opts.weights if opts.weights is not None else "official (the default)"
        with steps.step(f"build {variant.name.replace('_', '-')} (weights: {weights})"):
            built = build(name, opts)
    check_against_model(opts, built, precisions)
    if check_built is not None:
        check_built(built)
    warn_if_resized(built, opts.data)
    out_dir = ensure_dir(opts.out_dir)  # after the weights are had: a refused export leaves no empty folder
    with steps.step("fold BatchNorm into convs"):
        deployed = {(f.pconv_form, f.stem_form): with_stem_form(with_gelu_form(deploy_form(built.model, f.pconv_form),
                                                                               opts.gelu_form), f.stem_form)
                    for f in formats}
    check_inputs = None
    if opts.verify:
        with steps.step("prepare parity inputs"):
            batch_nhwc, source = verification_images(opts.data, built.preprocessing)
            check_inputs = (batch_nhwc, source, reference_outputs(built.model, batch_nhwc))
    return Prepared(built, deployed, out_dir, check_inputs)


def make_toolchains(formats: list[ArtifactFormat], steps: Steps) -> None:
    """Create, once per machine, the isolated toolchain of each format that has one and lacks it (FnxError in one
    line, nothing left behind, where the package index cannot be reached)."""
    from fnx.progress import phase
    from fnx.toolchains.env import create

    for tc in {f.toolchain.name: f.toolchain for f in formats if f.toolchain is not None}.values():
        if not tc.ready:
            with steps.step(f"create toolchain {tc.name} (once on this machine: fnx toolchains)"):
                create(tc, phase)


def export_prepared(prepared: Prepared, opts: ExportOptions, precisions: tuple[str, ...], steps: Steps,
                    keep_going: bool = False) -> tuple[list[ExportResult], list[tuple[str, str, FnxError]]]:
    """For each precision x format: convert, verify, write the manifest. Returns (artifacts, refusals); keep_going:
    an artifact refused (the int8 guard, a parity bound) is a (format, precision, error) and the others go on."""
    results, refused = [], []
    for precision, fmt in made_pairs(opts, precisions, variant=get_variant(prepared.built.name)):
        final = prepared.out_dir / artifact_name(prepared.built, fmt, precision)
        try:
            results.append(export_artifact(fmt, prepared.built, prepared.deployed[(fmt.pconv_form, fmt.stem_form)],
                                           opts.seen_by(fmt.file, precision), final, steps, prepared.check_inputs))
        except FnxError as e:
            if not keep_going:
                raise
            refused.append((fmt.name, precision, e))
    return results, refused


def export_model(name: str, opts: ExportOptions, steps: Steps | None = None,
                 built: BuiltModel | None = None) -> list[ExportResult]:
    """Export one model to every requested format at opts.precision; returns the verified artifacts (FnxError at the
    first that is refused). The one flow: `prepare` once, then `export_prepared`."""
    steps = steps or Steps(quiet=True)
    prepared = prepare(name, opts, (opts.precision,), steps, built)
    return export_prepared(prepared, opts, (opts.precision,), steps)[0]


def export_artifact(fmt: ArtifactFormat, built: BuiltModel, deployed: torch.nn.Module, opts: ExportOptions, final: Path,
                    steps: Steps, check_inputs: tuple | None) -> ExportResult:
    """Return the verified artifact at final (nothing is left under that name, nor its manifest, if any step fails)."""
    manifest = base_manifest(built, fmt, opts)
    json_path, had_json = manifest_path(final), manifest_path(final).exists()
    try:
        with atomic_path(final, fmt.file.companions) as tmp:
            with keep_interrupts():  # a Ctrl-C swallowed inside a converter still stops the export here
                report = convert_and_verify(fmt, built, deployed, opts, tmp, final, steps, check_inputs, manifest)
                if fmt.compile is not None:
                    with steps.step(f"compile for {fmt.name} (parity and guard were measured before)"):
                        manifest.compilation = fmt.compile(tmp, opts)
            manifest.parity = report
            finish_artifact(manifest, tmp, final)
    except BaseException:
        if not had_json:
            json_path.unlink(missing_ok=True)
        raise
    return ExportResult(final, manifest, report)


def convert_and_verify(fmt: ArtifactFormat, built: BuiltModel, deployed: torch.nn.Module, opts: ExportOptions,
                       tmp: Path, final: Path, steps: Steps, check_inputs: tuple | None,
                       manifest: Manifest) -> ParityReport | None:
    """Write the artifact to tmp and return its parity report (None without check inputs); ParityError if broken."""
    if opts.precision == "int8":
        from fnx.exporter.int8 import export_int8

        export_int8(fmt, built, deployed, opts, tmp, steps, manifest)
    else:
        with steps.step(f"convert to {fmt.name} {opts.precision}"):
            fmt.export_float(deployed, tmp, built, opts)
    if check_inputs is None:
        return None
    batch_nhwc, source, refs = check_inputs
    reference, reference_name = reference_of(built, fmt, opts.from_qat)
    if reference is not built.model:
        refs = reference_outputs(reference, batch_nhwc)
    with steps.step(f"verify {fmt.name} {opts.precision} against {reference_name}"):
        outs = as_nchw(artifact_outputs(fmt, tmp, batch_nhwc), manifest.outputs)
        report = check(refs, outs, opts.precision, [o.name for o in manifest.outputs], logits=built.has_logits,
                       bounds=bounds_for(opts.precision, opts.int8.min_cosine), inputs=source,
                       reference=reference_name)
    if not report.passed:
        raise ParityError(f"{final.name} failed its parity check ({'; '.join(report.failures)}); no artifact was "
                          f"written", report)
    return report
