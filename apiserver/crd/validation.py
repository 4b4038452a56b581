"""Validating a custom resource against its version's openAPIV3Schema.

apiextensions-apiserver runs kube-openapi's JSON-schema validator over the whole object
and turns each failure into a field error; the messages clients see are that validator's
(`spec.replicas in body must be of type integer: "string"`) wrapped in field.Error form
(`spec.replicas: Invalid value: "string": ...`). This module walks the object the same
way and in the same order (type, allOf/anyOf/oneOf/not, string, format, number, array,
enum, object), then adds the checks apiextensions makes outside the validator:
`x-kubernetes-list-type` set/map uniqueness and the apiVersion/kind of
`x-kubernetes-embedded-resource` objects.

As in Kubernetes, int32/int64 formats are not enforced (only the string formats
apiextensions keeps are), a null is a type error unless `nullable` (the decoder has
already dropped non-nullable nulls without a default: run `prune_nulls` first), and
`x-kubernetes-validations` (CEL) rules are not evaluated.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from apiserver.admission.fields import go_format
from apiserver.crd.structural import Schema, additional, child, items, properties
from apiserver.errors import FieldError, duplicate, invalid, not_supported, required

_OMIT_PATH = "<nil>"  # how field.Path prints the nil path kube-openapi's junctor errors get


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_number(bound: float | int, data: Any) -> str:
    """A bound as kube-openapi prints it: an int for integer data, else Go's %v float."""
    if isinstance(data, int) and float(bound).is_integer():
        return str(int(bound))
    return go_format(float(bound))


def _error_path(name: str) -> str:
    return name.removeprefix(".")


