"""What parity checks run on: verification images, the PyTorch reference, an artifact through the runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fnx.errors import FnxError
from fnx.manifest import Preprocessing
from fnx.manifest_tensors import TensorSpec
from fnx.models import get_variant

N_VERIFY_IMAGES = 16


def preflight(opts, precisions: tuple[str, ...] | None = None) -> None:
    """Raise FnxError for any input of an export that listing files can prove wrong, before the model is built:
    the output folder, the input size, the --data folder and, for int8, the calibration source (precisions: those
    about to be exported, default opts.precision). The checks that need the model (classes) follow the build."""
    from fnx.calibration.data import check_calibration_source
    from fnx.fileio import check_output_dir
    from fnx.models import check_img_size
    from fnx.runtime.preprocess import list_images

    check_output_dir(opts.out_dir)
    if opts.from_qat is not None:
        from fnx.calibration.qat import check_qat_files

        check_qat_files(opts.from_qat)
    if opts.img_size is not None:
        check_img_size(opts.img_size)
    if opts.data is not None and not list_images(opts.data):
        raise FnxError(f"--data {opts.data} holds no images (jpg, jpeg, png, bmp, webp)")
    from fnx.exporter.formats import get_format
    from fnx.exporter.int8_forms import check_form_options
    from fnx.formats import target_format

    target = opts.int8.target
    owner = target_format(target) if target is not None else None  # a device one format's files are compiled for
    if owner is not None and owner.name not in opts.formats:
        raise FnxError(f"--target {target} is a device {owner.name} files are compiled for, and this export makes no "
                       f"{owner.name}: add --format {owner.name}, or drop --target")
    if target is not None and owner is None and all(get_format(f).file.targets for f in opts.formats):
        takes = "; ".join(f"for {f}, --target takes {', '.join(get_format(f).file.targets)}" for f in opts.formats)
        raise FnxError(f"--target {target} is a device profile (it chooses an int8 form by the device's rule), and "
                       f"every format of this export is compiled for a device of its own: {takes}")
    check_form_options(opts, [get_format(f) for f in opts.formats], "int8" in (precisions or (opts.precision,)))
    if "int8" in (precisions or (opts.precision,)):
        if opts.features and opts.int8.max_top1_drop is not None:
            raise FnxError("--max-top1-drop needs class logits, and a --features export has none; guard a backbone on "
                           "cosine alone (--min-cosine)")
        check_calibration_source(opts.int8.data, needs_labels=opts.int8.max_top1_drop is not None)


def check_against_model(opts, built, precisions: tuple[str, ...] | None = None) -> None:
    """The checks of preflight that need the built model: --max-top1-drop's class folders against its classes, and
    a --from-qat checkpoint's ranges against its model, size and classes."""
    from fnx.calibration.data import SYNTHETIC, check_calibration_classes

    cal = opts.int8
    if "int8" in (precisions or (opts.precision,)) and cal.max_top1_drop is not None and str(cal.data) != SYNTHETIC:
        check_calibration_classes(cal.data, built.labels, built.class_ids)
    if opts.gelu_form != "exact" and get_variant(built.name).act != "gelu":
        raise FnxError(f"--gelu-form {opts.gelu_form} rewrites GELU, and {built.name} uses "
                       f"{get_variant(built.name).act}: leave --gelu-form out (it applies to FasterNet-T0 and T1)")
    if opts.from_qat is not None:
        from fnx.calibration.qat import cached_ranges, check_qat_fits

        facts, _ = cached_ranges(built.cache.qat_ranges, opts.from_qat)
        check_qat_fits(facts, opts.from_qat, built.name, built.img_size, built.labels)


def verification_images(data: Path | None, preprocessing: Preprocessing, limit: int = 64) -> tuple[np.ndarray, str]:
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
    images = synthetic_images(N_VERIFY_IMAGES, size=preprocessing.resize_short)
    return np.stack([preprocess(im, preprocessing) for im in images]), f"{N_VERIFY_IMAGES} synthetic images (seed 0)"


def reference_outputs(model: torch.nn.Module, batch_nhwc: np.ndarray) -> list[np.ndarray]:
    """Return the PyTorch fp32 outputs for an NHWC batch, as a list."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))))
    return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else [out.numpy()]


def run_artifact(path: Path, batch_nhwc: np.ndarray, layout: str, threads: int | None = None,
                 device: str = "cpu") -> list[np.ndarray]:
    """Return an artifact's float outputs for an NHWC batch through fnx's runtime Session (on device)."""
    from fnx.runtime import Session
    from fnx.runtime.preprocess import to_layout

    return Session(path, device=device, threads=threads, check_manifest=False).run(to_layout(batch_nhwc, layout))


def artifact_outputs(fmt, path: Path, batch_nhwc: np.ndarray) -> list[np.ndarray]:
    """Return an artifact's float outputs for an NHWC batch: its vendor's simulator's where fmt (an ArtifactFormat)
    has one (no fnx engine runs its files), else fnx's runtime's."""
    if fmt.simulate is not None:
        return fmt.simulate(path, batch_nhwc)
    return run_artifact(path, batch_nhwc, fmt.file.layout)


def as_nchw(outs: list[np.ndarray], specs: list[TensorSpec]) -> list[np.ndarray]:
    """Return outputs with NHWC feature maps transposed to NCHW (the PyTorch reference's layout)."""
    return [o.transpose(0, 3, 1, 2) if s.layout == "NHWC" else o for o, s in zip(outs, specs)]
