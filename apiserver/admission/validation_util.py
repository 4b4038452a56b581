"""Shared plumbing for validation: field paths, Go-style value rendering, small checks.

Kubernetes builds error messages with field.Error, which prints a bad value with Go's
`%#v` whenever it is not a plain string or number. That is why users see
`Invalid value: map[string]string{"app":"web"}: ...` or
`v1.LabelSelector{MatchLabels:..., MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
The shared `FieldError` renders such values as JSON, so for those few messages we use
`GoValueError`, a FieldError whose value text was already rendered the Go way by the
helpers below. Paths are plain strings built like field.Path: `child()` adds `.name`,
`index()` adds `[i]`, `key()` adds `[key]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apiserver.errors import FIELD_ERROR_TYPES, FieldError, invalid
from minikube_py.api.gostrings import go_quote

IS_NEGATIVE = "must be greater than or equal to 0"
IMMUTABLE = "field is immutable"



# --- paths ------------------------------------------------------------------------
def child(path: str, *names: str) -> str:
    parts = [path] if path else []
    return ".".join(parts + list(names))


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, name: str) -> str:
    return f"{path}[{name}]"


# --- Go-rendered values ------------------------------------------------------------
@dataclass
class GoValueError(FieldError):
    """A FieldError whose value is shown as `rendered` verbatim (Go's %#v text)."""

    rendered: str = ""

    def body(self) -> str:
        text = f"{FIELD_ERROR_TYPES[self.type][1]}: {self.rendered}"
        return f"{text}: {self.detail}" if self.detail else text


def invalid_go(field: str, rendered: str, detail: str) -> FieldError:
    return GoValueError("Invalid", field, rendered, detail, rendered=rendered)


def duplicate_go(field: str, rendered: str) -> FieldError:
    return GoValueError("Duplicate", field, rendered, "", rendered=rendered)


def not_supported_go(field: str, rendered: str, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(go_quote(s) for s in supported)
    return GoValueError("NotSupported", field, rendered, detail, rendered=rendered)


def too_many(field: str, actual: int, maximum: int) -> FieldError:
    items = "item" if maximum == 1 else "items"
    return GoValueError("TooMany", field, actual, f"must have at most {maximum} {items}", rendered=str(actual))


def not_found(field: str, value: Any) -> FieldError:
    return FieldError("NotFound", field, value)


def go_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "<nil>"
    return str(value)


def go_string_map(value: Any) -> str:
    """map[string]string as %#v prints it: keys sorted, `nil` when absent."""
    if not isinstance(value, dict):
        return "map[string]string(nil)"
    pairs = ", ".join(f"{go_quote(str(k))}:{go_scalar(v)}" for k, v in sorted(value.items()))
    return "map[string]string{" + pairs + "}"


def go_string_slice(value: Any, type_name: str = "[]string") -> str:
    if not isinstance(value, list):
        return f"{type_name}(nil)"
    return type_name + "{" + ", ".join(go_scalar(v) for v in value) + "}"


def go_label_selector(selector: Any) -> str:
    """A metav1.LabelSelector (dereferenced, as field.Error does for pointers)."""
    sel = selector if isinstance(selector, dict) else {}
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list):
        items = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            items.append(
                "v1.LabelSelectorRequirement{Key:" + go_quote(str(e.get("key", ""))) + ", Operator:"
                + go_quote(str(e.get("operator", ""))) + ", Values:" + go_string_slice(e.get("values")) + "}")
        rendered_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    else:
        rendered_exprs = "[]v1.LabelSelectorRequirement(nil)"
    return ("v1.LabelSelector{MatchLabels:" + go_string_map(sel.get("matchLabels"))
            + ", MatchExpressions:" + rendered_exprs + "}")


def go_int_or_string(value: Any) -> str:
    """intstr.IntOrString passed by value has no String method, so %#v shows the struct."""
    if isinstance(value, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}'
    number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}'


def go_struct(type_name: str, fields: list[tuple[str, str]]) -> str:
    return type_name + "{" + ", ".join(f"{name}:{text}" for name, text in fields) + "}"


# --- access helpers --------------------------------------------------------------
def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    """An integer field's value, or None when unset (bools are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# --- small checks -------------------------------------------------------------------
def nonnegative(value: Any, path: str) -> list[FieldError]:
    number = as_int(value)
    if number is not None and number < 0:
        return [invalid(path, number, IS_NEGATIVE)]
    return []


def immutable(new: Any, old: Any, path: str, rendered: str | None = None) -> list[FieldError]:
    """ValidateImmutableField; pass `rendered` when the value is a struct, map or list."""
    if new == old:
        return []
    if rendered is not None:
        return [invalid_go(path, rendered, IMMUTABLE)]
    return [invalid(path, new, IMMUTABLE)]


def validate_path_no_backsteps(target: str, path: str) -> list[FieldError]:
    if ".." in target.split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def validate_local_descending_path(target: str, path: str) -> list[FieldError]:
    """A relative path without `..` elements (subPath, gitRepo directory)."""
    errs = [invalid(path, target, "must be a relative path")] if target.startswith("/") else []
    return errs + validate_path_no_backsteps(target, path)


def validate_local_non_reserved_path(target: str, path: str) -> list[FieldError]:
    """ValidateLocalNonReservedPath (projection item paths): also may not start with '..'."""
    errs = validate_local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def spec_diff(type_name: str, old: Any, new: Any) -> str:
    """A short stand-in for the go-cmp diff Kubernetes appends to "is immutable" errors:
    one `-`/`+` line pair per changed top-level field."""
    old, new = as_dict(old), as_dict(new)
    lines = [f"  {type_name}{{"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        field = name[:1].upper() + name[1:]
        if name in old:
            lines.append(f"- \t{field}: {json.dumps(old[name], sort_keys=True)},")
        if name in new:
            lines.append(f"+ \t{field}: {json.dumps(new[name], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines)


def dedupe(errors: list[FieldError]) -> list[FieldError]:
    """Drop repeats (update validation meets metadata twice, as the Go registry does)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for err in errors:
        ident = (err.type, err.field, err.body())
        if ident not in seen:
            seen.add(ident)
            out.append(err)
    return out