# --- formats (the ones apiextensions keeps; others are stripped and never checked) -----
def _regex(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda v: compiled.fullmatch(v) is not None


def _parses(fn: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            fn(value)
        except (ValueError, binascii.Error):
            return False
        return True
    return check


_DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def _date_time(value: str) -> bool:
    match = _DATE_TIME.fullmatch(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def _uri(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+|/\S*", value))


_UUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?{v}[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}"
FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": _regex(r"[0-9a-fA-F]{24}"),
    "uri": _uri,
    "email": _regex(r"[^@\s]+@[^@\s]+"),
    "hostname": _regex(r"(?=.{1,255}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*\.?"),
    "ipv4": _parses(ipaddress.IPv4Address),
    "ipv6": _parses(ipaddress.IPv6Address),
    "cidr": _parses(lambda v: ipaddress.ip_network(v, strict=False)),
    "mac": _regex(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}"),
    "uuid": _regex(_UUID.replace("{v}", "[0-9a-f]"), re.I),
    "uuid3": _regex(_UUID.replace("{v}", "3"), re.I),
    "uuid4": _regex(_UUID.replace("{v}", "4").replace("-?[0-9a-f]{4}-?[0-9a-f]{12}", "-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}"), re.I),
    "uuid5": _regex(_UUID.replace("{v}", "5").replace("-?[0-9a-f]{4}-?[0-9a-f]{12}", "-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}"), re.I),
    "isbn": _regex(r"(97[89])?\d{9}[\dX]|97[89]\d{10}"),
    "isbn10": _regex(r"\d{9}[\dX]"),
    "isbn13": _regex(r"97[89]\d{10}"),
    "creditcard": _regex(r"\d{13,19}"),
    "ssn": _regex(r"\d{3}[- ]?\d{2}[- ]?\d{4}"),
    "hexcolor": _regex(r"#([0-9A-Fa-f]{3}){1,2}"),
    "rgbcolor": _regex(r"rgb\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*\)"),
    "byte": _parses(lambda v: base64.b64decode(v, validate=True)),
    "password": lambda v: True,
    "date": _parses(datetime.date.fromisoformat),
    "duration": _regex(r"(\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w)\s*)+|(\d+(\.\d+)?\s*(nanoseconds?|microseconds?|"
                       r"milliseconds?|seconds?|minutes?|hours?|days?|weeks?)\s*)+"),
    "datetime": _date_time,
    "date-time": _date_time,
}


# --- the kube-openapi validator walk ---------------------------------------------------
def _expected_types(s: Schema) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    return [s["type"]] if s.get("type") else []


def _type_error(value: Any, s: Schema, name: str) -> FieldError | None:
    expected = _expected_types(s)
    if not expected:
        return None
    found = json_type(value)
    if found == "null":
        if s.get("nullable"):
            return None
    elif (found in expected or (found == "number" and "integer" in expected and float(value).is_integer())
          or (found == "integer" and "number" in expected)):
        return None
    message = f'{name} in body must be of type {",".join(expected)}: "{found}"'
    return FieldError("TypeInvalid", _error_path(name), found, message)


def _validate(value: Any, s: Schema | None, name: str, errs: list[FieldError]) -> None:
    if not isinstance(s, dict):
        return
    type_error = _type_error(value, s, name)
    if type_error is not None:
        errs.append(type_error)
        return
    if value is None:
        return
    _junctors(value, s, name, errs)
    if isinstance(value, str):
        _string(value, s, name, errs)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number(value, s, name, errs)
    elif isinstance(value, list):
        _array(value, s, name, errs)
    if "enum" in s and not any(_same(value, allowed) for allowed in s["enum"]):
        allowed = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in s["enum"]]
        errs.append(not_supported(_error_path(name), value, allowed))
    if isinstance(value, dict):
        _object(value, s, name, errs)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    numbers = ("integer", "number")
    same_kind = json_type(a) == json_type(b) or (json_type(a) in numbers and json_type(b) in numbers)
    return same_kind and a == b


def _junctors(value: Any, s: Schema, name: str, errs: list[FieldError]) -> None:
    def run(sub: Schema) -> list[FieldError]:
        found: list[FieldError] = []
        _validate(value, sub, name, found)
        return found

    if s.get("anyOf"):
        results = [run(sub) for sub in s["anyOf"]]
        if all(results):
            errs.append(invalid(_OMIT_PATH, "", f'"{name}" must validate at least one schema (anyOf)'))
            errs.extend(results[0])
    if s.get("oneOf"):
        results = [run(sub) for sub in s["oneOf"]]
        passed = sum(1 for r in results if not r)
        if passed != 1:
            extra = "Found none valid" if passed == 0 else f"Found {passed} valid alternatives"
            errs.append(invalid(_OMIT_PATH, "", f'"{name}" must validate one and only one schema (oneOf). {extra}'))
            if passed == 0:
                errs.extend(results[0])
    if s.get("allOf"):
        results = [run(sub) for sub in s["allOf"]]
        for result in results:
            errs.extend(result)
        failed = sum(1 for r in results if r)
        if failed:
            extra = ". None validated" if failed == len(results) else ""
            errs.append(invalid(_OMIT_PATH, "", f'"{name}" must validate all the schemas (allOf){extra}'))
    if isinstance(s.get("not"), dict) and not run(s["not"]):
        errs.append(invalid(_OMIT_PATH, "", f'"{name}" must not validate the schema (not)'))


def _string(value: str, s: Schema, name: str, errs: list[FieldError]) -> None:
    path = _error_path(name)
    if "maxLength" in s and len(value) > s["maxLength"]:
        errs.append(FieldError("TooLong", path, value, f"may not be longer than {s['maxLength']}"))
    if "minLength" in s and len(value) < s["minLength"]:
        errs.append(invalid(path, value, f"{name} in body should be at least {s['minLength']} chars long"))
    if s.get("pattern") and re.search(s["pattern"], value) is None:
        errs.append(invalid(path, value, f"{name} in body should match '{s['pattern']}'"))
    check = FORMATS.get(s.get("format", ""))
    if check is not None and not check(value):
        errs.append(FieldError("TypeInvalid", path, value, f'{name} in body must be of type {s["format"]}: "{value}"'))


def _number(value: float | int, s: Schema, name: str, errs: list[FieldError]) -> None:
    path = _error_path(name)
    factor = s.get("multipleOf")
    if factor and (value / factor) != int(value / factor):
        errs.append(invalid(path, value, f"{name} in body should be a multiple of {_go_number(factor, value)}"))
    if "maximum" in s:
        exclusive = bool(s.get("exclusiveMaximum"))
        if value > s["maximum"] or (exclusive and value == s["maximum"]):
            rel = "less than" if exclusive else "less than or equal to"
            errs.append(invalid(path, value, f"{name} in body should be {rel} {_go_number(s['maximum'], value)}"))
    if "minimum" in s:
        exclusive = bool(s.get("exclusiveMinimum"))
        if value < s["minimum"] or (exclusive and value == s["minimum"]):
            rel = "greater than" if exclusive else "greater than or equal to"
            errs.append(invalid(path, value, f"{name} in body should be {rel} {_go_number(s['minimum'], value)}"))


def _array(value: list[Any], s: Schema, name: str, errs: list[FieldError]) -> None:
    path = _error_path(name)
    if "minItems" in s and len(value) < s["minItems"]:
        errs.append(invalid(path, len(value), f"{name} in body should have at least {s['minItems']} items"))
    if "maxItems" in s and len(value) > s["maxItems"]:
        errs.append(FieldError("TooMany", path, len(value), f"must have at most {s['maxItems']} items"))
    if s.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(seen)) != len(seen):
            errs.append(invalid(path, "", f"{name} in body shouldn't contain duplicates"))
    for index, item in enumerate(value):
        _validate(item, items(s), f"{name}[{index}]", errs)


def _object(value: dict[str, Any], s: Schema, name: str, errs: list[FieldError]) -> None:
    path = _error_path(name)
    if "minProperties" in s and len(value) < s["minProperties"]:
        errs.append(invalid(path, len(value), f"{name} in body should have at least {s['minProperties']} properties"))
        return
    if "maxProperties" in s and len(value) > s["maxProperties"]:
        errs.append(FieldError("TooMany", path, len(value), f"must have at most {s['maxProperties']} items"))
        return
    props = properties(s)
    _, values_schema = additional(s)
    for field, item in value.items():
        if field not in props and values_schema is not None:
            _validate(item, values_schema, f"{name}.{field}", errs)
    for field, sub in props.items():
        if field in value:
            _validate(value[field], sub, child(name, field), errs)
    for field in s.get("required") or []:
        if field not in value:
            errs.append(required(child(path, field)))


# --- checks apiextensions makes besides the validator ----------------------------------
def _list_types(value: Any, s: Schema | None, path: str, errs: list[FieldError]) -> None:
    if not isinstance(s, dict):
        return
    if isinstance(value, list):
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            seen: set[str] = set()
            for index, item in enumerate(value):
                marker = json.dumps(item, sort_keys=True)
                if marker in seen:
                    errs.append(duplicate(f"{path}[{index}]", item))
                seen.add(marker)
        elif list_type == "map":
            _list_map(value, s, path, errs)
        for index, item in enumerate(value):
            _list_types(item, items(s), f"{path}[{index}]", errs)
    elif isinstance(value, dict):
        props = properties(s)
        _, values_schema = additional(s)
        for field, item in value.items():
            _list_types(item, props.get(field, values_schema), child(path, field), errs)


def _list_map(value: list[Any], s: Schema, path: str, errs: list[FieldError]) -> None:
    keys = s.get("x-kubernetes-list-map-keys") or []
    item_props = properties(items(s))
    seen: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errs.append(invalid(f"{path}[{index}]", item, "must be an object for an array of list-type map"))
            continue
        if not item:
            errs.append(invalid(f"{path}[{index}]", item, "must contain at least one key"))
            continue
        key_values = {k: item.get(k, item_props.get(k, {}).get("default")) for k in keys
                      if k in item or "default" in item_props.get(k, {})}
        if key_values in seen:
            errs.append(duplicate(f"{path}[{index}]", key_values))
        seen.append(key_values)


def _embedded(value: Any, s: Schema | None, path: str, errs: list[FieldError], root: bool) -> None:
    if not isinstance(s, dict):
        return
    if isinstance(value, dict):
        if s.get("x-kubernetes-embedded-resource") and not root:
            errs.extend(_embedded_type_meta(value, path))
        props = properties(s)
        _, values_schema = additional(s)
        for field, item in value.items():
            _embedded(item, props.get(field, values_schema), child(path, field), errs, False)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _embedded(item, items(s), f"{path}[{index}]", errs, False)


def _embedded_type_meta(value: dict[str, Any], path: str) -> list[FieldError]:
    from apiserver.crd.definition import dns1035_label_errors

    errs: list[FieldError] = []
    for field in ("apiVersion", "kind"):
        if field not in value:
            errs.append(required(child(path, field), "must not be empty"))
        elif not isinstance(value[field], str):
            errs.append(invalid(child(path, field), value[field], "must be a string"))
        elif not value[field]:
            errs.append(invalid(child(path, field), value[field], "must not be empty"))
    kind = value.get("kind")
    if isinstance(kind, str) and kind:
        problems = dns1035_label_errors(kind.lower())
        if problems:
            errs.append(invalid(child(path, "kind"), kind, "may have mixed case, but should otherwise match: "
                                + ",".join(problems)))
    api_version = value.get("apiVersion")
    if isinstance(api_version, str) and api_version.count("/") > 1:
        errs.append(invalid(child(path, "apiVersion"), api_version, f"unexpected GroupVersion string: {api_version}"))
    return errs


def validate_value(value: Any, schema: Schema, name: str = "") -> list[FieldError]:
    """The validator alone, with `name` as the root path (used for schema defaults)."""
    errs: list[FieldError] = []
    _validate(value, schema, name, errs)
    return errs


def validate_custom_object(obj: dict[str, Any], schema: Schema) -> list[FieldError]:
    """Every way `obj` breaks its version's openAPIV3Schema, as field errors worded like
    apiextensions-apiserver's (`spec.replicas: Invalid value: "string": spec.replicas in
    body must be of type integer: "string"`)."""
    errs = validate_value(obj, schema)
    _list_types(obj, schema, "", errs)
    _embedded(obj, schema, "", errs, True)
    return errs
