"""Session: one artifact on one engine, fed by its manifest's preprocessing and layout."""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fnx.errors import FnxError
from fnx.formats import EMBED_KEY, artifact_digest, detect_format
from fnx.manifest import Manifest, Preprocessing, manifest_path, parse_embedded, read_manifest
from fnx.runtime.engines import Engine, TensorInfo, engine_for, get_engine, open_engine
from fnx.runtime.placement import CONSENT, Placement, RunOptions, resolve_placement
from fnx.runtime.preprocess import preprocess, to_layout

from fnx.runtime.results import Prediction, Result


class NoManifestWarning(UserWarning):
    """An artifact runs without a manifest: its labels and preprocessing are unknown."""


class Session:
    """Runs one artifact: `run()` takes model-ready arrays, `predict()` takes images."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None, engine: str | None = None,
                 check_manifest: bool = True, inference_precision: str | None = None, *, run: RunOptions | None = None):
        if run is not None:  # the record, as fnx's own stages pass it
            if (device, threads, engine, inference_precision) != ("auto", None, None, None):
                raise TypeError("pass run=RunOptions(...) or device/threads/engine/inference_precision, not both")
            device, threads, engine, inference_precision = run.device, run.threads, run.engine, run.inference_precision
        self.path = Path(path)
        self.manifest: Manifest | None = read_manifest(self.path)
        # where the manifest came from: "beside" (X.json), "embedded" (inside an ONNX file) or None
        self.manifest_source = None if self.manifest is None else "beside" if manifest_path(self.path).is_file() else "embedded"
        self.device = device
        consent = inference_precision == CONSENT  # the user accepts bf16/f16 where measured faster within bounds
        self.placement = resolve_placement(device, threads, None if consent else inference_precision)
        self.engine_choice: str | None = None  # why --device auto took another engine or precision than the default
        own = self.placement
        if engine is None and not self.placement.strict and inference_precision in (None, CONSENT) and check_manifest:
            engine, hint, self.engine_choice = measured_engine(self.path, self.manifest, self.placement, consent)
            self.placement = replace(self.placement, inference_precision=hint)
        elif consent:
            self.engine_choice = ("--inference-precision auto applies with --device auto and no --engine: the "
                                  "artifact's own precision is kept")
        try:
            self.engine: Engine = open_engine(self.path, self.placement, engine)
        except FnxError:
            if self.engine_choice is None or self.placement.strict:
                raise
            engine, self.engine_choice, self.placement = None, None, own  # the measured choice would not open it
            self.engine = open_engine(self.path, self.placement, engine)
        self.threads = self.placement.threads
        if self.manifest is None and self.engine.embedded_metadata is not None:  # no `onnx` here: ask the engine
            text = self.engine.embedded_metadata().get(EMBED_KEY)
            if text is not None:
                self.manifest, self.manifest_source = parse_embedded(text, self.path), "embedded"
        self.inputs: list[TensorInfo] = self.engine.inputs
        self.outputs: list[TensorInfo] = self.engine.outputs
        if self.manifest is not None and check_manifest:
            check_manifest_fits(self.manifest, self.path, self.inputs[0])
            self.layout = self.manifest.input.layout or detect_format(self.path).layout
            self.preprocessing = self.manifest.preprocessing
            self.labels: list[str] | None = self.manifest.labels
        else:
            self.layout = detect_format(self.path).layout
            size = self.inputs[0].shape[2] if self.layout == "NCHW" else self.inputs[0].shape[1]
            self.preprocessing = Preprocessing.for_size(int(size)) if size else Preprocessing()
            self.labels = None
            if self.manifest is None and check_manifest:  # (fnx's own checks open unsealed files on purpose)
                warnings.warn(NoManifestWarning(
                    f"{self.path.name} has no manifest ({self.path.stem}.json is not beside it and none is embedded): "
                    f"predictions are class indices, not labels, and the preprocessing is assumed ("
                    f"{self.preprocessing.describe()}). Keep the .json fnx export wrote beside the file, or pass "
                    f"--labels FILE"), stacklevel=2)
        self._one_at_a_time = contextlib.nullcontext() if self.engine.concurrent_runs else threading.Lock()

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def inference_precision(self) -> str:
        """The precision the engine computes in (read back where the engine can say, e.g. OpenVINO's compiled hint)."""
        return getattr(self.engine, "precision", None) or "native"

    @property
    def engine_label(self) -> str:
        """The engine, its version and where it runs (e.g. "onnxruntime 1.23.2 (CPU)")."""
        return self.engine.describe()

    @property
    def input_shape(self) -> tuple:
        return self.inputs[0].shape

    @property
    def flops(self) -> int | None:
        return self.manifest.model.flops if self.manifest is not None else None

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
        feed = info.encode(array)
        n, fixed = feed.shape[0], info.shape[0]
        with self._one_at_a_time:  # a Session may be shared between threads; engines that cannot run two calls at once
            if not fixed or n == fixed:
                raw = self.engine.run([feed])
            else:  # a fixed-batch graph: run it in chunks of its own batch (the last one padded), then stack
                if n % fixed:
                    feed = np.concatenate([feed, np.repeat(feed[-1:], fixed - n % fixed, axis=0)])
                parts = [self.engine.run([feed[i : i + fixed]]) for i in range(0, len(feed), fixed)]
                raw = [np.concatenate([p[k] for p in parts]) for k in range(len(self.outputs))]
        return [o.decode(r[:n]) for r, o in zip(raw, self.outputs)]

    def preprocess(self, images: Sequence) -> np.ndarray:
        """Return the model-ready batch for images (paths, PIL images or HWC uint8 arrays)."""
        batch = np.stack([preprocess(im, self.preprocessing) for im in images])
        return to_layout(batch, self.layout)

    def stream(self, inputs, batch_size: int = 8, workers: int = 2, topk: int = 5, mode: str = "exact") -> Iterator[Result]:
        """Yield a Result per input (files, folders, globs, lists, videos, frames) in order, decoding ahead in a pool.

        A bad input yields a Result with its error and the stream goes on; memory stays flat (fnx.runtime.stream).
        """
        from fnx.runtime.stream import stream

        return stream(self, inputs, batch_size=batch_size, workers=workers, topk=topk, mode=mode)

    def predict(self, images, topk: int = 5, mode: str = "exact") -> list[Prediction]:
        """Return the top-k labels and softmax scores for each image; FnxError at the first one that fails."""
        if self.outputs[0].shape and len(self.outputs[0].shape) != 2:
            raise FnxError("this artifact has no classifier head (a backbone export); use Session.run for its feature maps")
        preds = []
        for r in self.stream(images, batch_size=8, workers=0, topk=topk, mode=mode):
            if r.error is not None:
                raise FnxError(r.error)
            preds.append(r.prediction)
        return preds

    def top(self, logits: np.ndarray, topk: int, source: str) -> Prediction:
        """Return the top-k labels and softmax scores of one image's logits."""
        p = _softmax(logits[None])[0]
        idx = np.argsort(-p)[: min(topk, p.size)]
        return Prediction(source, [self.label(i) for i in idx], [int(i) for i in idx], [float(p[i]) for i in idx])

    def label(self, index: int) -> str:
        """Return the label for a class index (the index itself when the manifest has no labels)."""
        if self.labels and 0 <= index < len(self.labels):
            return self.labels[index]
        return str(index)


def load(path: str | Path, device: str = "auto", threads: int | None = None, engine: str | None = None,
         check_manifest: bool = True, inference_precision: str | None = None, *,
         run: RunOptions | None = None) -> Session:
    """Return a Session for an artifact (its manifest, if beside it, is read and checked against the file).

    run: the same choices as one RunOptions record (what fnx's own stages pass), instead of the separate arguments.
    """
    return Session(path, device=device, threads=threads, engine=engine, check_manifest=check_manifest,
                   inference_precision=inference_precision, run=run)


def check_manifest_fits(manifest: Manifest, path: Path, engine_input: TensorInfo) -> None:
    """Refuse a manifest that describes another file: other format, size, sha256, input shape or dtype."""
    where = f"the manifest {path.with_suffix('.json').name} beside {path.name}"
    fix = "re-export, move the manifest aside, or pass --skip-manifest-check (check_manifest=False) to use it anyway"
    fmt = detect_format(path).name
    art = manifest.artifact
    if art.format != fmt:
        raise FnxError(f"{where} describes a {art.format} artifact, but {path.name} is {fmt}: {fix}")
    digest, size = artifact_digest(path)
    if (art.size_bytes is not None and art.size_bytes != size) or (art.sha256 and art.sha256 != digest):
        raise FnxError(f"{where} describes another file (its sha256 differs from {path.name}'s): the artifact was "
                       f"replaced or the manifest is stale; {fix}")
    want, got = tuple(manifest.input.shape[1:]), tuple(engine_input.shape[1:])
    if got != want or manifest.input.dtype != str(engine_input.dtype):
        raise FnxError(f"{where} says the input is {want} {manifest.input.dtype} but {path.name} takes {got} "
                       f"{engine_input.dtype}: they come from different exports; {fix}")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def measured_engine(path: Path, manifest: Manifest | None, placement: Placement,
                    consent: bool = False) -> tuple[str | None, str | None, str | None]:
    """Return (engine, inference precision, reason) for `--device auto` on a CPU: the fastest engine within parity
    bounds that `fnx bench all` measured on this machine for this model, format and precision, when it is installed
    here and is not the one fnx would take anyway; with consent (`--inference-precision auto`) also the rows in
    bf16/f16 within their own bounds, where this CPU computes in that precision. (None, None, None) otherwise."""
    from fnx.devices.measured import REDUCED, measured_ranking

    none = (None, None, "--inference-precision auto: nothing measured here for this artifact (fnx bench all): the "
                        "artifact's own precision is kept") if consent else (None, None, None)
    if manifest is None or placement.kind != "cpu":
        return none
    fmt = detect_format(path).name
    rows = measured_ranking(fmt, manifest.artifact.precision, manifest.model.name, manifest.model.img_size,
                            placement.threads, reduced=consent)
    row = next((r for r in rows if _installed(r.get("engine"), fmt) and _computes_here(r)), None)
    hint = row.get("inference_precision") if row is not None and row.get("inference_precision") in REDUCED else None
    if row is None:
        return none
    if hint is None and get_engine(row["engine"]) is engine_for(fmt, placement):
        return None, None, ("--inference-precision auto: the artifact's own precision on the default engine was the "
                            "fastest measured here within bounds" if consent else None)
    m = row["measured"]
    what = f"{row['engine']} computing in {hint} (consented: --inference-precision auto)" if hint else row["engine"]
    return row["engine"], hint, (f"{what}: fastest within parity bounds for {m['model']} {fmt} "
                                 f"{manifest.artifact.precision} measured here ({row['p50_ms']:.2f} ms at "
                                 f"{m['img_size']} px, {m['threads']} thread(s), fnx bench all {m['date']})")


def _computes_here(row: dict) -> bool:
    """A reduced-precision row counts only where this CPU computes in that precision now (the machine switch too)."""
    from fnx.devices.measured import REDUCED

    hint = row.get("inference_precision")
    if hint not in REDUCED:
        return True
    here = get_engine(row["engine"]).precisions_here
    return here is not None and hint in here()


def _installed(name: object, fmt: str) -> bool:
    """Whether a recorded engine name (or alias) is a registered engine installed here that runs fmt."""
    try:
        return isinstance(name, str) and fmt in get_engine(name).formats and get_engine(name).available()
    except FnxError:
        return False
