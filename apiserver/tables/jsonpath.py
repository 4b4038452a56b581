"""The JSONPath dialect of client-go's `util/jsonpath`, as CRD printer columns use it.

A CRD's `additionalPrinterColumns[].jsonPath` (".status.replicas",
".spec.containers[0].image", ".status.conditions[?(@.type=="Ready")].status") is
evaluated by the API server with client-go's JSONPath, so its quirks decide what a cell
shows: missing keys give no result (the cell is then null), indexing out of range or a
filter on a non-list is an error (also a null cell), `['a.b']` is read as `.a.b`,
comparisons between different types fail, and a JSON null printed as text reads
"<no value>". This module reimplements that behaviour over plain JSON values.

Supported: `.field`, `['field']`, `[n]`, `[start:end:step]`, `[*]`, `.*`, unions
`[0,2]`, `..field` (recursive descent), filters `[?(@.x == "y")]` with == != < > <= >=
and existence `[?(@.x)]`, string/number/bool literals, text outside `{}`.
`range`/`end` are not supported (they have no use in a column).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_MISSING = object()
_TERMINATORS = set(" \t\r\n.,[]$@{}")
_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)


class JSONPathError(ValueError):
    """A template that does not parse, or an evaluation error (bad index, bad type)."""


@dataclass
class Node:
    kind: str  # list text field wildcard array union filter recursive int float bool
    value: Any = None
    nodes: list[Node] = field(default_factory=list)
    extra: Any = None  # filter: (left, right, operator); array: slice params


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def parse_template(self) -> list[Node]:
        out: list[Node] = []
        while self.pos < len(self.text):
            start = self.text.find("{", self.pos)
            if start < 0:
                out.append(Node("text", self.text[self.pos :]))
                break
            if start > self.pos:
                out.append(Node("text", self.text[self.pos : start]))
            self.pos = start + 1
            out.append(self.parse_action())
        return out

    def parse_action(self) -> Node:
        cur = Node("list")
        while True:
            rest = self.text[self.pos :]
            if rest.startswith("}"):
                self.pos += 1
                return cur
            if not rest or rest[0] in "\r\n":
                raise JSONPathError("unclosed action")
            if rest.startswith("[?("):
                cur.nodes.append(self._filter())
            elif rest.startswith(".."):
                self._recursive(cur)
            else:
                self._token(cur, rest[0])

    def _token(self, cur: Node, ch: str) -> None:
        if ch in " @$":
            self.pos += 1
        elif ch == "[":
            self._array(cur)
        elif ch in "\"'":
            cur.nodes.append(Node("text", self._quoted(ch)))
        elif ch == ".":
            self.pos += 1
            cur.nodes.append(self._field())
        elif ch in "+-" or ch.isdigit():
            cur.nodes.append(self._number())
        elif ch == "_" or ch.isalnum():
            word = self._until_terminator()
            if word not in ("true", "false"):
                raise JSONPathError(f"unsupported identifier {word!r}")
            cur.nodes.append(Node("bool", word == "true"))
        else:
            raise JSONPathError(f"unrecognized character in action: {ch!r}")

    def _until_terminator(self, *, escapes: bool = False) -> str:
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if escapes and ch == "\\":
                self.pos += 2
                continue
            if ch in _TERMINATORS:
                break
            self.pos += 1
        return self.text[start : self.pos]

    def _field(self) -> Node:
        name = self._until_terminator(escapes=True)
        return Node("wildcard") if name == "*" else Node("field", name.replace("\\", ""))

    def _recursive(self, cur: Node) -> None:
        if cur.nodes and cur.nodes[-1].kind == "recursive":
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        cur.nodes.append(Node("recursive"))
        if self.pos < len(self.text) and (self.text[self.pos] == "_" or self.text[self.pos].isalnum()):
            cur.nodes.append(self._field())

    def _number(self) -> Node:
        start = self.pos
        if self.text[self.pos] in "+-":
            self.pos += 1
        while self.pos < len(self.text) and (self.text[self.pos] == "." or self.text[self.pos].isdigit()):
            self.pos += 1
        raw = self.text[start : self.pos]
        try:
            return Node("int", int(raw))
        except ValueError:
            try:
                return Node("float", float(raw))
            except ValueError:
                raise JSONPathError(f"cannot parse number {raw}") from None

    def _quoted(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise JSONPathError("unterminated quoted string")
            if self.text[self.pos] == quote and self.text[self.pos - 1] != "\\":
                self.pos += 1
                return _unquote(self.text[start + 1 : self.pos - 1])
            self.pos += 1

    def _array(self, cur: Node) -> None:
        end = self.pos
        while end < len(self.text) and self.text[end] not in "]\n":
            end += 1
        if end >= len(self.text) or self.text[end] != "]":
            raise JSONPathError("unterminated array")
        inner, self.pos = self.text[self.pos + 1 : end], end + 1
        inner = ":" if inner == "*" else inner
        parts = inner.split(",")
        if len(parts) > 1:
            cur.nodes.append(Node("union", nodes=[_action(f"[{p.strip()}]") for p in parts]))
            return
        key = _DICT_KEY.match(inner)
        if key:  # ['a.b'] is parsed as .a.b, as client-go does
            cur.nodes.extend(_action("." + key.group(1)).nodes)
            return
        cur.nodes.append(Node("array", extra=_slice_params(inner)))

    def _filter(self) -> Node:
        self.pos += 3
        start, begin, end, pair = self.pos, False, False, ""
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise JSONPathError("unterminated filter")
            ch = self.text[self.pos]
            self.pos += 1
            if ch in "\"'":
                if not begin:
                    begin, pair = True, ch
                elif ch == pair and self.text[self.pos - 2] != "\\":
                    end = True
            elif ch == ")" and begin == end:
                break
        if self.pos >= len(self.text) or self.text[self.pos] != "]":
            raise JSONPathError("unclosed array expect ]")
        body, self.pos = self.text[start : self.pos - 1], self.pos + 1
        m = _FILTER.match(body)
        if m is None:
            return Node("filter", extra=(_action(body), Node("list"), "exists"))
        return Node("filter", extra=(_action(m.group(1)), _action(m.group(3)), m.group(2)))


def _action(text: str) -> Node:
    p = _Parser("{" + text + "}")
    p.pos = 1
    return p.parse_action()


def _slice_params(text: str) -> list[tuple[bool, int, bool]]:
    """[(known, value, derived)] for start, end, step, as client-go's parser sets them."""
    m = _SLICE.match(text)
    if m is None:
        raise JSONPathError(f"invalid array index {text}")
    params: list[tuple[bool, int, bool]] = []
    for i, raw in enumerate(m.groups()):
        raw = raw or ""
        raw = raw[1:] if i > 0 and raw else raw
        if m.groups()[i]:
            if raw == "" and i > 0:
                params.append((False, 0, False))
            else:
                try:
                    params.append((True, int(raw), False))
                except ValueError:
                    raise JSONPathError(f"array index {raw} is not a number") from None
        elif i == 1:
            params.append((True, params[0][1] + 1, True))
        else:
            params.append((False, 0, False))
    return params


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


