"""OpenVINO: runs OpenVINO IR (.xml + .bin) and fnx's ONNX files on the CPU, with an explicit inference precision.

OpenVINO's own default on CPUs with bf16 (AMX, AVX-512 BF16) computes an fp32 model in bf16. fnx asks for
f32 unless told otherwise (`inference_precision="bf16"`, `--inference-precision bf16`), so that a result
is what the artifact computes; bf16/f16 are opt-in, with their own parity bounds (fnx.parity). The precision
reported (`precision`) is the one read back from the compiled model: a plugin that ignores a hint says so.
FNX_CPU_FEATURES (fnx.cpu_features) hides bf16/f16 from the plugin's capabilities, or offers them for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx import cpu_features
from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.runtime.engines.base import Engine, TensorInfo, dist_version, load_error, register_engine
from fnx.runtime.placement import Placement
from fnx.targets.openvino import env as openvino_env

CAPABILITY = {"bf16": "BF16", "f16": "FP16"}  # the CPU plugin's OPTIMIZATION_CAPABILITIES entry each hint needs


@register_engine
class OpenVino(Engine):
    """An OpenVINO compiled model on the CPU plugin, latency hint, one infer request."""

    name: ClassVar[str] = "openvino"
    aliases: ClassVar[tuple[str, ...]] = ("ov",)
    formats: ClassVar[tuple[str, ...]] = ("openvino", "onnx")
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    modules: ClassVar[tuple[str, ...]] = ("openvino",)
    install: ClassVar[str] = f"{pip_install('openvino')} (or pip install openvino)"
    inference_precisions: ClassVar[tuple[str, ...]] = ("f32", "bf16", "f16")

    @staticmethod
    def precisions_here() -> list[str]:
        return supported_precisions()

    @classmethod
    def available(cls) -> bool:
        import importlib.util

        return importlib.util.find_spec("openvino") is not None

    @classmethod
    def version(cls) -> str:
        return dist_version("openvino")

    def __init__(self, path: Path, placement: Placement):
        ov = openvino_env.openvino()

        core = ov.Core()
        self.requested_precision = placement.inference_precision or "f32"
        capabilities = supported_precisions(core)
        if self.requested_precision not in capabilities:
            raise FnxError(f"this CPU cannot compute in {self.requested_precision} under OpenVINO (its CPU plugin "
                           f"offers {', '.join(capabilities)}): use --inference-precision f32")
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.requested_precision}
        if placement.threads:
            config["INFERENCE_NUM_THREADS"] = placement.threads
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as e:  # noqa: BLE001  OpenVINO raises RuntimeError for every load failure
            raise load_error(self.name, path, e) from e
        self.precision = _computed_precision(self.compiled, self.requested_precision)
        self.request = self.compiled.create_infer_request()
        self.inputs = [_info(p) for p in self.compiled.inputs]
        self.outputs = [_info(p) for p in self.compiled.outputs]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        self.request.infer({i: np.ascontiguousarray(x) for i, x in enumerate(feeds)})
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.outputs))]

    def describe(self) -> str:
        if self.precision != self.requested_precision:
            return f"{self.name} {self.version()} (CPU, {self.precision}; {self.requested_precision} was asked for)"
        return f"{self.name} {self.version()} (CPU, {self.precision})"


def supported_precisions(core=None) -> list[str]:
    """Return the inference precisions this machine's OpenVINO CPU plugin can compute in (f32 always)."""
    if core is None:
        ov = openvino_env.openvino()

        core = ov.Core()
    caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ["f32", *cpu_features.apply((hint for hint, cap in CAPABILITY.items() if cap in caps), among=CAPABILITY)]


def _computed_precision(compiled, requested: str) -> str:
    """Return the inference precision the compiled model reports (OpenVINO's own name: f32, bf16, f16)."""
    try:
        return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    except Exception:  # noqa: BLE001  a plugin without the property: what was asked for is all we know
        return requested


def _info(port) -> TensorInfo:
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    name = next(iter(port.get_names()), "") if port.get_names() else ""
    return TensorInfo(name, shape, np.dtype(port.get_element_type().to_dtype()))
