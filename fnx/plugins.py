"""What registering a plugin (a format, an engine) checks: the protocol's required members are there, and the optional
ones get their defaults, so the rest of fnx reads every member directly. Torch-free."""

from __future__ import annotations

from typing import Any


def complete_plugin(cls: type, protocol: str, required: tuple[str, ...], optional: dict[str, Any]) -> type:
    """Return cls with optional members defaulted; TypeError naming what is missing of the protocol."""
    missing = [m for m in required if not hasattr(cls, m)]
    if missing:
        raise TypeError(f"{getattr(cls, '__name__', cls)!r} lacks {', '.join(missing)} (fnx's {protocol} protocol)")
    for member, default in optional.items():
        if not hasattr(cls, member):
            setattr(cls, member, default)
    return cls


TARGETS_GROUP = "fnx.targets"  # entry points naming a module that registers a target (file format, converter, engine)
_targets_loaded = False


def load_targets() -> None:
    """Import, once, every module a distribution names under the `fnx.targets` entry point group: each registers its
    target's FileFormat, ArtifactFormat and Engine as fnx's own targets do. One that fails to load is skipped with a
    warning naming it, so a broken plugin never stops fnx's own targets."""
    global _targets_loaded
    if _targets_loaded:
        return
    _targets_loaded = True
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group=TARGETS_GROUP):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a third party's import error, said and skipped
            warnings.warn(f"fnx target {ep.name!r} ({ep.value}, from the {TARGETS_GROUP} entry points) could not be "
                          f"loaded and is left out: {type(e).__name__}: {e}", stacklevel=2)
