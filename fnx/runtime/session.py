"""Session: one artifact on one engine, fed by its manifest's preprocessing and layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fnx.errors import FnxError
from fnx.manifest import read_manifest
from fnx.runtime.engines import TensorInfo, open_engine
from fnx.runtime.preprocess import DEFAULT_SPEC, preprocess, to_layout


@dataclass
class Prediction:
    """Top-k classes for one image."""

    source: str
    labels: list[str]
    indices: list[int]
    scores: list[float]

    def to_dict(self) -> dict:
        return {"source": self.source, "top": [{"label": l, "index": i, "score": s}
                                               for l, i, s in zip(self.labels, self.indices, self.scores)]}


class Session:
    """Runs one artifact: `run()` takes model-ready arrays, `predict()` takes images."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None, engine: str | None = None):
        self.path = Path(path)
        self.manifest = read_manifest(self.path) or {}
        self.device = device
        providers, threads = resolve_device(device, threads)
        self.engine = open_engine(self.path, threads=threads, providers=providers, engine=engine)
        self.threads = threads
        self.inputs: list[TensorInfo] = self.engine.inputs
        self.outputs: list[TensorInfo] = self.engine.outputs
        inp = self.manifest.get("input", {})
        self.layout = inp.get("layout") or _guess_layout(self.inputs[0].shape)
        self.preprocessing = self.manifest.get("preprocessing") or _default_spec(self.inputs[0].shape, self.layout)
        self.labels: list[str] | None = self.manifest.get("labels")

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def input_shape(self) -> tuple:
        return self.inputs[0].shape

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        """Return the float32 outputs for a batch in the artifact's input layout (int8 I/O handled inside)."""
        array = np.asarray(array)
        info = self.inputs[0]
        if array.ndim == 3:
            array = array[None]
        expected = tuple(info.shape[1:])
        if array.ndim != 4 or tuple(array.shape[1:]) != expected:
            raise FnxError(f"input of shape {tuple(array.shape)} does not fit this model: it takes (N, "
                           f"{', '.join(map(str, expected))}) in {self.layout} layout")
        if info.quantized:
            q = np.round(array.astype(np.float32) / info.scale) + info.zero_point
            lo, hi = np.iinfo(info.dtype).min, np.iinfo(info.dtype).max
            feed = np.clip(q, lo, hi).astype(info.dtype)
        else:
            feed = np.ascontiguousarray(array, dtype=info.dtype)
        n, fixed = feed.shape[0], info.shape[0]
        if fixed and n % fixed:  # pad to the artifact's fixed batch, then drop the padding
            feed = np.concatenate([feed, np.repeat(feed[-1:], fixed - n % fixed, axis=0)])
        raw = self.engine.run([feed])
        return [_dequantize(r[:n], o) for r, o in zip(raw, self.outputs)]

    def preprocess(self, images: Sequence) -> np.ndarray:
        """Return the model-ready batch for images (paths, PIL images or HWC uint8 arrays)."""
        batch = np.stack([preprocess(im, self.preprocessing) for im in images])
        return to_layout(batch, self.layout)

    def predict(self, images: Sequence | str | Path, topk: int = 5) -> list[Prediction]:
        """Return the top-k labels and softmax scores for each image."""
        if isinstance(images, (str, Path)) or hasattr(images, "mode") or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        logits = self.run(self.preprocess(images))[0]
        if logits.ndim != 2:
            raise FnxError("this artifact has no classifier head (a backbone export); use Session.run for its feature maps")
        probs = _softmax(logits)
        k = min(topk, probs.shape[1])
        preds = []
        for src, p in zip(images, probs):
            idx = np.argsort(-p)[:k]
            preds.append(Prediction(str(src) if isinstance(src, (str, Path)) else "<array>",
                                    [self.label(i) for i in idx], [int(i) for i in idx], [float(p[i]) for i in idx]))
        return preds

    def label(self, index: int) -> str:
        """Return the label for a class index (the index itself when the manifest has no labels)."""
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return str(index)


def load(path: str | Path, device: str = "auto", threads: int | None = None, engine: str | None = None) -> Session:
    """Return a Session for a .tflite or .onnx artifact (its manifest, if beside it, is read too)."""
    return Session(path, device=device, threads=threads, engine=engine)


def resolve_device(device: str, threads: int | None) -> tuple[list[str], int | None]:
    """Return (ONNX Runtime providers, threads) for --device: cpu, cuda, tensorrt, auto or a profile name.

    "auto" detects the machine (fnx.devices) and takes its profile's providers and thread count.
    """
    from fnx.devices import PROFILES, detect, get_profile

    device = (device or "auto").lower()
    if device == "cpu":
        return ["CPUExecutionProvider"], threads
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], threads
    if device == "tensorrt":
        return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], threads
    if device == "auto":
        profile = detect()
    elif device.replace("_", "-") in PROFILES:
        profile = get_profile(device)
    else:
        raise FnxError(f"unknown device {device!r}; use auto, cpu, cuda, tensorrt or a profile: {', '.join(PROFILES)}")
    providers = list(profile.providers)
    if device == "auto":  # only what this machine offers; an explicit profile insists (and errors clearly)
        from fnx.devices.detect import onnxruntime_providers

        available = onnxruntime_providers()
        providers = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    return providers, threads if threads is not None else profile.threads


def _guess_layout(shape: tuple) -> str:
    return "NCHW" if len(shape) == 4 and shape[1] in (1, 3) and shape[-1] not in (1, 3) else "NHWC"


def _default_spec(shape: tuple, layout: str) -> dict:
    size = shape[2] if layout == "NCHW" else shape[1]
    spec = dict(DEFAULT_SPEC)
    if size:
        spec.update(crop=int(size), resize_short=int(size / 0.9))
    return spec


def _dequantize(arr: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.quantized:
        return (arr.astype(np.float32) - info.zero_point) * np.float32(info.scale)
    return arr.astype(np.float32, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
