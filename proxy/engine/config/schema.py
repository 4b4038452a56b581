"""A small reflective schema layer: Envoy messages as frozen dataclasses, read from and
written back to Envoy-shaped JSON.

Why reflection rather than one hand-written parser per message: the subset has some
sixty messages, and every one needs the same things (unknown fields rejected with the
full path, snake_case and proto-JSON lowerCamelCase names, wrapper-type defaults,
durations, enums, oneofs, `@type`-dispatched `typed_config`, and the way back for
/config_dump). Declaring each message once as a dataclass keeps the field list in one
place, the defaults next to the names, and the round trip exact.

Field metadata (see `fld`): `duration` (proto Duration: "2s", "0.25s", or
{seconds, nanos}; stored as float seconds), `enum` (allowed names), `lo`/`hi` (bounds),
`required`, `any_of` (classes a `typed_config` may be, chosen by `@type`), `json` (a
different JSON name, e.g. `@type`). A `typed_config` may also be a TypedStruct
(udpa.type.v1 or xds.type.v3: `type_url` plus `value`), as Istio's EnvoyFilters write
them; it is read as the message it wraps. Class attributes: `ONEOFS` (groups of field names of
which at most one may be set), `REQUIRED_ONEOFS` (exactly one), `TYPE_URL` (for messages
that appear in `typed_config`), and an optional `check(self, path)` for the rest.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from functools import cache
from typing import Any

from proxy.engine.config.errors import ConfigError

TYPE_PREFIX = "type.googleapis.com/"
TYPED_STRUCTS = (TYPE_PREFIX + "udpa.type.v1.TypedStruct", TYPE_PREFIX + "xds.type.v3.TypedStruct")
_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")


def fld(default: Any = dataclasses.MISSING, *, duration: bool = False, enum: tuple[str, ...] = (),
        lo: float | None = None, hi: float | None = None, required: bool = False,
        any_of: tuple[type, ...] = (), json: str = "", factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with schema metadata (see the module docstring)."""
    meta = {"duration": duration, "enum": enum, "lo": lo, "hi": hi, "required": required,
            "any_of": any_of, "json": json}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if default is dataclasses.MISSING:
        default = None
    return dataclasses.field(default=default, metadata=meta)


