"""Pruning: dropping the fields of a custom resource its schema does not declare.

Since apiextensions.k8s.io/v1 every CRD prunes: a field the structural schema does not
know is removed on create, update and patch (and on read from storage), except below
`x-kubernetes-preserve-unknown-fields: true`. The removed paths double as the unknown
fields `fieldValidation=Strict` rejects and `Warn` reports, so they are returned, in the
strict decoder's path format (`spec.foo`, `spec.items[0].bar`, `spec.map.key.baz`).

apiVersion, kind and metadata are left alone at the root and in every
`x-kubernetes-embedded-resource` object; their metadata is instead trimmed to the fields
of ObjectMeta (an unknown `metadata.foo` is dropped and reported too), as apiextensions'
objectmeta coercion does.
"""

from __future__ import annotations

from typing import Any

from apiserver.crd.structural import (
    META_FIELDS,
    Schema,
    additional,
    child,
    items,
    preserves_unknown,
    properties,
)
from apiserver.schema import SchemaNode

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _drop_all(value: dict[str, Any], path: str, pruned: list[str]) -> None:
    for name in list(value):
        pruned.append(child(path, name))
        del value[name]


def _prune(value: Any, s: Schema | None, path: str, pruned: list[str], embedded: bool) -> None:
    if s is not None and preserves_unknown(s):
        _skip_prune(value, s, path, pruned, embedded)
        return
    if isinstance(value, dict):
        if s is None:
            _drop_all(value, path, pruned)
            return
        props = properties(s)
        is_map, values_schema = additional(s)
        for name in list(value):
            if embedded and name in META_FIELDS:
                continue
            if name in props:
                _prune(value[name], props[name], child(path, name), pruned, _embeds(props[name]))
            elif is_map:
                _prune(value[name], values_schema, child(path, name), pruned, _embeds(values_schema))
            else:
                if name not in META_FIELDS or path:
                    pruned.append(child(path, name))
                del value[name]
    elif isinstance(value, list):
        item_schema = items(s) if s is not None else None
        for index, item in enumerate(value):
            _prune(item, item_schema, f"{path}[{index}]", pruned, _embeds(item_schema))


def _skip_prune(value: Any, s: Schema, path: str, pruned: list[str], embedded: bool) -> None:
    """Below preserve-unknown-fields unknown keys stay, but declared ones are still pruned."""
    if isinstance(value, dict):
        props = properties(s)
        is_map, values_schema = additional(s)
        for name in list(value):
            if embedded and name in META_FIELDS:
                continue
            if name in props:
                _prune(value[name], props[name], child(path, name), pruned, _embeds(props[name]))
            elif is_map:
                _prune(value[name], values_schema, child(path, name), pruned, _embeds(values_schema))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _prune(item, items(s), f"{path}[{index}]", pruned, _embeds(items(s)))


def _embeds(s: Schema | None) -> bool:
    return bool((s or {}).get("x-kubernetes-embedded-resource"))


def _prune_object_meta(value: Any, node: SchemaNode, path: str, pruned: list[str]) -> None:
    """Trim metadata to ObjectMeta's fields (free-form parts such as fieldsV1 stay)."""
    if isinstance(value, dict) and node.type == "object" and (node.properties or "additionalProperties" in node.raw):
        for name in list(value):
            sub = node.field(name)
            if sub is None:
                pruned.append(child(path, name))
                del value[name]
            else:
                _prune_object_meta(value[name], sub, child(path, name), pruned)
    elif isinstance(value, list) and node.type == "array":
        sub = node.items()
        if sub is not None:
            for index, item in enumerate(value):
                _prune_object_meta(item, sub, f"{path}[{index}]", pruned)


def _resource_metadata(value: Any, s: Schema | None, path: str, pruned: list[str], root: bool) -> None:
    """Find the root and every embedded resource, and trim their metadata."""
    if isinstance(value, dict):
        if (root or _embeds(s)) and isinstance(value.get("metadata"), dict):
            _prune_object_meta(value["metadata"], SchemaNode.named(_OBJECT_META), child(path, "metadata"), pruned)
        if s is None or preserves_unknown(s) and not properties(s):
            return
        props = properties(s)
        _, values_schema = additional(s)
        for name, item in value.items():
            if name != "metadata" or not (root or _embeds(s)):
                _resource_metadata(item, props.get(name, values_schema), child(path, name), pruned, False)
    elif isinstance(value, list) and s is not None:
        for index, item in enumerate(value):
            _resource_metadata(item, items(s), f"{path}[{index}]", pruned, False)


def prune(obj: Any, schema: Schema | None, *, resource_root: bool = True) -> list[str]:
    """Remove, in place, every field of `obj` that `schema` (its version's openAPIV3Schema)
    does not declare; return the removed paths, sorted. At a resource root (the default)
    apiVersion, kind and metadata are kept and metadata is trimmed to ObjectMeta. A
    missing schema (preserveUnknownFields) prunes nothing but metadata."""
    pruned: list[str] = []
    if schema is not None:
        _prune(obj, schema, "", pruned, embedded=resource_root or _embeds(schema))
    _resource_metadata(obj, schema, "", pruned, resource_root)
    return sorted(pruned)
