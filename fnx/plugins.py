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
