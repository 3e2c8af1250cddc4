"""Dataclass configs with YAML loading that rejects unknown keys and wrong types."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from instructgen.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any], *, source: str = "config") -> T:
    """Build dataclass `cls` from `values`; unknown keys and mistyped values raise ConfigError."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"expected a mapping of keys to values, got {type(values).__name__}", file=source
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(fields))}",
            file=source,
            field=unknown[0],
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], source, k) for k, v in values.items()})


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping; a missing or malformed file raises ConfigError."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", file=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            file=str(path),
            line=mark.line + 1 if mark else None,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=str(path))
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _coerce(value: Any, hint: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, source, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(
                f"must be one of {', '.join(map(str, args))}, got {value!r}", file=source, field=key
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {value!r}", file=source, field=key)
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, source, key) for v in value)
    if origin is dict or hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 3e-4 as a string
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source=source)
    else:
        return value
    raise ConfigError(
        f"expected {getattr(hint, '__name__', hint)}, got {value!r}", file=source, field=key
    )
