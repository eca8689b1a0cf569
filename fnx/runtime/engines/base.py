"""The Engine base class, the ENGINES registry and `open_engine`: which engine runs which artifact where."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from fnx.errors import FnxError
from fnx.formats import detect_format, get_file_format
from fnx.targets import in_target_order
from fnx.runtime.placement import Placement


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

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Return float x as this tensor's engine dtype (quantized with its scale and zero point when int8)."""
        if not self.quantized:
            return np.ascontiguousarray(x, dtype=self.dtype)
        q = np.round(np.asarray(x, dtype=np.float32) / self.scale) + self.zero_point
        info = np.iinfo(self.dtype)
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Return an engine output of this tensor as float32 (dequantized when int8)."""
        if self.quantized:
            return (raw.astype(np.float32) - self.zero_point) * np.float32(self.scale)
        return raw.astype(np.float32, copy=False)


class Engine:
    """An inference engine for one artifact. The class says what it can run; an instance runs one file.

    Subclasses set the facts (name, formats, devices, install) and implement `available`, `version`, `__init__`,
    `run` and `describe`; the base class carries every other default. `run` takes and gives the engine's raw tensors
    (its dtypes, its fixed batch): the Session quantizes, pads and chunks around it.
    """

    name: ClassVar[str]  # registry key, e.g. "litert"
    formats: ClassVar[tuple[str, ...]]  # fnx.formats names it runs
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # placement kinds it serves ("cpu", "cuda", "tensorrt")
    install: ClassVar[str]  # how to get it, for error messages
    aliases: ClassVar[tuple[str, ...]] = ()
    inference_precisions: ClassVar[tuple[str, ...]] = ()  # internal compute precisions it can be asked for
    offers: ClassVar[Callable[[str], bool] | None] = None  # whether an accelerator kind in devices can start here
    modules: ClassVar[tuple[str, ...]] = ()  # top-level modules it imports (a missing one: `install` says what to do)
    needs_torch: ClassVar[bool] = False  # whether it imports torch on the device (ExecuTorch's runtime does)
    # the inference precisions it computes in on this CPU (after FNX_CPU_FEATURES); None: its own only
    precisions_here: ClassVar[Callable[[], list[str]] | None] = None
    # whether one instance may `run` from several threads at once (ONNX Runtime: yes; LiteRT: no, its interpreter
    # holds the tensors of the call in progress). False: the Session lets one thread in at a time.
    concurrent_runs: ClassVar[bool] = False
    # engines with the same `kernels` run the same code (LiteRT, tflite-runtime, tf.lite): `fnx bench all` times only
    # the first installed of them; None: its own
    kernels: ClassVar[str | None] = None
    # embedded_metadata() -> dict[str, str]: the file's own key/value metadata as the engine read it (ONNX Runtime:
    # metadata_props), where a manifest may be embedded; the Session asks when no manifest was found. None: it has none
    embedded_metadata: ClassVar[Callable[..., dict[str, str]] | None] = None

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    @classmethod
    def available(cls) -> bool:
        """Whether it can run here (its package installed); the import itself waits for `__init__`."""
        raise NotImplementedError

    @classmethod
    def version(cls) -> str:
        """Its distribution's version (dist_version)."""
        raise NotImplementedError

    def __init__(self, path: Path, placement: Placement) -> None:
        raise NotImplementedError

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run one batch of raw input tensors; return its raw outputs."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line: engine, version, placement and threads as it runs."""
        raise NotImplementedError


ENGINES: dict[str, type[Engine]] = {}
REQUIRED_FACTS = ("name", "formats", "install")
REQUIRED_METHODS = ("available", "version", "__init__", "run", "describe")


