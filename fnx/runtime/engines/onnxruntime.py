"""ONNX Runtime: the CPU, CUDA and TensorRT execution providers, chosen from the placement."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx.errors import FnxError
from fnx.runtime.engines.base import TensorInfo, dist_version, load_error, register_engine
from fnx.runtime.placement import Placement

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
           "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}


@register_engine
class OnnxRuntime:
    """An ONNX Runtime InferenceSession."""

    name: ClassVar[str] = "onnxruntime"
    aliases: ClassVar[tuple[str, ...]] = ("ort", "onnx-runtime")
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda", "tensorrt")
    install: ClassVar[str] = "pip install onnxruntime (or 'fnx[onnx-runtime]'; onnxruntime-gpu for CUDA)"

    @classmethod
    def available(cls) -> bool:
        import importlib.util

        return importlib.util.find_spec("onnxruntime") is not None

    @classmethod
    def version(cls) -> str:
        return dist_version("onnxruntime") if dist_version("onnxruntime") != "unknown" else dist_version("onnxruntime-gpu")

    def __init__(self, path: Path, placement: Placement):
        import onnxruntime as ort

        self.placement = placement
        available = ort.get_available_providers()
        wanted = PROVIDERS[placement.kind]
        accelerators = [p for p in wanted if p != "CPUExecutionProvider"]
        if accelerators and placement.strict and not any(p in available for p in accelerators):
            raise FnxError(f"ONNX Runtime here offers {', '.join(available)}, not {', '.join(accelerators)}: install "
                           f"onnxruntime-gpu (pip install onnxruntime-gpu, with a matching CUDA) or run with --device cpu")
        opts = ort.SessionOptions()
        if placement.threads:
            opts.intra_op_num_threads = placement.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=[p for p in wanted if p in available])
        except Exception as e:
            raise load_error(self.name, path, e) from e
        self.providers = self.session.get_providers()
        self.inputs = [_info(i) for i in self.session.get_inputs()]
        self.outputs = [_info(o) for o in self.session.get_outputs()]
        self._names = [i.name for i in self.inputs]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._names, feeds)))

    def describe(self) -> str:
        return f"{self.name} {self.version()} ({', '.join(p.replace('ExecutionProvider', '') for p in self.providers)})"


def _info(t) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) else None for d in t.shape)
    return TensorInfo(t.name, shape, np.dtype(_DTYPES.get(t.type, np.float32)))
