"""Label and field selectors, parsed, validated and matched as k8s.io/apimachinery does.

Label selectors (`labelSelector=` on lists and watches, `-l` in kubectl, Deployment/Service
selectors) follow pkg/labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
`a>1`, `a<1`, comma-separated, whitespace between tokens ignored, keys and values validated.
Parse errors carry the apiserver's wording (`unable to parse requirement: ...`) and are raised
as 400 BadRequest. `selector_from_object` converts a metav1.LabelSelector (matchLabels +
matchExpressions) and `LabelSelector.to_string()` gives the canonical form Kubernetes prints
(Scale.status.selector, `kubectl describe`).

Field selectors follow pkg/fields (`=`, `==`, `!=`, comma-separated, `\\` escapes `,` `=`
and `\\` in values). Which fields a kind can be selected by is per kind, as the API server's
field label conversion functions and registry `ToSelectableFields` decide: see
`selectors_fields.py`. The grammar and validation of label selectors live in
`selectors_labels.py`; everything public is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiserver.selectors_fields import (  # noqa: F401  (re-exported public API)
    FieldRequirement,
    FieldSelector,
    escape_field_value,
    field_set,
    parse_field_selector,
    validate_field_selector,
)
from apiserver.selectors_labels import (  # noqa: F401
    DOES_NOT_EXIST,
    DOUBLE_EQUALS,
    EQUALS,
    EXISTS,
    GREATER,
    IN,
    LESS,
    NOT_EQUALS,
    NOT_IN,
    Requirement,
    SelectorError,
    new_requirement,
    parse_requirements,
)


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector: requirements ANDed; `nothing` matches no object at all."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value `key` must have (`k=v`, `k==v`, `k in (v)`), if any."""
        for requirement in self.requirements:
            if requirement.key == key:
                exact = requirement.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(requirement.values) == 1
                return requirement.values[0] if exact else None
        return None


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda r: r.key))


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse. Raises a 400 StatusError with the apiserver's message on bad input."""
    try:
        return LabelSelector(_sorted(parse_requirements(text)))
    except SelectorError as exc:
        raise exc.status() from exc


_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None matches nothing, {} matches everything.

    Raises a 400 StatusError worded as Kubernetes does for an invalid key, value or operator.
    """
    if selector is None:
        return LabelSelector(nothing=True)
    requirements: list[Requirement] = []
    try:
        for key, value in (selector.get("matchLabels") or {}).items():
            requirements.append(new_requirement(key, EQUALS, [value]))
        for expression in selector.get("matchExpressions") or []:
            operator = _OPERATORS.get(expression.get("operator", ""))
            if operator is None:
                raise SelectorError(f'"{expression.get("operator", "")}" is not a valid label selector operator')
            values = list(expression.get("values") or [])
            requirements.append(new_requirement(expression.get("key", ""), operator, values))
    except SelectorError as exc:
        raise exc.status() from exc
    return LabelSelector(_sorted(requirements))


