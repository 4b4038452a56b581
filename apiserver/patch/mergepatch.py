"""JSON merge patch (RFC 7386), as `application/merge-patch+json` PATCH requests apply it.

Kubernetes 1.32 applies merge patches with evanphx/json-patch v4 (`MergePatch`); kubectl
uses them for `label`, `annotate`, `scale` and `patch --type merge`, and they are the only
merge flavour custom resources accept. The rules: a `null` member deletes the key, an
object member is merged recursively into an object, anything else (lists included)
replaces the old value. Two details of that library are kept on purpose:

- `null`s are pruned from values the patch *adds* (a new key, or a non-object replaced by
  an object) but not from a non-object (a list, say) that replaces an object;
- `null` elements of lists are kept (only object members are pruned).

This module is also the bottom layer the other two patch modules share: `json_copy`
(patch functions never mutate what they are given) and the way Go names and prints JSON
values, which the Kubernetes patch libraries put in their error messages (`json_type`,
`go_value` for `%v`, `go_s` for `%s`, `go_type` for reflect type names).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from apiserver.errors import bad_request, invalid, invalid_object

# evanphx/json-patch's ErrBadJSONPatch, which the API server answers with 400.
BAD_MERGE_PATCH = "Invalid JSON Patch"


def merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON merge patch to `doc` and return the new object (`doc` is untouched).

    `patch` is the decoded request body. A body that is not a JSON object is rejected the
    way kube-apiserver rejects it: null or a scalar is a 400 BadRequest ("Invalid JSON
    Patch"); a list would replace the whole object with a list, which then fails to decode
    as the resource, a 422 Invalid.
    """
    if isinstance(patch, list):
        raise not_an_object(prune_nulls(json_copy(patch)))
    if not isinstance(patch, dict):
        raise bad_request(BAD_MERGE_PATCH)
    result = json_copy(doc)
    _merge_docs(result, json_copy(patch))
    return result


def not_an_object(patched: Any) -> Exception:
    """The 422 kube-apiserver answers when a patch produced something that is not a JSON
    object: decoding it into the resource fails, reported against the field `patch`."""
    text = json.dumps(patched, separators=(",", ":"))
    detail = f"json: cannot unmarshal {json_type(patched)} into Go value of type map[string]interface {{}}"
    return invalid_object("", "", "", [invalid("patch", text, detail)])


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_docs(current, value)
        elif isinstance(current, dict):
            doc[key] = value  # a non-object replacing an object is taken as is
        else:
            doc[key] = prune_nulls(value)


def prune_nulls(value: Any) -> Any:
    """Drop `null` object members, recursively (through lists, whose null elements stay).
    Mutates and returns `value`."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            prune_nulls(item)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item)
    return value


# --- shared by the patch modules: JSON values as Go sees them -------------------------
def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): much cheaper than copy.deepcopy."""
    if type(value) is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if type(value) is list:
        return [json_copy(item) for item in value]
    return value


def json_type(value: Any) -> str:
    """How encoding/json names a JSON value's type in its error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def go_value(value: Any) -> str:
    """fmt's %v of decoded JSON: map[k:v ...] with sorted keys, [a b], <nil>."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    """%v of a float64: shortest digits, exponent form below 1e-4 or from 1e6 (Go's 'g')."""
    if value != value or value in (float("inf"), float("-inf")):
        return "NaN" if value != value else "+Inf" if value > 0 else "-Inf"
    number = Decimal(repr(value)).normalize()
    sign, digits, exponent = number.as_tuple()
    power = len(digits) - 1 + int(exponent)
    if value == 0 or -4 <= power < 6:
        return format(number, "f")
    text = "".join(map(str, digits))
    head = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{head}e{'-' if power < 0 else '+'}{abs(power):02d}"


_GO_TYPES = {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
             int: "int64", float: "float64", bool: "bool"}


def go_type(value: Any) -> str:
    """reflect.TypeOf(value) as %s prints it (decoded JSON numbers are int64/float64)."""
    return _GO_TYPES.get(type(value), "%!s(<nil>)")


def go_s(value: Any) -> str:
    """fmt's %s: a string as it is, anything else as %!s(type=value)."""
    if isinstance(value, str):
        return value
    name = _GO_TYPES.get(type(value))
    return f"%!s({name}={go_value(value)})" if name else "%!s(<nil>)"
