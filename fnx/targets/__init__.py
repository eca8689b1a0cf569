"""Deployment targets: one package per target, holding everything about it. Torch-free.

A target package `fnx.targets.NAME` (or a module another distribution names in the `fnx.targets` entry point group)
registers its file facts (`fnx.formats.FileFormat`) when imported; its optional submodules register the rest:

- `export`: its `ArtifactFormat` (float export, int8 path, how its layers are read, the options it accepts, its install
  extra) — imported by the exporter;
- `engine`: the `Engine`(s) that run its files — imported by the runtime, so it never imports torch unless the engine
  itself needs it (and says so);
- `toolchain`: its pinned converter environment (`fnx.toolchains`), where its converter's pins conflict with fnx's.

Importing the runtime loads the engines only; the exporter loads the exports. A single module (a plugin's) may
register everything at once: then it has no submodules to import.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings

BUILTIN = ("onnx", "openvino", "tflite", "ethos_u", "ncnn", "executorch", "rknn", "imx500")  # fnx's own targets (a format's own engines are preferred: fnx.runtime.engines)
GROUP = "fnx.targets"  # entry points naming another distribution's target package or module
PARTS = ("export", "engine", "toolchain")
_loaded: dict[str, bool] = {}  # part ("" for the packages themselves) -> loaded
_failed: set[str] = set()  # plugin modules that could not be imported (said once, then left out)


def _packages() -> list[tuple[str, str, bool]]:
    """Return (name, module, builtin) for fnx's own targets, then for other distributions' entry points."""
    from importlib.metadata import entry_points

    found = [(name, f"fnx.targets.{name}", True) for name in BUILTIN]
    return found + [(ep.name, ep.value, False) for ep in entry_points(group=GROUP) if ep.name not in BUILTIN]


def load(part: str = "") -> None:
    """Import, once, every target's package (part "") or its submodule part ("export", "engine", "toolchain").

    A plugin's that fails to import is left out with a warning naming it, so a broken plugin never stops fnx's own
    targets; fnx's own failing is a bug and raises.
    """
    if _loaded.get(part):
        return
    _loaded[part] = True
    if part:
        load("")
    for name, module, builtin in _packages():
        if module in _failed:
            continue
        target = f"{module}.{part}" if part else module
        try:
            if part and (importlib.util.find_spec(module).submodule_search_locations is None
                         or importlib.util.find_spec(target) is None):
                continue  # a single-module plugin registered everything on import, or the target has no such part
            importlib.import_module(target)
        except Exception as e:  # noqa: BLE001 - a third party's import error, said and skipped
            if builtin:
                raise
            _failed.add(module)
            warnings.warn(f"fnx target {name!r} ({target}, from the {GROUP} entry points) could not be loaded and is "
                          f"left out: {type(e).__name__}: {e}", stacklevel=2)


def in_target_order(registry: dict, module_of=lambda entry: entry.__module__) -> None:
    """Reorder a registry in place: fnx's own targets' entries in BUILTIN order, then the others as registered. Its
    order is what users see (--format choices, suffix lists) and decides between claims (.tflite: tflite before
    ethos-u), so it must not depend on which module a process happened to import first."""
    def rank(item: tuple) -> int:
        name, entry = item
        parts = str(module_of(entry)).split(".")
        package = parts[2] if parts[:2] == ["fnx", "targets"] and len(parts) > 2 else str(name).replace("-", "_")
        return BUILTIN.index(package) if package in BUILTIN else len(BUILTIN)

    ordered = sorted(registry.items(), key=rank)  # stable: entries of one target, and the others, keep their order
    registry.clear()
    registry.update(ordered)
