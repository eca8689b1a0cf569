"""ONNX Runtime: the CPU, CUDA and TensorRT execution providers, chosen from the placement.

On CUDA, fp32 artifacts compute in fp32: TF32 (ONNX Runtime's `use_tf32`, on by default on Ampere and later)
is turned off, so that `fnx verify` holds fp32's bounds there too; an fp16 artifact is the fast path on a GPU
(with NHWC convolutions, which only fp16 gains from).
An explicit `--device cuda|tensorrt` fails when ONNX Runtime falls back to a slower provider (its libraries did
not load) instead of running on the CPU unnoticed.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

from fnx.errors import FnxError
from fnx.install import pip_install
from fnx.runtime.engines.base import Engine, TensorInfo, dist_version, load_error, register_engine
from fnx.runtime.placement import Placement

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
# What each accelerator needs when ONNX Runtime lists it but cannot start it.
NEEDS = {
    "CUDAExecutionProvider": "the CUDA and cuDNN 9 libraries of onnxruntime-gpu's CUDA major version "
                             "(pip install 'onnxruntime-gpu[cuda,cudnn]')",
    "TensorrtExecutionProvider": "TensorRT's libraries (pip install tensorrt-cu12 or tensorrt-cu13, the CUDA major "
                                 "version of your onnxruntime-gpu), beside CUDA's",
}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
           "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}


@register_engine
class OnnxRuntime(Engine):
    """An ONNX Runtime InferenceSession."""

    name: ClassVar[str] = "onnxruntime"
    aliases: ClassVar[tuple[str, ...]] = ("ort", "onnx-runtime")
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda", "tensorrt")
    modules: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    concurrent_runs: ClassVar[bool] = True  # InferenceSession.run is thread-safe
    install: ClassVar[str] = f"pip install onnxruntime (or {pip_install('onnx-runtime')}; onnxruntime-gpu for CUDA)"

    @classmethod
    def available(cls) -> bool:
        import importlib.util

        return importlib.util.find_spec("onnxruntime") is not None

    @classmethod
    def offers(cls, kind: str) -> bool:
        """Whether ONNX Runtime here lists kind's provider (listed is not yet loadable: a session checks that)."""
        import onnxruntime as ort

        return PROVIDERS[kind][0] in ort.get_available_providers()

    @classmethod
    def version(cls) -> str:
        return dist_version("onnxruntime") if dist_version("onnxruntime") != "unknown" else dist_version("onnxruntime-gpu")

    def __init__(self, path: Path, placement: Placement):
        import onnxruntime as ort

        self.placement = placement
        available = ort.get_available_providers()
        wanted = PROVIDERS[placement.kind]
        accelerators = [p for p in wanted if p != "CPUExecutionProvider"]
        instead = "cuda" if placement.kind == "tensorrt" and "CUDAExecutionProvider" in available else "cpu"
        if accelerators and placement.strict and wanted[0] not in available:
            raise FnxError(f"ONNX Runtime here offers {', '.join(available)}, not {wanted[0]}: install onnxruntime-gpu "
                           f"(pip install 'onnxruntime-gpu[cuda,cudnn]', with a matching CUDA) or run with --device "
                           f"{instead}")
        opts = ort.SessionOptions()
        if placement.threads:
            opts.intra_op_num_threads = placement.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        chain = [p for p in wanted if p in available]
        if any(p in available for p in accelerators):
            _preload_gpu_libraries(ort)
        cuda = _cuda_options(ort.__version__, nhwc=_precision(path) == "fp16")
        while True:  # fnx's own fall-back: ONNX Runtime's drops the provider options (TF32 back on) and prints on stdout
            try:
                self.session = _start(ort, path, opts, chain, cuda)
                break
            except (RuntimeError, ValueError) as e:
                if chain[0] == "CPUExecutionProvider":
                    raise load_error(self.name, path, e) from e
                if placement.strict:
                    try:  # a bad file is reported as a bad file, not as a provider that would not start
                        _start(ort, path, opts, ["CPUExecutionProvider"], cuda)
                    except Exception as bad:
                        raise load_error(self.name, path, bad) from bad
                    raise self._not_started(chain[0], None, instead) from e
                chain = chain[1:]  # --device auto: the next provider will do
            except Exception as e:
                raise load_error(self.name, path, e) from e
        self.session.disable_fallback()  # a provider failing mid-run raises; ONNX Runtime would switch silently
        self.providers = self.session.get_providers()
        if placement.strict and accelerators and wanted[0] not in self.providers:
            raise self._not_started(wanted[0], self.providers, instead)
        self.inputs = [_info(i) for i in self.session.get_inputs()]
        self.outputs = [_info(o) for o in self.session.get_outputs()]
        self._names = [i.name for i in self.inputs]

    @staticmethod
    def _not_started(provider: str, running: list[str] | None, instead: str) -> FnxError:
        fell = f" (it fell back to {', '.join(running)})" if running else ""
        return FnxError(f"ONNX Runtime lists {provider} but could not start it here{fell}: install {NEEDS[provider]}, "
                        f"or run with --device {instead}")

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._names, feeds)))

    def embedded_metadata(self) -> dict[str, str]:
        """Return the model's metadata_props (where fnx embeds the manifest), read by the session already open."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def describe(self) -> str:
        return f"{self.name} {self.version()} ({', '.join(p.replace('ExecutionProvider', '') for p in self.providers)})"


def _start(ort, path: Path, opts, chain: list[str], cuda: dict[str, str]):
    """Return an InferenceSession on the providers in chain (CUDA's with fnx's options), ONNX Runtime's own
    fall-back off; anything it prints goes to stderr, so stdout stays for results (--json)."""
    options = [cuda if p == "CUDAExecutionProvider" else {} for p in chain]
    with contextlib.redirect_stdout(sys.stderr):
        return ort.InferenceSession(str(path), opts, providers=chain, provider_options=options, enable_fallback=0)


def _cuda_options(version: str, nhwc: bool) -> dict[str, str]:
    """Return the CUDA provider's options: no TF32 (fp32 stays fp32; ONNX Runtime >= 1.18 has the switch) and, for
    fp16 artifacts, NHWC convolutions (>= 1.20). Measured on an H100 (docs/BENCHMARKS.md): NHWC made fp16 T0/T2
    1.4x faster at batch 1 and 1.2-1.3x at 64, but fp32 up to 1.3x slower, so fp32 keeps NCHW."""
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    options = {}
    if major_minor >= (1, 18):
        options["use_tf32"] = "0"
    if nhwc and major_minor >= (1, 20):
        options["prefer_nhwc"] = "1"
    return options


def _precision(path: Path) -> str | None:
    """Return the artifact's precision from its manifest (None without one; a bad one is the Session's to report)."""
    from fnx.manifest import read_manifest

    try:
        manifest = read_manifest(path)
    except FnxError:
        return None
    return manifest.artifact.precision if manifest else None


def _preload_gpu_libraries(ort) -> None:
    """Load CUDA/cuDNN from NVIDIA's pip packages where they are installed (onnxruntime-gpu >= 1.21 can)."""
    import importlib.util

    if hasattr(ort, "preload_dlls") and importlib.util.find_spec("nvidia") is not None:
        try:
            ort.preload_dlls(cuda=True, cudnn=True, msvc=False)
        except Exception:  # noqa: BLE001 - the session's own provider check below says what is missing
            pass


def _info(t) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) else None for d in t.shape)
    return TensorInfo(t.name, shape, np.dtype(_DTYPES.get(t.type, np.float32)))