def json_name(name: str) -> str:
    """protobuf's lowerCamelCase JSON name: `consecutive_5xx` -> `consecutive5xx`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse_duration(value: Any, path: str) -> float:
    """An Envoy/proto-JSON Duration as seconds: "2s", "0.25s", "1.5s", or {seconds, nanos}."""
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not m:
            raise ConfigError(path, f"invalid duration {value!r} (want e.g. '2s' or '0.25s')")
        sign, whole, frac = m.groups()
        seconds = int(whole) + (int(frac.ljust(9, "0")) / 1e9 if frac else 0.0)
        return -seconds if sign else seconds
    if isinstance(value, dict):
        unknown = set(value) - {"seconds", "nanos"}
        if unknown:
            raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unknown field")
        try:
            return int(value.get("seconds", 0)) + int(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            raise ConfigError(path, f"invalid duration {value!r}") from None
    raise ConfigError(path, f"invalid duration {value!r} (want e.g. '2s')")


def format_duration(seconds: float) -> str:
    """Seconds as proto JSON writes a Duration: 0, 3, 6 or 9 fractional digits."""
    nanos = round(seconds * 1e9)
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    sign = "-" if nanos < 0 else ""
    if frac == 0:
        return f"{sign}{whole}s"
    digits = f"{frac:09d}"
    for width in (3, 6, 9):
        if digits[width:].strip("0") == "":
            return f"{sign}{whole}.{digits[:width]}s"
    return f"{sign}{whole}.{digits}s"


@cache
def _fields(cls: type) -> tuple[dict[str, dataclasses.Field], dict[str, Any]]:
    """Accepted JSON names -> field, and the resolved type hints, per message class."""
    hints = typing.get_type_hints(cls)
    names: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("json"):
            names[f.metadata["json"]] = f
        else:
            names[f.name] = f
            names[json_name(f.name)] = f
    return names, hints


def _type_name(cls: type) -> str:
    return getattr(cls, "TYPE_URL", cls.__name__)


def parse(cls: type, obj: Any, path: str) -> Any:
    """`obj` (JSON-shaped) as the message `cls`; ConfigError naming the path if wrong."""
    if not isinstance(obj, dict):
        raise ConfigError(path, f"expected an object ({cls.__name__}), got {type(obj).__name__}")
    names, hints = _fields(cls)
    values: dict[str, Any] = {}
    for key, raw in obj.items():
        f = names.get(key)
        sub = f"{path}.{key}" if path else str(key)
        if f is None:
            raise ConfigError(sub, "unknown field")
        if f.name in values:
            raise ConfigError(sub, f"given twice (as {f.name} and {json_name(f.name)})")
        if raw is None:
            continue
        values[f.name] = _convert(hints[f.name], raw, sub, f.metadata)
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and f.name not in values:
            raise ConfigError(f"{path}.{f.name}" if path else f.name, "required field missing")
    _check_oneofs(cls, values, path)
    try:
        msg = cls(**values)
    except (TypeError, ValueError) as e:  # pragma: no cover - a schema bug, not bad input
        raise ConfigError(path, str(e)) from None
    check = getattr(msg, "check", None)
    if check is not None:
        check(path)
    return msg


def _check_oneofs(cls: type, values: dict[str, Any], path: str) -> None:
    for group in getattr(cls, "ONEOFS", ()):
        given = [n for n in group if n in values]
        if len(given) > 1:
            raise ConfigError(f"{path}.{given[1]}", f"only one of {', '.join(group)} may be set")
    for group in getattr(cls, "REQUIRED_ONEOFS", ()):
        if not any(n in values for n in group):
            raise ConfigError(path, f"one of {', '.join(group)} is required")


def _convert(tp: Any, raw: Any, path: str, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else tp
        origin = typing.get_origin(tp)
    if meta.get("any_of"):
        if origin is tuple:
            return tuple(_typed(meta["any_of"], item, f"{path}[{i}]") for i, item in enumerate(_list(raw, path)))
        if origin is dict:
            return {k: _typed(meta["any_of"], v, f"{path}.{k}") for k, v in _map(raw, path).items()}
        return _typed(meta["any_of"], raw, path)
    if meta.get("duration"):
        value = parse_duration(raw, path)
        if value < 0:
            raise ConfigError(path, "a duration may not be negative")
        return value
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        return tuple(_convert(item_tp, item, f"{path}[{i}]", meta) for i, item in enumerate(_list(raw, path)))
    if origin is dict:
        item_tp = typing.get_args(tp)[1]
        return {str(k): _convert(item_tp, v, f"{path}.{k}", meta) for k, v in _map(raw, path).items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, raw, path)
    if tp is dict:  # an opaque object (e.g. google_re2 {}), kept as given
        return dict(_map(raw, path))
    return _scalar(tp, raw, path, meta)


def _list(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(path, f"expected a list, got {type(raw).__name__}")
    return raw


def _map(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(path, f"expected an object, got {type(raw).__name__}")
    return raw


def _scalar(tp: Any, raw: Any, path: str, meta: typing.Mapping[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(raw, bool):
            raise ConfigError(path, f"expected true or false, got {raw!r}")
        return raw
    if tp is str:
        if not isinstance(raw, str):
            raise ConfigError(path, f"expected a string, got {raw!r} (quote it in YAML)")
        if meta.get("enum") and raw not in meta["enum"]:
            raise ConfigError(path, f"{raw!r} is not one of {', '.join(meta['enum'])}")
        return raw
    if tp in (int, float):
        value = raw
        if isinstance(raw, str) and tp is int and re.fullmatch(r"-?\d+", raw):
            value = int(raw)  # proto JSON writes 64-bit integers as strings
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (tp is int and not isinstance(value, int)):
            raise ConfigError(path, f"expected a number, got {raw!r}")
        lo, hi = meta.get("lo"), meta.get("hi")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(path, f"{value} is out of range [{lo}, {hi}]")
        return tp(value)
    raise ConfigError(path, f"unsupported field type {tp!r}")  # pragma: no cover


def _typed(allowed: tuple[type, ...], raw: Any, path: str) -> Any:
    """A `typed_config` (google.protobuf.Any): the class is chosen by `@type`."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected an object with @type")
    url = raw.get("@type")
    if not url:
        raise ConfigError(f"{path}.@type", "required field missing")
    if url in TYPED_STRUCTS:  # {type_url, value}: the config as a plain struct (Istio's EnvoyFilters)
        extra = set(raw) - {"@type", "type_url", "value"}
        if extra:
            raise ConfigError(f"{path}.{sorted(extra)[0]}", "unknown field")
        if not raw.get("type_url"):
            raise ConfigError(f"{path}.type_url", "required field missing")
        value = raw.get("value") or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}.value", "expected an object")
        raw, path = {"@type": raw["type_url"], **value}, f"{path}.value"
        url = raw["@type"]
    by_url = {TYPE_PREFIX + c.TYPE_URL: c for c in allowed}
    cls = by_url.get(url)
    if cls is None:
        known = ", ".join(sorted(by_url))
        raise ConfigError(f"{path}.@type", f"unknown or unsupported type {url!r} here (known: {known})")
    return parse(cls, {k: v for k, v in raw.items() if k != "@type"}, path)


def dump(msg: Any, *, defaults: bool = False) -> dict[str, Any]:
    """The message back to Envoy-shaped JSON (snake_case, durations as "2s"); fields at
    their default are left out unless `defaults`."""
    out: dict[str, Any] = {}
    if hasattr(type(msg), "TYPE_URL"):
        out["@type"] = TYPE_PREFIX + type(msg).TYPE_URL
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if value is None:
            continue
        if not defaults and _is_default(f, value):
            continue
        out[f.metadata.get("json") or f.name] = _dump_value(value, f.metadata, defaults)
    return out


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return value == f.default
    if f.default_factory is not dataclasses.MISSING:
        return value == f.default_factory()
    return False


def _dump_value(value: Any, meta: typing.Mapping[str, Any], defaults: bool) -> Any:
    if meta.get("duration") and isinstance(value, (int, float)):
        return format_duration(value)
    if isinstance(value, tuple):
        return [_dump_value(v, meta, defaults) for v in value]
    if isinstance(value, dict):
        return {k: _dump_value(v, meta, defaults) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return dump(value, defaults=defaults)
    return value
