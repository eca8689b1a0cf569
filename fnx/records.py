"""Typed JSON records: dataclasses that read and write themselves as plain dicts, strictly.

`Record.from_dict` refuses a missing required field, an unknown field or a value of the wrong
type, naming the field's path (`calibration.report.cosine_min`), so a damaged manifest is caught
when it is read, not three calls later. `to_dict` writes every field, so what fnx writes reads
back equal: `Cls.from_dict(d).to_dict() == d`. Torch-free (the runtime reads manifests).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

from fnx.errors import FnxError

R = TypeVar("R", bound="Record")


class RecordError(FnxError):
    """A dict does not fit its record type; the message names the field."""


class Record:
    """Mixin for dataclasses stored as JSON: exact `to_dict` / strict `from_dict`."""

    # Keys written by to_dict that are derived, not fields (e.g. ParityReport.passed): accepted and dropped on read.
    DERIVED: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-ready data (nested records as dicts, tuples as lists)."""
        out = {f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for key in self.DERIVED:
            out[key] = _dump(getattr(self, key))
        return out

    @classmethod
    def from_dict(cls: type[R], data: Any, path: str = "") -> R:
        """Return the record read from data; RecordError names the first field that does not fit."""
        return _load(cls, data, path or cls.__name__)


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)  # each class's annotations resolved in its own module


def _load(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _load(option, value, path)
            except RecordError as e:
                errors.append(str(e))
        raise RecordError(errors[0] if len(errors) == 1 else f"{path}: {value!r} fits none of {tp}")
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Record):
        return _load_record(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise RecordError(f"{path}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item = args[0] if args else Any
        loaded = [_load(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(loaded) if origin is tuple else loaded
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{path}: expected an object, got {type(value).__name__}")
        _, item = get_args(tp) or (str, Any)
        return {k: _load(item, v, f"{path}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"{path}: expected a number, got {value!r}")
        return value
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise RecordError(f"{path}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def _load_record(cls: type[R], data: Any, path: str) -> R:
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields and k not in cls.DERIVED]
    if unknown:
        raise RecordError(f"{path}: unknown field {unknown[0]!r} (written by a newer fnx?)")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _load(hints[name], data[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{path}: required field {name!r} is missing")
    return cls(**kwargs)
