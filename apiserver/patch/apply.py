"""Server-side apply: merge an applied configuration into the live object by ownership.

`server_side_apply` is what `PATCH` with `application/apply-patch+yaml` does, following
structured-merge-diff's `Updater.Apply` and the layers Kubernetes puts around it:

1. merge the configuration into the live object by schema (map-lists by their keys,
   sets as sets, atomic values replaced, granular maps merged field by field);
2. the applier's field set becomes exactly what the configuration sets;
3. prune: fields the applier set last time, does not set now, and nobody else owns are
   removed from the object;
4. conflicts: a field another manager owns that this apply changes is a 409 Conflict,
   unless `force`, which moves it to the applier; fields removed by the apply are taken
   from everybody;
5. kubectl's upgrade path from client-side apply: for the manager `kubectl`, conflicts on
   fields whose live value still equals the last-applied-configuration annotation are
   forced, and an existing annotation is rewritten to the new configuration;
6. the applier's entry gets the time `now` only if the object actually changed.

An object with no managedFields first gets a `before-first-apply` Update entry owning all
its fields, so an apply cannot silently take over what was already there.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from apiserver import errors
from apiserver.patch.fieldsets import (
    ABSENT,
    ATOMIC,
    DEDUCED,
    GRANULAR_MAPS,
    SCALAR,
    FieldSet,
    Path,
    TypedError,
    child_schema,
    field_element,
    go_json,
    is_resource_root,
    item_element,
    items_schema,
    pair_shape,
    path_string,
    shape_of,
    to_field_set,
)
from apiserver.patch.managedfields import (
    APPLY,
    BEFORE_FIRST_APPLY,
    STRIPPED,
    Entry,
    Managed,
    ManagedFieldsError,
    compare,
    conflicting,
    decode_managed_fields,
    default_reset_fields,
    describe_manager,
    disown,
    empty_object,
    identifier,
    is_empty,
    json_equal,
    record_update,
    set_managed_fields,
    without_managed_fields,
)
from apiserver.schema import SchemaNode

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024


class _Conflicts(Exception):
    def __init__(self, conflicts: dict[str, FieldSet]) -> None:
        super().__init__("conflicts")
        self.conflicts = conflicts


# --- merging ---------------------------------------------------------------------------

def merge(live: Any, config: Any, schema: SchemaNode | None, path: Path = ()) -> Any:
    """The live value with the applied configuration merged in (typed.Merge). Shares
    unchanged subtrees with `live`."""
    if config is ABSENT:
        return live
    shape = pair_shape(schema, live, config)
    if shape == ATOMIC or (is_empty(live) and is_empty(config)):
        return copy.deepcopy(config)
    if shape in GRANULAR_MAPS:
        return _merge_map(live, config, schema, shape, path)
    return _merge_list(live, config, schema, shape, path)


def _merge_map(live: Any, config: Any, node: SchemaNode | None, shape: str, path: Path) -> Obj:
    left = live if isinstance(live, dict) else {}
    right = config if isinstance(config, dict) else {}
    root = is_resource_root(path, node)
    out: Obj = {}
    for key in [*left, *(k for k in right if k not in left)]:
        child = child_schema(node if shape != DEDUCED else None, key, root=root)[0]
        value = merge(left.get(key, ABSENT), right.get(key, ABSENT), child, path + (field_element(key),))
        if value is not ABSENT:
            out[key] = value
    return out


def _drop_nulls(obj: Obj, config: Obj) -> None:
    """Drop what the configuration set to null: a typed object has no null scalars (and a
    custom resource's non-nullable nulls are pruned)."""
    for key, value in config.items():
        if value is None and obj.get(key, 0) is None:
            del obj[key]
        elif isinstance(value, dict) and isinstance(obj.get(key), dict):
            _drop_nulls(obj[key], value)


def _merge_list(live: Any, config: Any, node: SchemaNode | None, shape: str, path: Path) -> list[Any]:
    """Elements of both, in an order that keeps the configuration's order for the ones it
    lists and each live-only element after the element it followed."""
    right = [(item_element(node, shape, item, i, path), item) for i, item in enumerate(config or ())]
    left: list[tuple[str | None, Any]] = []
    in_left: dict[str, Any] = {}
    for index, item in enumerate(live if isinstance(live, list) else ()):
        element = item_element(node, shape, item, index, path)
        left.append((None if element in in_left else element, item))  # a repeat stays as it is
        in_left.setdefault(element, item)
    in_right = dict(right)
    shared = [e for e, _ in right if e in in_left]
    out: list[Any] = []
    done: set[str] = set()
    li = ri = si = 0

    def take(element: str) -> None:
        nonlocal si
        out.append(merge(in_left.get(element, ABSENT), in_right[element], items_schema(node), path + (element,)))
        done.add(element)
        if si < len(shared) and shared[si] == element:
            si += 1

    while li < len(left) or ri < len(right):
        if li < len(left):
            element, item = left[li]
            if element is not None and element in done:
                li += 1
                continue
            if ri < len(right) and element == right[ri][0]:
                take(element)
                li, ri = li + 1, ri + 1
                continue
            if element is None or element not in in_right:
                out.append(item)
                li += 1
                continue
            if ri >= len(right) or (si < len(shared) and shared[si] != element):
                li += 1  # merged later, where the configuration puts it
                continue
        take(right[ri][0])
        ri += 1
    return out


# --- pruning ---------------------------------------------------------------------------

def ensure_named_fields(fields: FieldSet, schema: SchemaNode | None, path: Path = ()) -> FieldSet:
    """EnsureNamedFieldsAreMembers: a struct field with owned children is owned itself."""
    members = set(fields.members)
    children = {}
    root = is_resource_root(path, schema)
    for element, sub in fields.children.items():
        if element.startswith("f:"):
            child, named, _ = child_schema(schema, element[2:], root=root)
            if named:
                members.add(element)
        else:
            child = items_schema(schema)
        children[element] = ensure_named_fields(sub, child, path + (element,))
    return FieldSet(members, children)


def remove_items(value: Any, fields: FieldSet, schema: SchemaNode | None, path: Path = ()) -> Any:
    """`value` without the paths in `fields` (and what is below them); a map or list left
    empty by the removal is itself removed (ABSENT)."""
    shape = shape_of(schema, value)
    if shape in (SCALAR, ATOMIC) or is_empty(value):
        return value
    kept: Any
    if shape in GRANULAR_MAPS:
        root = is_resource_root(path, schema)
        kept = {}
        for key, child_value in value.items():
            element = field_element(key)
            if element in fields.members:
                continue
            if element in fields.children:
                child = child_schema(schema if shape != DEDUCED else None, key, root=root)[0]
                child_value = remove_items(child_value, fields.children[element], child, path + (element,))
            if child_value is not ABSENT:
                kept[key] = child_value
    else:
        kept = []
        for index, item in enumerate(value):
            element = item_element(schema, shape, item, index, path)
            if element in fields.members:
                continue
            if element in fields.children:
                item = remove_items(item, fields.children[element], items_schema(schema), path + (element,))
            if item is not ABSENT:
                kept.append(item)
    return kept if kept else ABSENT


def _prune(merged: Obj, managed: Managed, last: FieldSet, schema: SchemaNode | None) -> Obj:
    """Remove what the applier owned last time and nobody (the applier included) owns now."""
    def named(fields: FieldSet) -> FieldSet:
        return ensure_named_fields(fields, schema)

    def without(fields: FieldSet) -> Obj:
        result = remove_items(merged, fields, schema)
        return {} if result is ABSENT else result

    last = named(last)
    merged_set = named(to_field_set(merged, schema))
    owned = FieldSet()
    for entry in managed.values():
        owned = owned.union(named(entry.fields))
    pruned = without(last)
    # add back whatever somebody owns, then remove only what the applier used to own
    pruned = without(merged_set.difference(named(to_field_set(pruned, schema)).union(owned)))
    return without(merged_set.difference(named(to_field_set(pruned, schema))).intersection(last))


# --- applying --------------------------------------------------------------------------

def _apply(live: Obj, config: Obj, managed: Managed, entry: Entry, schema: SchemaNode | None,
           ignored: FieldSet, force: bool) -> tuple[Obj, Managed]:
    applied_set = to_field_set(config, schema, strict=True)
    merged = merge(live, config, schema)
    managed = dict(managed)
    last = managed.get(entry.identifier)
    entry = replace(entry, fields=applied_set.recursive_difference(ignored), time=last.time if last else None)
    managed[entry.identifier] = entry
    if last is not None and not last.fields.empty():
        merged = _prune(merged, managed, last.fields, schema)
    diff = compare(live, merged, schema).excluding(ignored)
    conflicts = conflicting(managed, diff.changed(), skip=entry.identifier)
    if conflicts and not force:
        raise _Conflicts(conflicts)
    managed = disown(managed, conflicts, diff.removed, skip=entry.identifier)
    mine = entry.fields.difference(STRIPPED)
    if mine.empty():
        managed.pop(entry.identifier, None)
    else:
        managed[entry.identifier] = replace(entry, fields=mine)
    return merged, managed


def conflict_error(conflicts: dict[str, FieldSet]) -> errors.StatusError:
    """409 Conflict as NewConflictError words it, one FieldManagerConflict cause per field."""
    found = [(ident, path) for ident in sorted(conflicts) for path in conflicts[ident].paths()]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {describe_manager(ident)}",
               "field": path_string(path)} for ident, path in found]
    if len(found) == 1:
        ident, path = found[0]
        message = f"Apply failed with 1 conflict: conflict with {describe_manager(ident)}: {path_string(path)}"
    else:
        lines = []
        for ident in sorted(conflicts):
            lines.append(f"conflicts with {describe_manager(ident)}:")
            lines.extend(f"- {path_string(path)}" for path in conflicts[ident].paths())
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, details={"causes": causes})


