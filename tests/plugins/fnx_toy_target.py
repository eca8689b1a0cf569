"""A deployment target from outside fnx: registered through the `fnx.targets` entry point group of its own
distribution (tests/test_targets_plugin.py writes that distribution's metadata), with no edit under fnx/.

The target: the deploy-form model traced to TorchScript (`.toyscript`, a zip), run by torch.jit on the CPU."""

from __future__ import annotations

import numpy as np

from fnx.exporter.formats import register_format
from fnx.formats import FileFormat, register_file_format
from fnx.runtime.engines import register_engine
from fnx.runtime.engines.base import TensorInfo
from fnx.toolchains import Toolchain, register_toolchain

# Its converter needs nothing beyond fnx's own environment; the toolchain is here to show a plugin declaring one.
register_toolchain(Toolchain("toyscript", "the toy target's converter (an empty environment)", ()))

FILE = register_file_format(FileFormat("toyscript", ".toyscript", "NCHW", "TorchScript module (toy target)",
                                       sniff=lambda head: head[:2] == b"PK"))


@register_format
class ToyScriptFormat:
    name, file, pconv_form, converters, requires = "toyscript", FILE, "split_cat", ("torch",), ("torch",)

    def check(self, opts) -> None:
        pass

    def export_float(self, model, path, built, opts) -> None:
        import torch

        x = torch.zeros(opts.batch, built.model.in_chans, built.img_size, built.img_size)
        torch.jit.save(torch.jit.trace(model, x), str(path))

    def int8_quantizer(self, model, built, opts, data, work):
        raise NotImplementedError("the toy target has no int8")


@register_engine
class ToyScriptEngine:
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
