"""The toy target's engine: torch.jit.load on the CPU."""

from __future__ import annotations

import numpy as np

from fnx.runtime.engines.base import Engine, TensorInfo, register_engine


@register_engine
class ToyScriptEngine(Engine):
    name, formats, devices, install, modules = "toyscript", ("toyscript",), ("cpu",), "pip install torch", ("torch",)

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def version(cls) -> str:
        import torch

        return torch.__version__

    def __init__(self, path, placement) -> None:
        import torch

        self.module = torch.jit.load(str(path))
        size = int(path.stem.split("_")[2])  # fnx's artifact name: fasternet_t0_64_toyscript_fp32
        classes = self.module(torch.zeros(1, 3, size, size)).shape[1]
        self.inputs = [TensorInfo("input", (1, 3, size, size), np.dtype(np.float32))]
        self.outputs = [TensorInfo("logits", (1, classes), np.dtype(np.float32))]

    def run(self, feeds):
        import torch

        with torch.no_grad():
            return [self.module(torch.from_numpy(feeds[0])).numpy()]

    def describe(self) -> str:
        return f"{self.name} {self.version()}"