def _allowed_by_last_applied(live: Obj, schema: SchemaNode | None, api_version: str) -> FieldSet | None:
    """Fields of the last-applied-configuration whose live value is still the one it set:
    `kubectl apply --server-side` may take those over from client-side apply."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    try:
        fields, diff = to_field_set(last, schema), compare(last, live, schema)
    except TypedError:
        return None
    return fields.difference(diff.modified).difference(diff.added).difference(diff.removed)


def _apply_upgrading(live: Obj, config: Obj, managed: Managed, entry: Entry, schema: SchemaNode | None,
                     ignored: FieldSet, force: bool) -> tuple[Obj, Managed]:
    try:
        return _apply(live, config, managed, entry, schema, ignored, force)
    except _Conflicts as exc:
        allowed = _allowed_by_last_applied(live, schema, entry.api_version) if entry.manager == "kubectl" else None
        if allowed is None:
            raise conflict_error(exc.conflicts) from None
        remaining = {i: f.difference(allowed) for i, f in exc.conflicts.items()}
        remaining = {i: f for i, f in remaining.items() if not f.empty()}
        if remaining:
            raise conflict_error(remaining) from None
    return _apply(live, config, managed, entry, schema, ignored, True)


def _sync_last_applied(obj: Obj, config: Obj) -> None:
    """lastAppliedUpdater: keep an existing client-side apply annotation in step with what
    `kubectl` server-side applies, so going back to client-side apply works."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(LAST_APPLIED):
        return
    config = copy.deepcopy(config)
    own = (config.get("metadata") or {}).get("annotations")
    if isinstance(own, dict):
        own.pop(LAST_APPLIED, None)
    annotations = {**annotations, LAST_APPLIED: go_json(config) + "\n"}
    if sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items()) > _ANNOTATIONS_SIZE_LIMIT:
        del annotations[LAST_APPLIED]
    obj["metadata"]["annotations"] = annotations


