"""Label selectors on the client side: parse, match and print them.

Controllers match objects against selectors from their informer cache (a ReplicaSet's
`spec.selector` against Pods), so the client needs the same selector language the API
server speaks, written in the form k8s.io/apimachinery `labels` gives it:

    app=web, tier!=db, env in (prod,staging), release notin (canary), gpu, !legacy

`!=` and `notin` also match objects without the key, as in Kubernetes. A structured
`metav1.LabelSelector` (`matchLabels` + `matchExpressions` with In, NotIn, Exists,
DoesNotExist) converts to the same `Selector`; an empty one selects everything and a
missing one (None) nothing, as `LabelSelectorAsSelector` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SET_TERM = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_BINARY_TERM = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|!=|=|>|<)\s*(?P<value>[^\s!=<>(),]*)$")
_KEY = re.compile(r"^[^\s!=<>(),]+$")


@dataclass(frozen=True)
class Requirement:
    """One term: key, operator (=, !=, in, notin, exists, !, gt, lt) and values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        value = labels.get(self.key)
        if op in ("=", "in"):
            return present and value in self.values
        if op in ("!=", "notin"):
            return not present or value not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        try:  # gt / lt compare integers; a non-integer label never matches
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if op == "gt" else number < bound

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return f"!{self.key}"
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(sorted(self.values))})"
        symbol = {"gt": ">", "lt": "<"}.get(op, op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; `nothing=True` is the selector matching no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = field(default=False)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self.matches((obj.get("metadata") or {}).get("labels"))

    def empty(self) -> bool:
        """True when it selects every object."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in selector {text!r}")
    terms.append("".join(current))
    return [t.strip() for t in terms]


def _parse_term(term: str) -> Requirement:
    if term.startswith("!"):
        key = term[1:].strip()
        if not _KEY.match(key):
            raise ValueError(f"invalid selector term {term!r}")
        return Requirement(key, "!")
    if m := _SET_TERM.match(term):
        values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
        return Requirement(m["key"], m["op"], values)
    if m := _BINARY_TERM.match(term):
        op = {"==": "=", ">": "gt", "<": "lt"}.get(m["op"], m["op"])
        if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", m["value"]):
            raise ValueError(f"{term!r}: > and < need an integer")
        return Requirement(m["key"], op, (m["value"],))
    if _KEY.match(term):
        return Requirement(term, "exists")
    raise ValueError(f"invalid selector term {term!r}")


def parse(text: str) -> Selector:
    """A selector string as kubectl -l and labelSelector= take it ("" selects all)."""
    if not text.strip():
        return EVERYTHING
    terms = _split_terms(text)
    if any(not t for t in terms):
        raise ValueError(f"empty term in selector {text!r}")
    return Selector(tuple(_parse_term(t) for t in terms))


def from_label_selector(selector: Mapping[str, Any] | None) -> Selector:
    """A metav1.LabelSelector (`spec.selector`) as a Selector; None selects nothing."""
    if selector is None:
        return NOTHING
    requirements = [Requirement(k, "=", (str(v),)) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        op = ops.get(expression.get("operator", ""))
        if op is None:
            raise ValueError(f"invalid label selector operator {expression.get('operator')!r}")
        requirements.append(Requirement(expression["key"], op, tuple(expression.get("values") or ())))
    return Selector(tuple(requirements))


def as_selector(selector: str | Mapping[str, str] | Selector | None) -> Selector:
    """Whatever a caller passed (string, {key: value} dict, Selector, None) as a Selector."""
    if selector is None:
        return EVERYTHING
    if isinstance(selector, Selector):
        return selector
    if isinstance(selector, str):
        return parse(selector)
    return Selector(tuple(Requirement(k, "=", (str(v),)) for k, v in sorted(selector.items())))
