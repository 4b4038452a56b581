"""Evaluation of parsed JSONPath nodes (see `jsonpath`) over decoded JSON values.

Mirrors client-go's `JSONPath.walk`: every step maps a list of current values to a
list of next values. A JSON null is a value (a field may hold it) but no step descends
into it. Errors, raised as JSONPathError, follow client-go: indexing a non-list or out
of range, filtering a non-list, comparing values of different types.
"""

from __future__ import annotations

from typing import Any

from apiserver.tables.jsonpath import JSONPathError, Node


def walk(values: list[Any], node: Node, allow_missing: bool) -> list[Any]:
    kind = node.kind
    if kind == "list":
        for child in node.nodes:
            values = walk(values, child, allow_missing)
        return values
    if kind == "text":
        return [node.value]
    if kind in ("int", "float", "bool"):
        return [node.value for _ in values]
    if kind == "field":
        return _field(values, node.value, allow_missing)
    if kind == "array":
        return _array(values, node.extra)
    if kind == "union":
        return [v for branch in node.nodes for v in walk(values, branch, allow_missing)]
    if kind == "wildcard":
        return [child for v in values if v is not None for child in _children(v)]
    if kind == "recursive":
        return _recursive(values)
    if kind == "filter":
        return _filter(values, node.extra, allow_missing)
    raise JSONPathError(f"unexpected node {kind}")


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode())  # Go indexes a string's bytes
    return []


def _field(values: list[Any], name: str, allow_missing: bool) -> list[Any]:
    out = [v[name] for v in values if isinstance(v, dict) and name in v]
    if not out and values and not allow_missing:
        raise JSONPathError(f"{name} is not found")
    return out


def _array(values: list[Any], params: list[tuple[bool, int, bool]]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise JSONPathError(f"{type(value).__name__} is not array or slice")
        length = len(value)
        (k0, start, _), (k1, end, derived), (k2, step, _) = params
        start = start if k0 else 0
        start = start + length if start < 0 else start
        end = end if k1 else length
        end = end + length if end < 0 or (end == 0 and derived) else end
        if end == start:
            return out  # asking for zero elements ends the whole step, as in client-go
        if not 0 <= start < length:
            raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
        if not 0 <= end <= length:
            raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
        if start > end:
            raise JSONPathError(f"starting index {start} is greater than ending index {end}")
        if k2 and step <= 0:
            raise JSONPathError("step must be > 0")
        out.extend(value[start:end][:: step if k2 else 1])
    return out


def _recursive(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        children = _children(value)
        if children:
            out.append(value)
            out.extend(_recursive(children))
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise JSONPathError("invalid type for comparison")


def _compare(left: Any, right: Any, op: str) -> bool:
    """text/template's eq/ne/lt/le/gt/ge: same-kind operands only, no ordering of bools."""
    lk, rk = _kind(left), _kind(right)
    if lk != rk:
        raise JSONPathError("incompatible types for comparison")
    if op in ("==", "!="):
        return (left == right) == (op == "==")
    if lk == "bool":
        raise JSONPathError("invalid type for comparison")
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    if op == ">=":
        return left >= right
    raise JSONPathError(f"unrecognized filter operator {op}")


def _one(values: list[Any]) -> Any:
    if len(values) > 1:
        raise JSONPathError("can only compare one element at a time")
    return values[0] if values else _NOTHING


_NOTHING = object()


def _filter(values: list[Any], extra: tuple[Node, Node, str], allow_missing: bool) -> list[Any]:
    left_node, right_node, op = extra
    out: list[Any] = []
    for value in values:
        if not isinstance(value, list):
            raise JSONPathError("value is not array or slice and cannot be filtered")
        for element in value:
            if op == "exists":
                try:
                    found = walk([element], left_node, allow_missing)
                except JSONPathError:
                    found = []
                if found:
                    out.append(element)
                continue
            left = _one(walk([element], left_node, allow_missing))
            if left is _NOTHING:
                continue
            right = _one(walk([element], right_node, allow_missing))
            if right is _NOTHING:
                continue
            if _compare(left, right, op):
                out.append(element)
    return out
