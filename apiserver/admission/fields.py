"""Strict field validation (`fieldValidation=Strict|Warn|Ignore`) for built-in kinds.

kube-apiserver decodes a built-in object into its Go struct with a strict JSON decoder
(sigs.k8s.io/json): a field the struct does not have, or a key given twice, is recorded
with its path (`spec.template.spec.containers[0].imagez`) instead of being silently
dropped. With `fieldValidation=Strict` (kubectl's default for create/apply/edit) the
request fails with 400 `... cannot be handled as a Deployment: strict decoding error:
unknown field "spec.replicaz"`; with `Warn` the same texts come back as `Warning`
headers; `Ignore` drops them. We have no Go structs, so the walk follows the kind's
schema instead: properties are fields, `additionalProperties` is a map, and free-form
nodes (RawExtension, JSON, x-kubernetes-preserve-unknown-fields) accept anything.

Custom resources report unknown fields through pruning (`apiserver.crd.pruning`), with
the same path format, and reuse the error builders here.
"""

from __future__ import annotations

import json
from typing import Any

from apiserver.errors import StatusError, bad_request, invalid, invalid_object
from apiserver.patch.mergepatch import go_value as go_format  # Go fmt %v of decoded JSON
from apiserver.schema import SchemaNode


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _free_form(node: SchemaNode) -> bool:
    """Anything goes here: a preserve-unknown-fields node, or an object type with neither
    properties nor additionalProperties (RawExtension, FieldsV1 keep raw JSON)."""
    if node.preserve_unknown_fields or node.embedded_resource:
        return True
    return node.type == "object" and not node.properties and "additionalProperties" not in node.raw


def _walk_as(node: SchemaNode) -> str:
    """How the walk treats values at `node`: 'free', 'object', 'array' or 'leaf'. Kept on
    the node (built-in schema nodes are shared, see SchemaNode._children)."""
    walk = node.memo.get("fields.walk")
    if walk is None:
        walk = "free" if _free_form(node) else node.type if node.type in ("object", "array") else "leaf"
        node.memo["fields.walk"] = walk
    return walk


def _walk(value: Any, node: SchemaNode, parts: list[str], found: list[str]) -> None:
    """`parts` is the path so far as segments (`spec`, `.template`, `[0]`); it is joined
    only for the fields reported."""
    walk = _walk_as(node)
    if walk == "free":
        return
    if isinstance(value, dict):
        if walk != "object":
            return  # a type mismatch is a decoding error, not an unknown field
        for key, child in value.items():
            parts.append(f".{key}" if parts else key)
            child_node = node.field(key)
            if child_node is None:
                found.append("".join(parts))
            else:
                _walk(child, child_node, parts, found)
            parts.pop()
    elif isinstance(value, list) and walk == "array":
        items = node.items()
        if items is not None:
            for index, child in enumerate(value):
                parts.append(f"[{index}]")
                _walk(child, items, parts, found)
                parts.pop()


def unknown_fields(obj: dict[str, Any], schema: SchemaNode) -> list[str]:
    """Paths of the fields of `obj` its schema does not declare, in document order,
    formatted as the strict decoder reports them: `spec.replicaz`,
    `spec.template.spec.containers[0].imagez`, `metadata.labelz`. The walk does not
    descend into an unknown field."""
    found: list[str] = []
    _walk(obj, schema, [], found)
    return found


class _Object(dict):
    """A decoded JSON object that remembers the keys it saw more than once."""

    __slots__ = ("duplicates",)


def _remember_duplicates(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value  # the last value wins, as in Go
    return obj


def _collect_duplicates(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Object):
        found.extend(_join(path, key) for key in value.duplicates)
        for key, child in value.items():
            _collect_duplicates(child, _join(path, key), found)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _collect_duplicates(child, f"{path}[{index}]", found)


def duplicate_fields(raw_json: bytes | str) -> list[str]:
    """Paths of keys given twice in a JSON body (`metadata.name`). Bodies that are not
    JSON (YAML) yield no paths: duplicate YAML keys fail YAML decoding itself."""
    try:
        doc = json.loads(raw_json, object_pairs_hook=_remember_duplicates)
    except (ValueError, TypeError):
        return []
    found: list[str] = []
    _collect_duplicates(doc, "", found)
    return found


def strict_errors(unknown: list[str], duplicates: list[str] = ()) -> list[str]:
    """The strict decoder's messages: `duplicate field "x"`, `unknown field "spec.y"`."""
    return [f'duplicate field "{p}"' for p in duplicates] + [f'unknown field "{p}"' for p in unknown]


def field_validation_warnings(unknown: list[str], duplicates: list[str] = ()) -> list[str]:
    """`fieldValidation=Warn`: one `Warning` header text per problem, e.g.
    `unknown field "spec.replicaz"` (sent as `299 - "unknown field \\"spec.replicaz\\""`)."""
    return strict_errors(unknown, duplicates)


def field_validation_error(unknown: list[str], *, kind: str = "", version: str = "",
                           duplicates: list[str] = ()) -> StatusError:
    """`fieldValidation=Strict` on create/update: 400 BadRequest worded as the
    apiserver's decoder, e.g. `Deployment in version "v1" cannot be handled as a
    Deployment: strict decoding error: unknown field "spec.replicaz"`."""
    message = "strict decoding error: " + ", ".join(strict_errors(unknown, duplicates))
    if kind:
        message = f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
    return bad_request(message)


def patch_field_validation_error(unknown: list[str], patch: Any, *,
                                 duplicates: list[str] = ()) -> StatusError:
    """`fieldValidation=Strict` on a merge or strategic-merge patch: kube-apiserver
    answers 422 with the patch (printed as a Go map) as the invalid value, e.g.
    `patch: Invalid value: "map[spec:map[replicaz:3]]": strict decoding error: ...`."""
    detail = "strict decoding error: " + ", ".join(strict_errors(unknown, duplicates))
    return invalid_object("", "", "", [invalid("patch", go_format(patch), detail)])


