"""TFLite engines: LiteRT (ai-edge-litert, the maintained one), tflite-runtime (older Pi images), tf.lite."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.runtime.engines.base import Engine, TensorInfo, dist_version, load_error, register_engine
from fnx.quiet import silenced
from fnx.runtime.placement import Placement


class _Interpreter(Engine):
    kernels: ClassVar[str] = "tflite-interpreter"  # all three wrap one interpreter and its XNNPACK delegate
    """A TFLite interpreter on the CPU (XNNPACK where the build has it). Subclasses name the module."""

    name: ClassVar[str]
    module: ClassVar[str]
    dist: ClassVar[str]
    install: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.modules = (cls.module.split(".")[0],)

    @classmethod
    def interpreter_class(cls):
        return importlib.import_module(cls.module).Interpreter

    @classmethod
    def available(cls) -> bool:
        try:
            cls.interpreter_class()
            return True
        except ImportError:
            return False

    @classmethod
    def version(cls) -> str:
        return dist_version(cls.dist)

    def __init__(self, path: Path, placement: Placement):
        if placement.kind != "cpu" and placement.strict:
            raise FnxError(f"{self.name} runs TFLite models on the CPU only, not {placement.kind}: use --device cpu, "
                           f"or an ONNX export with ONNX Runtime for the GPU")
        self.placement = placement
        cls = self.interpreter_class()
        try:
            with silenced():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
                self.interpreter = cls(model_path=str(path), num_threads=placement.threads)
                self.interpreter.allocate_tensors()
        except Exception as e:  # engines raise ValueError/RuntimeError with C++ messages for bad files
            raise load_error(self.name, path, e) from e
        ins, outs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self.inputs = [_info(d) for d in ins]
        self.outputs = [_info(d) for d in outs]
        self._in_idx = [d["index"] for d in ins]
        self._out_idx = [d["index"] for d in outs]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        for idx, arr in zip(self._in_idx, feeds):
            self.interpreter.set_tensor(idx, arr)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i).copy() for i in self._out_idx]

    def describe(self) -> str:
        return f"{self.name} {self.version()}"


@register_engine
class LiteRT(_Interpreter):
    name, module, dist = "litert", "ai_edge_litert.interpreter", "ai-edge-litert"
    aliases = ("ai_edge_litert", "ai-edge-litert")
    install = f"pip install ai-edge-litert (or {pip_install('runtime')})"


@register_engine
class TFLiteRuntime(_Interpreter):
    name, module, dist = "tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"
    aliases = ("tflite_runtime",)
    install = "on older Raspberry Pi images: pip install tflite-runtime 'numpy<2'"


@register_engine
class TFLite(_Interpreter):
    name, module, dist = "tf.lite", "tensorflow", "tensorflow"
    aliases = ("tensorflow", "tf-lite")
    install = "pip install tensorflow"

    @classmethod
    def interpreter_class(cls):
        if "torch" in sys.modules:  # TensorFlow next to torch in one process has crashed here
            raise ImportError("tensorflow next to torch in one process has crashed; skipped")
        return importlib.import_module("tensorflow").lite.Interpreter


def _info(d: dict) -> TensorInfo:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorInfo(d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]), float(scale), int(zp))
