"""`fnx export`: build -> fold -> trace/convert -> simplify -> verify -> artifact + manifest.

Every artifact is written under a temp name and renamed only after it passed its parity check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fnx import __version__
from fnx.errors import FnxError
from fnx.exporter.fold import deploy_form
from fnx.fileio import ensure_dir, sha256_file
from fnx.manifest import SCHEMA
from fnx.models import check_img_size, count_flops, count_params, create_model, get_variant
from fnx.models.variants import default_preprocessing
from fnx.parity import ParityReport
from fnx.progress import Steps

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "int8")
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}
# PConv form per format, from benchmarks/pconv_forms.py: split+concat is as fast or faster on both
# engines, and the slicing form's in-place write becomes ScatterND chains in ONNX.
PCONV_FORM = {"onnx": "split_cat", "tflite": "split_cat"}
FEATURE_NAMES = ["stage1", "stage2", "stage3", "stage4"]
N_VERIFY_IMAGES = 16


class ParityError(FnxError):
    """An artifact broke a parity bound; it was not kept."""

    def __init__(self, message: str, report: ParityReport):
        super().__init__(message)
        self.report = report


@dataclass
class ExportOptions:
    """What `fnx export` was asked for (the CLI's flags)."""

    formats: tuple[str, ...] = ("tflite",)
    precision: str = "fp32"
    weights: str = "random"
    num_classes: int | None = None
    img_size: int | None = None
    batch: int = 1
    dynamic_batch: bool = False
    opset: int = 20
    out_dir: Path = Path("exports")
    data: Path | None = None
    verify: bool = True
    features: bool = False
    calibration: dict = field(default_factory=dict)  # the int8 options (fnx.calibration)


@dataclass
class ExportResult:
    artifact: Path
    manifest: dict
    parity: ParityReport | None


@dataclass
class BuiltModel:
    """The PyTorch side of an export: the eval model, its config and where its weights came from."""

    name: str
    model: torch.nn.Module
    img_size: int
    num_classes: int
    features: bool
    weights: dict
    labels: list[str] | None
    preprocessing: dict
    cache: dict = field(default_factory=dict)  # work shared by this model's artifacts (int8 calibration)

    def config(self) -> dict:
        return {"name": self.name, "variant": get_variant(self.name).to_dict(), "num_classes": self.num_classes,
                "in_chans": self.model.in_chans, "img_size": self.img_size, "features_only": self.features,
                "params": count_params(self.model), "flops": count_flops(self.model, self.img_size), "bn_folded": True}


def build(name: str, opts: ExportOptions) -> BuiltModel:
    """Return the eval-mode PyTorch model for an export, with labels and preprocessing from its sidecar."""
    if opts.batch < 1:
        raise FnxError(f"--batch must be >= 1, got {opts.batch}")
    variant = get_variant(name)
    info: dict = {}
    model = create_model(variant.name, weights=opts.weights, num_classes=opts.num_classes,
                         features_only=opts.features, source_out=info)
    sidecar = info["sidecar"]
    img_size = check_img_size(opts.img_size or sidecar.get("img_size") or variant.default_img_size)
    preprocessing = dict(sidecar.get("preprocessing") or default_preprocessing(img_size))
    if preprocessing.get("crop") != img_size:
        preprocessing = {**default_preprocessing(img_size, preprocessing.get("mean"), preprocessing.get("std")),
                         **{k: v for k, v in preprocessing.items() if k in ("interpolation", "channel_order")}}
    labels = sidecar.get("labels")
    if labels and not opts.features and len(labels) != info["num_classes"]:
        labels = None
    return BuiltModel(variant.name, model, img_size, info["num_classes"], opts.features, info["weights"].to_dict(),
                      labels, preprocessing)


def artifact_name(built: BuiltModel, fmt: str, precision: str) -> str:
    """Return e.g. `fasternet_t2_224_tflite_fp32.tflite` (`_features` for backbone exports).

    The format is in the stem too, so an ONNX and a TFLite export share a folder without their
    manifests (`X.json`) colliding.
    """
    kind = "_features" if built.features else ""
    return f"{built.name}_{built.img_size}{kind}_{fmt}_{precision}{SUFFIX[fmt]}"


def verification_images(data: Path | None, preprocessing: dict, limit: int = 64) -> tuple[np.ndarray, str]:
    """Return an NHWC float batch for parity checks (the user's images, else fixed synthetic ones) and its source."""
    from fnx.calibration.synthetic import synthetic_images
    from fnx.runtime.preprocess import list_images, preprocess

    if data is not None:
        paths = list_images(data)
        if not paths:
            raise FnxError(f"--data {data} holds no images (jpg, jpeg, png, bmp, webp)")
        step = max(1, len(paths) // limit)
        paths = paths[::step][:limit]
        return np.stack([preprocess(p, preprocessing) for p in paths]), f"{len(paths)} images from {data}"
    images = synthetic_images(N_VERIFY_IMAGES, size=preprocessing["resize_short"])
    return np.stack([preprocess(im, preprocessing) for im in images]), f"{N_VERIFY_IMAGES} synthetic images (seed 0)"


def reference_outputs(model: torch.nn.Module, batch_nhwc: np.ndarray) -> list[np.ndarray]:
    """Return the PyTorch fp32 outputs for an NHWC batch, as a list."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))))
    return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else [out.numpy()]


def run_artifact(path: Path, batch_nhwc: np.ndarray, layout: str, threads: int | None = None) -> list[np.ndarray]:
    """Return an artifact's float outputs for an NHWC batch through fnx's runtime Session."""
    from fnx.runtime import Session
    from fnx.runtime.preprocess import to_layout

    return Session(path, device="cpu", threads=threads).run(to_layout(batch_nhwc, layout))


def export_model(name: str, opts: ExportOptions, steps: Steps | None = None) -> list[ExportResult]:
    """Export one model to every requested format; returns the verified artifacts."""
    steps = steps or Steps(quiet=True)
    for fmt in opts.formats:
        if fmt not in FORMATS:
            raise FnxError(f"unknown format {fmt!r}; use onnx, tflite or all")
    if opts.precision not in PRECISIONS:
        raise FnxError(f"unknown precision {opts.precision!r}; use one of {', '.join(PRECISIONS)}")
    out_dir = ensure_dir(opts.out_dir)
    with steps.step(f"build {get_variant(name).name.replace('_', '-')} (weights: {opts.weights})"):
        built = build(name, opts)
    with steps.step("fold BatchNorm into convs"):
        deployed = {fmt: deploy_form(built.model, PCONV_FORM[fmt]) for fmt in opts.formats}
    batch_nhwc, source = None, None
    if opts.verify:
        with steps.step("prepare parity inputs"):
            batch_nhwc, source = verification_images(opts.data, built.preprocessing)
            refs = reference_outputs(built.model, batch_nhwc)
    results = []
    for fmt in opts.formats:
        from fnx.exporter import formats

        results.append(formats.export_one(built, deployed[fmt], fmt, opts, out_dir / artifact_name(built, fmt, opts.precision),
                                          steps, batch_nhwc, refs if opts.verify else None, source))
    return results


def base_manifest(built: BuiltModel, fmt: str, precision: str, opts: ExportOptions) -> dict:
    """Return the manifest fields known before conversion."""
    layout = "NHWC" if fmt == "tflite" else "NCHW"
    size = built.img_size
    shape = [opts.batch, size, size, built.model.in_chans] if layout == "NHWC" else [opts.batch, built.model.in_chans, size, size]
    if opts.dynamic_batch and fmt == "onnx":
        shape[0] = None
    if built.features:
        dims = get_variant(built.name).stage_dims
        outputs = [{"name": n, "stride": 4 * 2**i, "channels": d, "layout": layout} for i, (n, d) in enumerate(zip(FEATURE_NAMES, dims))]
    else:
        outputs = [{"name": "logits", "shape": [shape[0], built.num_classes or 1280], "kind": "logits" if built.num_classes else "pooled_features"}]
    return {
        "schema": SCHEMA,
        "artifact": {"format": fmt, "precision": precision},
        "model": built.config(),
        "weights": built.weights,
        "input": {"name": "input", "shape": shape, "layout": layout, "dtype": "float32", "quantization": None},
        "outputs": outputs,
        "preprocessing": built.preprocessing,
        "labels": built.labels,
        "calibration": None,
        "parity": None,
        "converter": converter_versions(fmt),
    }


def converter_versions(fmt: str) -> dict:
    from importlib import metadata

    names = ["torch", "onnx", "onnxslim", "onnxruntime"] if fmt == "onnx" else ["torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"]
    out = {"fnx": __version__}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def finish_manifest(manifest: dict, tmp: Path, final: Path) -> dict:
    """Fill in the finished artifact's file facts (name, sha256, size); returns the manifest."""
    manifest["artifact"].update(file=final.name, sha256=sha256_file(tmp), size_bytes=tmp.stat().st_size)
    return manifest

