"""ExecuTorch's runtime: runs a .pte program (its XNNPACK delegate) on the CPU. It imports torch and takes torch
tensors, so this engine needs torch on the device (`needs_torch`); torch is imported when a program is opened.

A .pte runs only on the ExecuTorch version that wrote it (another one fails as if the file were corrupt): the
manifest records the exporter's version, and a program from another version is refused naming both.
It opens programs through ExecuTorch's bindings (`executorch.extension.pybindings._C`, what `executorch.runtime`
wraps): the wrapper imports ExecuTorch's exporter too, 6-14 s here, where the bindings load in milliseconds.
ExecuTorch's threadpool is one per process: setting it replaces it under every program loaded before, so each
engine notes the pool it loaded its method against and loads it again when another engine has replaced the pool.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.quiet import silenced
from fnx.runtime.engines.base import Engine, TensorInfo, dist_version, register_engine
from fnx.runtime.placement import Placement

# ExecuTorch's ScalarType codes of the tensors a fnx program takes or gives
DTYPES = {0: np.uint8, 1: np.int8, 3: np.int32, 4: np.int64, 5: np.float16, 6: np.float32}
_POOL = {"generation": 0}  # bumped whenever an engine replaces ExecuTorch's process-wide threadpool


@register_engine
class ExecuTorchEngine(Engine):
    """An ExecuTorch program's `forward` method, on the XNNPACK delegate's threadpool."""

    name: ClassVar[str] = "executorch"
    aliases: ClassVar[tuple[str, ...]] = ("et", "pte")
    formats: ClassVar[tuple[str, ...]] = ("executorch",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    modules: ClassVar[tuple[str, ...]] = ("executorch",)
    needs_torch: ClassVar[bool] = True
    install: ClassVar[str] = f"{pip_install('executorch')} (ExecuTorch's runtime; it needs torch on the device too)"

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("executorch") is not None and importlib.util.find_spec("torch") is not None

    @classmethod
    def version(cls) -> str:
        return dist_version("executorch")

    def __init__(self, path: Path, placement: Placement):
        if placement.kind != "cpu" and placement.strict:
            raise FnxError(f"{self.name} runs .pte programs on the CPU (XNNPACK) only, not {placement.kind}: use "
                           f"--device cpu, or an ONNX export with ONNX Runtime for the GPU")
        check_version(path, self.version())
        self.path, self.placement = Path(path), placement
        self._load()
        meta = self.method.method_meta()
        self.inputs = [_info("input", meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
        self.outputs = [_info(f"output_{i}", meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]

    def _load(self) -> None:
        """Load the program's forward method against the threadpool this engine's placement asks for."""
        bindings = _bindings()
        try:
            with silenced():  # cpuinfo, the threadpool and a bad file's reasons log to stderr
                threads = self.placement.threads
                if threads and bindings._threadpool_get_thread_count() != threads:
                    bindings._unsafe_reset_threadpool(threads)
                    _POOL["generation"] += 1
                self.method = bindings._load_program(str(self.path)).load_method("forward")
        except (RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise FnxError(f"{self.name} {self.version()} cannot load {self.path} ({first}): the file is corrupt, "
                           f"truncated or written by another ExecuTorch version; re-export it") from e
        self._generation = _POOL["generation"]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        if self._generation != _POOL["generation"]:  # another engine replaced the threadpool this method runs on
            self._load()
        outs = self.method.call([torch.from_numpy(np.ascontiguousarray(f)) for f in feeds])  # outputs cloned
        return [o.numpy() for o in outs]

    def describe(self) -> str:
        return f"{self.name} {self.version()} (XNNPACK, CPU, {_bindings()._threadpool_get_thread_count()} threads)"


def _bindings():
    """Return ExecuTorch's runtime bindings (torch first: they link against its libraries)."""
    import torch  # noqa: F401

    from executorch.extension.pybindings import _C

    return _C


def check_version(path: Path, here: str) -> None:
    """FnxError, in one line naming both, when the manifest says another ExecuTorch version wrote the program."""
    from fnx.manifest import read_manifest

    try:
        manifest = read_manifest(path)
    except FnxError:
        return  # a damaged manifest is the Session's to report
    made = manifest.converter.get("executorch") if manifest else None
    if made and made != here:
        raise FnxError(f"{Path(path).name} was written by ExecuTorch {made} and this is ExecuTorch {here}: a .pte runs "
                       f"only on the version that wrote it; pip install executorch=={made}, or re-export it here")


def _info(name: str, meta) -> TensorInfo:
    return TensorInfo(name, tuple(int(d) for d in meta.sizes()), np.dtype(DTYPES.get(meta.dtype(), np.float32)))
