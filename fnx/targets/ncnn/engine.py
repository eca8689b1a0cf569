"""ncnn: runs fnx's .param + .bin files on the CPU through ncnn's own Python wheel (no torch).

ncnn bundles its own OpenMP runtime, whose idle threads spin by default: with other work on the cores, a
multi-threaded ncnn stalled here (16 T2 images in 4.6-16.8 s instead of 0.11 s). The engine sets
OMP_WAIT_POLICY=PASSIVE before ncnn is first imported (a value the user set is kept).

fnx asks ncnn for fp32 arithmetic and storage, so a result is what the file computes (ncnn's own default stores
activations in fp16 where the CPU can); `--inference-precision f16` turns ncnn's fp16 storage and arithmetic on.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx import cpu_features
from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.runtime.engines.base import Engine, TensorInfo, dist_version, load_error, register_engine
from fnx.runtime.placement import Placement
from fnx.targets.ncnn.graph import WEIGHTED, input_shape, read_layers

FP16_OPTIONS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic")


def ncnn_module():
    """Import ncnn with its OpenMP threads sleeping when idle (OMP_WAIT_POLICY=PASSIVE, unless set already)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ncnn

    return ncnn


def open_net(path: Path, threads: int | None, fp16: bool = False):
    """Return an ncnn.Net loaded from path (.param) and its .bin; FnxError naming what is wrong."""
    ncnn = ncnn_module()
    weights = Path(path).with_suffix(".bin")  # the Session has checked it is there (FileFormat.companions)
    net = ncnn.Net()
    for option in FP16_OPTIONS:
        setattr(net.opt, option, fp16)
    if threads is None:
        from fnx.devices import cpu_count

        threads = cpu_count()  # the CPUs this process may run on (taskset, cpusets), as the other engines take
    net.opt.num_threads = threads
    if net.load_param(str(path)) != 0:
        raise load_error("ncnn", Path(path), RuntimeError("ncnn could not parse the .param file"))
    if net.load_model(str(weights)) != 0:
        raise load_error("ncnn", Path(path), RuntimeError(f"ncnn could not read {weights.name}: missing or truncated"))
    return net


def extract(net, input_name: str, image_chw: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Run one CHW image; return the named blobs as float32 arrays (copied out of ncnn's memory)."""
    ncnn = ncnn_module()
    x = np.ascontiguousarray(image_chw, dtype=np.float32)  # held here: ncnn.Mat wraps, not copies, its memory
    with net.create_extractor() as ex:
        ex.input(input_name, ncnn.Mat(x))
        found = []
        for name in names:
            rc, mat = ex.extract(name)
            if rc != 0:
                raise FnxError(f"ncnn could not compute {name!r} (error {rc}): re-export the model")
            found.append(np.array(mat, dtype=np.float32))
    return found


def blob_outputs(path: Path, batch_nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Return {layer name: its output for the batch} of every conv/linear layer of an ncnn file (`fnx verify
    --layers`): ncnn keeps every intermediate blob an extractor asks for."""
    layers = read_layers(path)
    wanted = [x for x in layers if x.type in WEIGHTED]
    net = open_net(path, threads=None)
    first = next(x.outputs[0] for x in layers if x.type == "Input")
    per_image = [extract(net, first, img, [x.outputs[0] for x in wanted]) for img in batch_nchw]
    return {x.name: np.stack([found[i] for found in per_image]) for i, x in enumerate(wanted)}


@register_engine
class Ncnn(Engine):
    """An ncnn Net on the CPU: one extractor per image, its OpenMP threads passive when idle."""

    name: ClassVar[str] = "ncnn"
    formats: ClassVar[tuple[str, ...]] = ("ncnn",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    modules: ClassVar[tuple[str, ...]] = ("ncnn",)
    install: ClassVar[str] = f"{pip_install('ncnn')} (or pip install ncnn)"
    inference_precisions: ClassVar[tuple[str, ...]] = ("f32", "f16")

    @staticmethod
    def precisions_here() -> list[str]:
        """f32, and f16 where the CPU computes in fp16 (ARMv8.2 asimdhp: a Pi 5's A76, not a Pi 4's A72)."""
        fp16 = ncnn_module().cpu_support_arm_asimdhp()
        return ["f32", *cpu_features.apply(["f16"] if fp16 else [], among=("f16",))]

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("ncnn") is not None

    @classmethod
    def version(cls) -> str:
        return dist_version("ncnn")

    def __init__(self, path: Path, placement: Placement):
        if placement.kind != "cpu" and placement.strict:
            raise FnxError(f"fnx runs ncnn models on the CPU only, not {placement.kind} (ncnn's Vulkan build is not "
                           f"the pip wheel's): use --device cpu")
        self.precision = placement.inference_precision or "f32"
        self.threads = placement.threads
        layers = read_layers(path)
        chans, height, width = input_shape(layers)
        self.net = open_net(path, placement.threads, fp16=self.precision == "f16")
        self._in = list(self.net.input_names())
        self._out = list(self.net.output_names())
        self.inputs = [TensorInfo(self._in[0], (1, chans, height, width), np.dtype(np.float32))]
        probe = extract(self.net, self._in[0], np.zeros((chans, height, width), np.float32), self._out)
        self.outputs = [TensorInfo(n, (1, *o.shape), np.dtype(np.float32)) for n, o in zip(self._out, probe)]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        outs = extract(self.net, self._in[0], feeds[0][0], self._out)
        return [o[None] for o in outs]

    def describe(self) -> str:
        threads = self.threads or self.net.opt.num_threads
        return f"{self.name} {self.version()} (CPU, {self.precision}, {threads} thread{'s' * (threads != 1)})"