def register_engine(engine: type[Engine]) -> type[Engine]:
    """Add an engine class to the registry; returns it. Preference (`engine_for`): a format's own engines first, then
    registration order. TypeError for a class that is not an Engine, lacks one of its facts or leaves one of its
    methods to the base class."""
    if not (isinstance(engine, type) and issubclass(engine, Engine)):
        raise TypeError(f"{engine!r} is not an Engine subclass (fnx.runtime.engines.Engine)")
    missing = [m for m in REQUIRED_FACTS if not hasattr(engine, m)]
    missing += [m for m in REQUIRED_METHODS if not any(m in c.__dict__ for c in engine.__mro__[:engine.__mro__.index(Engine)])]
    if missing:
        raise TypeError(f"{engine.__name__!r} lacks {', '.join(missing)} (fnx's Engine)")
    ENGINES[engine.name] = engine
    in_target_order(ENGINES)
    return engine


def get_engine(name: str) -> type[Engine]:
    """Return the engine class called name (or one of its aliases)."""
    key = name.strip().lower()
    for e in ENGINES.values():
        if key == e.name or key in e.aliases:
            return e
    raise FnxError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")


def dist_version(dist: str) -> str:
    """Return an installed distribution's version, or "unknown"."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def engine_for(fmt: str, placement: Placement, name: str | None = None) -> type[Engine]:
    """Return the engine class to run format fmt at placement: the named one, else the first available."""
    if name:
        engine = get_engine(name)
        if fmt not in engine.formats:
            raise FnxError(f"engine {engine.name} runs {', '.join(engine.formats)} artifacts, not {fmt}")
        if not engine.available():
            raise FnxError(f"engine {engine.name} is not installed here: {engine.install}")
        return engine
    # an engine's first format is its own: a format's own engines come before those that also run it (OpenVINO: ONNX)
    candidates = sorted((e for e in ENGINES.values() if fmt in e.formats), key=lambda e: e.formats[0] != fmt)
    if not candidates:
        runs_on = get_file_format(fmt).runs_on
        raise FnxError(f"fnx has no engine for {fmt} artifacts: they run on {runs_on}" if runs_on else
                       f"no engine is registered for {fmt} artifacts")
    placed = [e for e in candidates if placement.kind in e.devices] or ([] if placement.strict else candidates)
    if not placed:
        raise FnxError(f"no engine runs {fmt} artifacts on {placement.kind} ({', '.join(e.name for e in candidates)} "
                       f"serve {', '.join(sorted({d for e in candidates for d in e.devices}))}): use --device cpu, or "
                       f"export another format")
    for engine in placed:
        if engine.available():
            return engine
    hints = "; or ".join(e.install for e in placed)
    raise FnxError(f"no engine for {fmt} artifacts is installed: {hints}")


def check_engine_fits(paths, engine: str | None) -> None:
    """Raise FnxError, before anything runs, if a forced engine cannot run one of the artifacts (by their formats)."""
    for path in paths:
        fmt = detect_format(path)
        if engine:
            cls = get_engine(engine)
            if fmt.name not in cls.formats:
                raise FnxError(f"engine {cls.name} runs {', '.join(cls.formats)} artifacts, not {fmt.name} "
                               f"({Path(path).name}); drop --engine or pass artifacts of one format")


def open_engine(path: str | Path, placement: Placement | None = None, engine: str | None = None) -> Engine:
    """Return an engine instance running the model file at path; FnxError for a missing, bad or unrunnable file."""
    path = Path(path)
    fmt = detect_format(path)
    placement = placement or Placement()
    cls = engine_for(fmt.name, placement, engine)
    if placement.inference_precision not in (None, "f32") and placement.inference_precision not in cls.inference_precisions:
        takers = [e.name for e in ENGINES.values() if placement.inference_precision in e.inference_precisions]
        raise FnxError(f"engine {cls.name} computes in the artifact's own precision: --inference-precision "
                       f"{placement.inference_precision} needs {' or '.join(takers) or 'another engine'} (--engine)")
    return cls(path, placement)


def load_error(engine: str, path: Path, error: BaseException) -> FnxError:
    """Return the FnxError for a file an engine could not load (its own message's first line kept)."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return FnxError(f"{engine} cannot load {path} ({first}): the file is corrupt, truncated or not a model of its "
                    f"format; re-export it")
