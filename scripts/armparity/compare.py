"""The x86 side and the verdicts: fixed inputs, x86 outputs, PyTorch references, and each aarch64 result judged
with fnx.parity (CROSS_ARCH_BOUNDS against x86; int8 also against PyTorch fp32 at the artifact's own bound)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fnx.manifest import Manifest, read_manifest
from fnx.parity import CROSS_ARCH_BOUNDS, bounds_for, check, cross_arch_failures

N_IMAGES = 4


@dataclass
class Artifact:
    """One artifact under test, with its fixed input and the references its aarch64 outputs are judged against."""

    path: Path
    id: str = ""
    manifest: Manifest | None = None
    x: np.ndarray | None = None
    ref: np.ndarray | None = None  # x86 output, fnx.runtime, 1 thread
    torch_ref: np.ndarray | None = None  # PyTorch fp32 on the same input (int8 artifacts)
    x86_engine: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manifest = read_manifest(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def format(self) -> str:
        return self.manifest.artifact.format if self.manifest else self.path.suffix.lstrip(".")

    @property
    def precision(self) -> str:
        return self.manifest.artifact.precision if self.manifest else "fp32"

    def bound_text(self) -> str:
        text = ", ".join(f"{k} {v:.3g}" for k, v in CROSS_ARCH_BOUNDS[self.precision].items())
        if self.torch_ref is not None:
            text += f"; vs PyTorch cos {self.int8_bounds()['min_cosine']:g}"
        return text

    def int8_bounds(self) -> dict[str, float]:
        guard = self.manifest.calibration.guard.min_cosine if self.manifest and self.manifest.calibration else None
        return bounds_for("int8", guard)


def prepare(a: Artifact, index: int, work: Path) -> None:
    """Copy the artifact into the chroot's work dir, make its fixed input and compute its x86 and PyTorch references."""
    from fnx.calibration.synthetic import synthetic_images
    from fnx.runtime import load
    from fnx.runtime.preprocess import preprocess, to_layout

    from fnx.formats import artifact_files

    a.id = f"a{index}"
    for f in artifact_files(a.path):  # OpenVINO IR: the .xml and its .bin
        shutil.copy2(f, work / (a.id + f.suffix))
    if a.path.with_suffix(".json").is_file():
        shutil.copy2(a.path.with_suffix(".json"), work / f"{a.id}.json")
    s = load(a.path, device="cpu", threads=1)
    imgs = synthetic_images(N_IMAGES, size=int(s.preprocessing.resize_short), seed=0)
    a.x = to_layout(np.stack([preprocess(im, s.preprocessing) for im in imgs]), s.layout)
    np.save(work / f"{a.id}-x.npy", a.x)
    a.ref = s.run(a.x)[0]
    a.x86_engine = s.engine_label
    if a.precision == "int8" and a.manifest is not None:
        a.torch_ref = torch_reference(a.manifest, a.x if s.layout == "NCHW" else a.x.transpose(0, 3, 1, 2))


def torch_reference(manifest: Manifest, x_nchw: np.ndarray) -> np.ndarray:
    """Return the PyTorch fp32 model's output (the manifest's weights) for an NCHW batch."""
    import torch

    from fnx.models import create_model

    m = manifest.model
    model = create_model(m.name, weights=manifest.weights.path, num_classes=m.num_classes, in_chans=m.in_chans)
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x_nchw))).numpy()


def judge(a: Artifact, got: np.ndarray) -> tuple[bool, str, str, str]:
    """Return (ok, verdict, figures text, top-1 agreement text) of an aarch64 output against a's references."""
    failures, fig = cross_arch_failures(a.ref, got, a.precision)
    if not fig:
        return False, f"FAIL: {failures[0]}", "-", "-"
    text = f"{fig['max_abs']:.3g} (rel {fig['max_abs_rel']:.2g})" if a.precision != "int8" else \
        f"rel L2 {fig['rel_l2']:.3f}, cos {fig['cosine']:.5f}{steps(a, fig['max_abs'])}"
    top1 = f"{int((got.argmax(1) == a.ref.argmax(1)).sum())}/{len(got)}" if got.ndim == 2 else "-"
    if a.torch_ref is not None:
        rep = check([a.torch_ref], [got], "int8", ["logits"], bounds=a.int8_bounds(), reference="pytorch fp32")
        text += f"; vs PyTorch cos {rep.outputs[0].cosine:.4f}"
        failures += [f"vs PyTorch fp32: {f}" for f in rep.failures]
    return (not failures), ("ok" if not failures else f"FAIL: {'; '.join(failures)}"), text, top1


def steps(a: Artifact, max_abs: float) -> str:
    """Return ", N steps" (max|diff| in output quantization steps) when the output is int8, for the table only."""
    q = a.manifest.outputs[0].quantization if a.manifest else None
    return f", {max_abs / q.scale:.1f} steps" if q and q.scale else ""


def judge_preprocessing(got: np.ndarray, want: np.ndarray) -> tuple[bool, str]:
    bound = CROSS_ARCH_BOUNDS["preprocessing"]["max_abs"]
    d = float(np.abs(got - want).max())
    return d <= bound, f"{d:.3g}"
