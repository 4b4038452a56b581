"""Small formatters shared by the printers: nested lookups, labels, label selectors,
container lists, "a,b,c + N more..." lists.

They reproduce apimachinery's string forms (`labels.Set.String()`,
`LabelSelectorAsSelector(...).String()`, `metav1.FormatLabelSelector`) because those
strings appear verbatim in SELECTOR, NODE SELECTOR and POD-SELECTOR cells.
"""

from __future__ import annotations

from typing import Any

NONE = "<none>"


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    """obj[path[0]][path[1]]... or `default` when any step is missing or null."""
    cur = obj
    for key in path:
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return default
            cur = cur[key]
        else:
            if not isinstance(cur, dict):
                return default
            cur = cur.get(key)
        if cur is None:
            return default
    return cur


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def items(obj: Any, *path: str) -> list[Any]:
    """A list field, [] when missing."""
    value = get(obj, *path)
    return value if isinstance(value, list) else []


def mapping(obj: Any, *path: str) -> dict[str, Any]:
    """A map field, {} when missing."""
    value = get(obj, *path)
    return value if isinstance(value, dict) else {}


def labels_string(labels: dict[str, Any] | None) -> str:
    """labels.Set(m).String(): "k=v" pairs sorted by key, comma-separated."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def format_labels(labels: dict[str, Any] | None) -> str:
    """labels.FormatLabels: the set's string, or "<none>" when empty."""
    return labels_string(labels) or NONE


_OPERATORS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": ""}


def _requirement(key: str, op: str, values: list[str]) -> str:
    if op == "Exists":
        return key
    if op == "DoesNotExist":
        return "!" + key
    if op == "=":
        return f"{key}={values[0]}"
    return f"{key}{_OPERATORS[op]}({','.join(sorted(values))})"


def selector_string(selector: dict[str, Any] | None) -> str:
    """LabelSelectorAsSelector(sel).String(); "" for a nil or empty selector.

    Raises ValueError for an invalid operator or a set operator without values (the
    callers turn that into "<error>" / "<invalid>" as their Go counterparts do).
    """
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, _requirement(k, "=", [str(v)])))
    for expr in selector.get("matchExpressions") or []:
        op, key = expr.get("operator", ""), expr.get("key", "")
        values = [str(v) for v in expr.get("values") or []]
        if op not in _OPERATORS or (op in ("In", "NotIn") and not values):
            raise ValueError(f"{op!r} is not a valid label selector operator")
        reqs.append((key, _requirement(key, op, values)))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r for _, r in reqs)


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: the selector string, "<none>" if it selects
    everything or nothing, "<error>" if invalid."""
    try:
        return selector_string(selector) or NONE
    except ValueError:
        return "<error>"


def container_cells(containers: list[Any] | None) -> tuple[str, str]:
    """layoutContainerCells: container names and images, comma-separated."""
    cs = [c for c in containers or [] if isinstance(c, dict)]
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def list_with_more(values: list[str], total: int, limit: int = 3, *, empty: str = "<unset>") -> str:
    """The first `limit` values joined by ",", then " + N more..." (listWithMoreString)."""
    shown = ",".join(values[:limit])
    if total > limit:
        return f"{shown} + {total - limit} more..."
    return shown or empty


def int_or_string(value: Any) -> str:
    """intstr.IntOrString.String()."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | str) else ""


def bool_ptr(value: Any) -> str:
    """printBoolPtr: "True"/"False", "<unset>" when nil."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def condition_true(conditions: list[Any], type_: str) -> bool:
    """Whether the first condition of `type_` has status "True"."""
    for c in conditions:
        if isinstance(c, dict) and c.get("type") == type_:
            return c.get("status") == "True"
    return False