def _gvk(obj: Obj) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return f"{api_version if '/' in api_version else '/' + api_version}, Kind={obj.get('kind', '')}"


def _gvk_name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}; {_gvk(obj)}"


def _check_config(live: Obj | None, config: Obj, api_version: str) -> None:
    if not isinstance(config, dict):
        raise errors.bad_request("the applied configuration must be an object")
    if (config.get("metadata") or {}).get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    if config.get("apiVersion") != api_version:
        raise errors.bad_request("Incorrect version specified in apply patch. Specified patch version: "
                                 f"{config.get('apiVersion', '')}, expected: {api_version}")
    if live is not None and live.get("kind") and config.get("kind") != live.get("kind"):
        raise errors.bad_request(f"invalid object type: {_gvk(config)}")


def server_side_apply(live: Obj | None, applied: Obj, *, schema: SchemaNode | None, manager: str,
                      api_version: str, force: bool, now: str, subresource: str = "",
                      ignored_fields: FieldSet | None = None) -> Obj:
    """The object after `manager` applies `applied` (a new dict; inputs are not changed),
    with metadata.managedFields updated. `live` None creates. Raises StatusError: 409
    Conflict, 400 for a bad configuration, 500 (reason unset) for one that does not fit
    the schema, as Kubernetes does. `ignored_fields` defaults to default_reset_fields."""
    _check_config(live, applied, api_version)
    ignored = ignored_fields if ignored_fields is not None else default_reset_fields(schema, subresource)
    try:
        managed = decode_managed_fields(((live or {}).get("metadata") or {}).get("managedFields"))
    except ManagedFieldsError as exc:
        raise errors.StatusError(500, "", f"failed to decode managed fields: {exc}") from None
    current = copy.deepcopy(without_managed_fields(live)) if live is not None else {}
    try:
        to_field_set(applied, schema, strict=True)
    except TypedError as exc:
        raise errors.StatusError(500, "", f"failed to create typed patch object ({_gvk_name(applied)}): {exc}") \
            from None
    entry = Entry(manager or "unknown", APPLY, api_version, FieldSet(), subresource=subresource)
    try:
        if not managed and live is not None:
            managed = record_update(managed, empty_object(schema), current, schema=schema,
                                    manager=BEFORE_FIRST_APPLY, api_version=api_version, now=now,
                                    subresource=subresource, ignored=ignored)
        merged, managed = _apply_upgrading(current, applied, managed, entry, schema, ignored, force)
    except TypedError as exc:
        raise errors.StatusError(500, "", f"failed to create typed live object ({_gvk_name(current)}): {exc}") \
            from None
    ident = identifier(entry.manager, APPLY, subresource=subresource)
    _drop_nulls(merged, applied)
    if json_equal(merged, current):
        merged = current  # a no-op apply leaves the object and its time alone
    elif ident in managed:
        managed[ident] = replace(managed[ident], time=now)
    if entry.manager == "kubectl":
        _sync_last_applied(merged, applied)
    set_managed_fields(merged, managed)
    return merged