def _unquote(body: str) -> str:
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif nxt in "01234567":
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise JSONPathError(f"invalid escape in {body!r}")
    return "".join(out)


def parse(template: str) -> list[Node]:
    """Parse a template ("{.a.b}", "x={.a}"); each element is a text or action node."""
    return _Parser(template).parse_template()


def parse_column(json_path: str) -> list[Node]:
    """Parse a CRD column's jsonPath the way the table convertor does: as "{<path>}"."""
    return parse("{" + json_path + "}")


def find_results(nodes: list[Node], data: Any, *, allow_missing_keys: bool = True) -> list[list[Any]]:
    """FindResults: one list of values per template node (raises JSONPathError)."""
    from apiserver.tables.jsonpath_eval import walk

    return [walk([data], node, allow_missing_keys) for node in nodes]


def _go_float(value: float, *, json_style: bool) -> str:
    """A float64 as Go's fmt %v (strconv 'g', shortest) or encoding/json prints it."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 and not json_style else "0"
    digits, exp = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    use_e = (abs(value) < 1e-6 or abs(value) >= 1e21) if json_style else (exp < -4 or exp >= 6)
    if use_e:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exponent = f"{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if json_style and exponent.startswith("-0"):
            exponent = "-" + exponent[2:]  # encoding/json cleans e-09 to e-9
        return f"{sign}{mantissa}e{exponent}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole, frac = digits[: exp + 1].ljust(exp + 1, "0"), digits[exp + 1 :]
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of |value| (Python's repr, like Go's
    strconv) and the decimal exponent of the first digit."""
    _sign, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    trailing = len(digits) - len(digits.rstrip("0"))
    exp = len(digits) + int(exponent) - 1
    return digits[: len(digits) - trailing] or "0", exp


def _go_json(value: Any) -> str:
    """encoding/json.Marshal of a decoded JSON value: sorted keys, HTML-safe escapes."""
    if isinstance(value, float):
        return _go_float(value, json_style=True)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json(str(k))}:{_go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        for ch, esc in (
            ("<", "\\u003c"),
            (">", "\\u003e"),
            ("&", "\\u0026"),
            ("\u2028", "\\u2028"),
            ("\u2029", "\\u2029"),
        ):
            text = text.replace(ch, esc)
    return text


def print_value(value: Any) -> str:
    """PrintResults of one value: maps and lists as JSON, scalars as Go prints them,
    a JSON null as "<no value>"."""
    if value is None:
        return "<no value>"
    if isinstance(value, dict | list):
        return _go_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value, json_style=False)
    return str(value)
