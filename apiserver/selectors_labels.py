"""Label selector grammar and validation, as k8s.io/apimachinery/pkg/labels implements them.

Split from `selectors.py` (the public API) to keep each module small: this module holds the
key/value validation (validation.IsQualifiedName, IsValidLabelValue, with their exact wording),
`Requirement` and `new_requirement` (labels.NewRequirement) and the lexer/parser of
labels.Parse, whose error texts the API server returns verbatim in a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiserver.errors import StatusError, bad_request

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
GREATER, LESS, EXISTS, DOES_NOT_EXIST = "gt", "lt", "exists", "!"
BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE_FMT = f"({_NAME_FMT})?"
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = f"{_DNS1123_LABEL}(\\.{_DNS1123_LABEL})*"
_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character")
_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
              "and must start and end with an alphanumeric character")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, including its double space after each example."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def qualified_name_errors(value: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, as used for label keys."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not re.fullmatch(_DNS1123_SUBDOMAIN, prefix):
                errors.append("prefix part " + _regex_error(_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com"))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not re.fullmatch(_NAME_FMT, name):
        errors.append("name part " + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue."""
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    if not re.fullmatch(_VALUE_FMT, value):
        errors.append(_regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _go_value(value: Any) -> str:
    """How field.Error prints a bad value: strings quoted, []string as Go's %#v."""
    if isinstance(value, list):
        return "[]string{" + ", ".join(_quote(v) for v in value) + "}"
    return _quote(value)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SelectorError(ValueError):
    """A selector that does not parse or validate; str() is the apiserver's message."""

    def status(self) -> StatusError:
        return bad_request(str(self))


@dataclass(frozen=True)
class Requirement:
    """One label requirement: key, operator (see the constants above) and values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and value in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or value not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if not present or len(self.values) != 1:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.operator == GREATER else have < want

    def to_string(self) -> str:
        """Requirement.String(): `!k`, `k`, `k=v`, `k in (a,b)` with sorted values."""
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator == EXISTS:
            return self.key
        symbol = {IN: " in ", NOT_IN: " notin ", GREATER: ">", LESS: "<"}.get(self.operator, self.operator)
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            values = f"({values})"
        return f"{self.key}{symbol}{values}"


def new_requirement(key: str, operator: str, values: list[str], path: str = "") -> Requirement:
    """labels.NewRequirement: validate and build, or raise SelectorError (errors aggregated)."""
    errors: list[str] = []
    key_errors = qualified_name_errors(key)
    if key_errors:
        errors.append(f'{_child(path, "key")}: Invalid value: {_quote(key)}: {"; ".join(key_errors)}')
    values_path = _child(path, "values")
    problem = _operator_problem(operator, values)
    if problem:
        errors.append(f"{values_path}: Invalid value: {_go_value(values)}: {problem}")
    if operator in (GREATER, LESS):
        for i, value in enumerate(values):
            if not re.fullmatch(r"[+-]?\d+", value):
                errors.append(f"{values_path}[{i}]: Invalid value: {_quote(value)}: "
                              "for 'Gt', 'Lt' operators, the value must be an integer")
    for i, value in enumerate(values):
        value_errors = label_value_errors(value)
        if value_errors:
            errors.append(f"{values_path}[{i}][{key}]: Invalid value: {_quote(value)}: {'; '.join(value_errors)}")
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, tuple(values))


def _operator_problem(operator: str, values: list[str]) -> str:
    if operator in (IN, NOT_IN) and not values:
        return "for 'in', 'notin' operators, values set can't be empty"
    if operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        return "exact-match compatibility requires one single value"
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        return "values set must be empty for exists and does not exist"
    if operator in (GREATER, LESS) and len(values) != 1:
        return "for 'Gt', 'Lt' operators, exactly one value is required"
    return ""


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"



# --- labels.Parse: lexer and parser ---------------------------------------------------------

_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "("}
IDENT, END, ERROR = "identifier", "end", "error"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); keywords `in`/`notin` are their own kind."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= len(text):
            tokens.append((END, ""))
            return tokens
        if text[pos] in _SPECIAL:
            kind, literal, pos = _lex_symbol(text, pos)
        else:
            start = pos
            while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            literal = text[start:pos]
            kind = literal if literal in ("in", "notin") else IDENT
        tokens.append((kind, literal))


def _lex_symbol(text: str, pos: int) -> tuple[str, str, int]:
    """Longest run of special characters that still forms an operator (Lexer.scanSpecialSymbol)."""
    buffer, last = "", ""
    while pos < len(text) and text[pos] in _SPECIAL:
        buffer += text[pos]
        pos += 1
        if buffer in _SYMBOLS:
            last = buffer
        elif last:
            pos -= 1
            break
    if not last:
        return ERROR, f"error expected: keyword found '{buffer}'", pos
    return _SYMBOLS[last], last, pos


class _Parser:
    """labels.Parser: `in` and `notin` are identifiers except in operator position."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as(self.tokens[self.pos], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return self._as(token, values)

    @staticmethod
    def _as(token: tuple[str, str], values: bool) -> tuple[str, str]:
        return (IDENT, token[1]) if values and token[0] in ("in", "notin") else token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == END:
                return requirements
            if kind not in (IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from exc
            kind, literal = self.take()
            if kind == END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in (IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = self.peek()[0] == "!"
        if negated:
            self.take()
        kind, key = self.take()
        if kind != IDENT:
            raise SelectorError(f"found '{key}', expected: identifier")
        key_errors = qualified_name_errors(key)
        if key_errors:  # labels.Parse has no field path: Go prints a nil *field.Path as <nil>
            raise SelectorError(f"<nil>: Invalid value: {_quote(key)}: {'; '.join(key_errors)}")
        if self.peek()[0] in (END, ","):
            return new_requirement(key, DOES_NOT_EXIST if negated else EXISTS, [])
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(set(values)))

    def operator(self) -> str:
        kind, literal = self.take(values=False)
        operators = {"in": IN, "notin": NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS,
                     ">": GREATER, "<": LESS}
        if kind not in operators:
            raise SelectorError(f"found '{literal}', expected: {BINARY_OPERATORS}")
        return operators[kind]

    def exact_value(self) -> list[str]:
        if self.peek()[0] in (END, ","):
            return [""]
        kind, literal = self.take()
        if kind != IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return [literal]

    def value_set(self) -> list[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":
            self.take()
            return [""]
        if kind not in (IDENT, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        """parseIdentifiersList: `(a,b)`, with empty strings for `(,`, `,,` and `,)`."""
        values: list[str] = []
        while True:
            kind, literal = self.take()
            if kind == IDENT:
                values.append(literal)
                after, after_literal = self.peek()
                if after == ")":
                    return values
                if after != ",":
                    raise SelectorError(f"found '{after_literal}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.append("")
                after = self.peek()[0]
                if after in (")", ","):
                    values.append("")
                if after == ")":
                    return values
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements of a label selector string, in input order; raises SelectorError."""
    return _Parser(text).parse()
