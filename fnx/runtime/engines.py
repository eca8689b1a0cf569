"""Inference engines behind one small interface: LiteRT / tflite-runtime / tf.lite, and ONNX Runtime.

Each engine module is imported lazily, when a model of its format is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnx.errors import FnxError

TFLITE_ENGINES = ("ai_edge_litert", "tflite_runtime", "tensorflow")


@dataclass
class TensorInfo:
    """An engine tensor: name, shape (None for a dynamic dim), dtype, and int8 scale/zero point if quantized."""

    name: str
    shape: tuple
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)


def detect_format(path: Path) -> str:
    """Return "tflite" or "onnx" from a model file's suffix and magic bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".tflite":
        raise FnxError(f"{path} is not a TFLite model (no TFL3 identifier): the file is truncated or corrupt; re-export it")
    raise FnxError(f"{path} is not a model fnx can run: expected a .tflite or .onnx file")


class TFLiteEngine:
    """A TFLite interpreter from ai_edge_litert, tflite_runtime or tensorflow.lite (first found)."""

    format = "tflite"

    def __init__(self, path: Path, threads: int | None = None, engine: str | None = None):
        self.module_name, interpreter_cls = _import_tflite(engine)
        self.name = {"ai_edge_litert": "litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tf.lite"}[self.module_name]
        self.version = _version(self.module_name)
        try:
            self.interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as e:  # engines raise ValueError/RuntimeError with C++ messages for bad files
            raise FnxError(f"{self.name} cannot load {path} ({str(e).strip().splitlines()[0][:200]}): the file is corrupt, "
                           f"truncated or not a TFLite model; re-export it") from e
        self.inputs = [_tfl_info(d) for d in self.interpreter.get_input_details()]
        self.outputs = [_tfl_info(d) for d in self.interpreter.get_output_details()]
        self._in_idx = [d["index"] for d in self.interpreter.get_input_details()]
        self._out_idx = [d["index"] for d in self.interpreter.get_output_details()]
        self._batch = self.inputs[0].shape[0] or 1

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Return the raw outputs for raw inputs (engine dtypes and shapes)."""
        n, b = feeds[0].shape[0], self._batch
        if n != b:
            # Resizing the batch of a converted graph is unsafe (reshapes keep their traced batch):
            # run it in chunks of its own batch size instead.
            if n % b:
                raise FnxError(f"this model takes batches of {b}; got {n} inputs (pad to a multiple of {b})")
            parts = [self.run([f[i : i + b] for f in feeds]) for i in range(0, n, b)]
            return [np.concatenate([p[k] for p in parts]) for k in range(len(self._out_idx))]
        for idx, arr in zip(self._in_idx, feeds):
            self.interpreter.set_tensor(idx, arr)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i).copy() for i in self._out_idx]


class OnnxEngine:
    """An ONNX Runtime session on the CPU, CUDA or TensorRT execution providers."""

    format = "onnx"
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise FnxError("ONNX Runtime is not installed: pip install onnxruntime (or onnxruntime-gpu for CUDA)") from e
        self.version = ort.__version__
        available = ort.get_available_providers()
        providers = providers or ["CPUExecutionProvider"]
        wanted = [p for p in providers if p != "CPUExecutionProvider"]
        if wanted and not any(p in available for p in wanted):
            raise FnxError(f"ONNX Runtime here offers {', '.join(available)}, not {', '.join(wanted)}: install onnxruntime-gpu "
                           f"(pip install onnxruntime-gpu, with a matching CUDA) or run with --device cpu")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=[p for p in providers if p in available])
        except Exception as e:
            raise FnxError(f"onnxruntime cannot load {path} ({str(e).strip().splitlines()[0][:200]}): the file is corrupt, "
                           f"truncated or not an ONNX model; re-export it") from e
        self.providers = self.session.get_providers()
        self.inputs = [TensorInfo(i.name, tuple(d if isinstance(d, int) else None for d in i.shape), _ort_dtype(i.type))
                       for i in self.session.get_inputs()]
        self.outputs = [TensorInfo(o.name, tuple(d if isinstance(d, int) else None for d in o.shape), _ort_dtype(o.type))
                        for o in self.session.get_outputs()]
        self._names = [i.name for i in self.inputs]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Return the raw outputs for raw inputs."""
        n, b = feeds[0].shape[0], self.inputs[0].shape[0]
        if b is not None and n != b:  # a static batch: run in chunks of it and stack
            if n % b:
                raise FnxError(f"this model takes batches of {b}; got {n} inputs (pad to a multiple of {b}, or export "
                               f"with --dynamic-batch)")
            parts = [self.session.run(None, {k: a[i : i + b] for k, a in zip(self._names, feeds)}) for i in range(0, n, b)]
            return [np.concatenate([p[k] for p in parts]) for k in range(len(self.outputs))]
        return self.session.run(None, dict(zip(self._names, feeds)))


def _import_tflite(engine: str | None):
    order = [engine] if engine else list(TFLITE_ENGINES)
    errors = []
    for name in order:
        try:
            if name == "ai_edge_litert":
                from ai_edge_litert.interpreter import Interpreter
            elif name == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter
            elif name == "tensorflow":
                if "torch" in __import__("sys").modules:
                    raise ImportError("tensorflow next to torch in one process has crashed; skipped")
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            else:
                raise FnxError(f"unknown TFLite engine {name!r}; use one of {', '.join(TFLITE_ENGINES)}")
            return name, Interpreter
        except ImportError as e:
            errors.append(f"{name}: {e}")
    raise FnxError("no TFLite engine is installed: pip install ai-edge-litert (or 'fnx[runtime]'); on older Raspberry Pi "
                   "images pip install tflite-runtime 'numpy<2'. Tried: " + "; ".join(errors))


def _version(module_name: str) -> str:
    from importlib import metadata

    dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}[module_name]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _tfl_info(d: dict) -> TensorInfo:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorInfo(d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]), float(scale), int(zp))


def _ort_dtype(type_str: str) -> np.dtype:
    return np.dtype({"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
                     "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}.get(type_str, np.float32))


def open_engine(path: Path, threads: int | None = None, providers: list[str] | None = None, engine: str | None = None):
    """Return the engine for a model file (format from its bytes); FnxError for a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise FnxError(f"model file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise FnxError(f"model file {path} is empty; re-export it")
    fmt = detect_format(path)
    if fmt == "tflite":
        return TFLiteEngine(path, threads, engine)
    return OnnxEngine(path, threads, providers)
