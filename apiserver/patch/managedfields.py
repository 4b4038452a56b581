"""metadata.managedFields: who owns which fields, kept up to date on every write.

Every create, update and non-apply patch is an `Update` operation: the fields it changed
(compared with the object before) move to its field manager, and are taken away from
everyone else; fields it removed are taken away from everyone. Server-side apply
(apiserver/patch/apply.py) is the other operation and shares this module's pieces.

This follows the layers of Kubernetes' field manager (k8s.io/apimachinery
util/managedfields/internal), each reduced to a function here:
- entries: `ManagedFieldsEntry` <-> `Entry`, keyed by the manager *identifier* (manager,
  operation, subresource, and apiVersion for updates), sorted on output by operation,
  time, manager, apiVersion, subresource;
- what a request may say: managedFields sent with an update are honoured when they
  decode; `[]` or `[{}]` resets them; otherwise the live object's are kept;
- an object whose managedFields are empty is not tracked by updates (only a create or an
  apply starts tracking again);
- identity and bookkeeping metadata (name, uid, resourceVersion...) is owned by nobody;
- reset fields (status on the main resource, spec on /status) are never owned;
- at most 10 Update entries: the oldest are merged into `ancient-changes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from apiserver.patch.fieldsets import (
    ABSENT,
    ASSOC,
    ATOMIC,
    DEDUCED,
    GRANULAR_MAPS,
    MAP,
    SET,
    STRUCT,
    FieldSet,
    Path,
    TypedError,
    child_schema,
    declared_shape,
    field_element,
    go_json,
    is_resource_root,
    item_element,
    items_schema,
    pair_shape,
)
from apiserver.schema import SchemaNode

Obj = dict[str, Any]
APPLY, UPDATE = "Apply", "Update"
BEFORE_FIRST_APPLY = "before-first-apply"
MAX_UPDATE_MANAGERS = 10
_ANCIENT_CHANGES = "ancient-changes"

# Fields nobody owns (stripMetaManager): a plain difference, so metadata's children stay.
STRIPPED = FieldSet(("f:apiVersion", "f:kind", "f:metadata"), {"f:metadata": FieldSet(
    "f:" + name for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                             "generation", "managedFields", "resourceVersion"))})


# --- comparing two objects ---------------------------------------------------------------

def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality (true is not 1; 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def is_empty(value: Any) -> bool:
    """Null, absent, {} or []: structured-merge-diff treats such a pair as one leaf."""
    return value is None or value is ABSENT or value == {} or value == []


def index_items(node: SchemaNode | None, shape: str, items: Any, path: Path) -> dict[str, Any]:
    """Elements of a set or map-list by path element; a repeated element keeps its first."""
    out: dict[str, Any] = {}
    for index, item in enumerate(items if isinstance(items, list) else ()):
        out.setdefault(item_element(node, shape, item, index, path), item)
    return out


class Comparison(NamedTuple):
    """Paths added, modified and removed going from one object to another."""

    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def changed(self) -> FieldSet:
        return self.added.union(self.modified)

    def excluding(self, ignored: FieldSet) -> Comparison:
        return Comparison(*(s.recursive_difference(ignored) for s in self))


def compare(old: Any, new: Any, schema: SchemaNode | None) -> Comparison:
    """What changed from `old` to `new` (typed.Compare): leaves that differ are modified;
    maps, map entries and list elements that appear or disappear are added or removed,
    together with everything below them."""
    result = Comparison(FieldSet(), FieldSet(), FieldSet())
    _compare(result, (), schema, old, new)
    return result


def _same_tree(old: Any, new: Any) -> bool:
    """Whether two maps or lists are certainly the same JSON value, decided in C: `==`
    first (it cannot tell true from 1, so never alone), then identical serialisations
    (which imply JSON equality; a false "no", e.g. for reordered keys, only costs the
    full walk). Unchanged subtrees (a status write's spec) then cost no Python walk."""
    if old is new:
        return True
    try:
        return old == new and orjson.dumps(old) == orjson.dumps(new)
    except (orjson.JSONEncodeError, TypeError):
        return False  # e.g. an integer beyond 64 bits: walk it


def _compare(result: Comparison, path: Path, node: SchemaNode | None, old: Any, new: Any) -> None:
    if type(old) is type(new) and isinstance(old, dict | list) and _same_tree(old, new):
        return  # nothing below changed: no path is added, modified or removed
    shape = pair_shape(node, old, new)
    if shape == ATOMIC or (is_empty(old) and is_empty(new)):
        if old is ABSENT:
            result.added.insert(path)
        elif new is ABSENT:
            result.removed.insert(path)
        elif not json_equal(old, new):
            result.modified.insert(path)
        return
    if shape in GRANULAR_MAPS:
        left = old if isinstance(old, dict) else {}
        right = new if isinstance(new, dict) else {}
        root = is_resource_root(path, node)
        for key in [*left, *(k for k in right if k not in left)]:
            child = child_schema(node if shape != DEDUCED else None, key, root=root)[0]
            _compare(result, path + (field_element(key),), child, left.get(key, ABSENT), right.get(key, ABSENT))
    else:
        left = index_items(node, shape, old, path)
        right = index_items(node, shape, new, path)
        for element in [*right, *(e for e in left if e not in right)]:
            _compare(result, path + (element,), items_schema(node), left.get(element, ABSENT),
                     right.get(element, ABSENT))
    if path and old is ABSENT:
        result.added.insert(path)
    elif path and new is ABSENT:
        result.removed.insert(path)


# --- entries ---------------------------------------------------------------------------

class ManagedFieldsError(ValueError):
    """managedFields that do not decode (DecodeManagedFields' errors)."""


@dataclass(frozen=True)
class Entry:
    """One managedFields entry, decoded."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identifier(self) -> str:
        return identifier(self.manager, self.operation, self.api_version, self.subresource)


Managed = dict[str, Entry]


def identifier(manager: str, operation: str, api_version: str = "", subresource: str = "") -> str:
    """BuildManagerIdentifier: the entry as JSON without fields and time, and without the
    apiVersion for appliers (so one applier is one entry whatever version it applies)."""
    entry = {"manager": manager, "operation": operation,
             "apiVersion": "" if operation == APPLY else api_version, "subresource": subresource}
    return go_json({k: v for k, v in entry.items() if v}, sort_keys=False)


def describe_manager(ident: str) -> str:
    """printManager: `"kubectl"`, `"kubelet" with subresource "status" using v1`."""
    entry = json.loads(ident)
    text = json.dumps(entry.get("manager", ""), ensure_ascii=False)
    if entry.get("subresource"):
        text += " with subresource " + json.dumps(entry["subresource"], ensure_ascii=False)
    if entry.get("operation") == UPDATE:
        text += " using " + entry.get("apiVersion", "")
    return text


def decode_managed_fields(entries: Any) -> Managed:
    """Decode metadata.managedFields; raises ManagedFieldsError with Kubernetes' wording."""
    managed: Managed = {}
    for index, raw in enumerate(entries or ()):
        if not isinstance(raw, dict):
            raise ManagedFieldsError(f"managed fields entry {index} is not an object")
        operation = raw.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        if not raw.get("apiVersion"):
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = raw.get("fieldsType") or ""
        if fields_type != "FieldsV1":
            raise ManagedFieldsError(f"invalid fieldsType {json.dumps(fields_type)} in managed fields entry {index}"
                                     if fields_type else f"missing fieldsType in managed fields entry {index}")
        try:
            fields = FieldSet.from_fields_v1(raw.get("fieldsV1") or {})
        except (ValueError, TypeError) as exc:
            raise ManagedFieldsError(f"error decoding versioned set: {exc}") from exc
        entry = Entry(raw.get("manager") or "", operation, raw["apiVersion"], fields,
                      raw.get("time"), raw.get("subresource") or "")
        managed[entry.identifier] = entry
    return managed


def _seconds(time: str | None) -> int:
    try:
        return int(datetime.fromisoformat((time or "").replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def encode_managed_fields(managed: Managed) -> list[Obj]:
    """Entries in Kubernetes' order: Apply before Update, then by time, manager, version."""
    ordered = sorted(managed.values(), key=lambda e: (e.operation, _seconds(e.time), e.manager,
                                                       e.api_version, e.subresource))
    out = []
    for entry in ordered:
        raw: Obj = {"manager": entry.manager, "operation": entry.operation, "apiVersion": entry.api_version}
        if entry.time:
            raw["time"] = entry.time
        raw["fieldsType"] = "FieldsV1"
        raw["fieldsV1"] = entry.fields.to_fields_v1()
        if entry.subresource:
            raw["subresource"] = entry.subresource
        out.append(raw)
    return out


def set_managed_fields(obj: Obj, managed: Managed) -> None:
    meta = obj.setdefault("metadata", {})
    entries = encode_managed_fields(managed)
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def without_managed_fields(obj: Obj) -> Obj:
    """A shallow copy of `obj` without metadata.managedFields (never compared or owned)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta} if "metadata" in obj or meta else dict(obj)


# --- reset fields and empty objects ------------------------------------------------------

def reset_fields(subresource: str, *, status_subresource: bool) -> FieldSet:
    """Fields a write through `subresource` can never own, because the registry resets
    them: status on the main resource of a kind with a status subresource, spec on it."""
    if subresource == "status":
        return FieldSet(("f:spec",))
    if subresource == "" and status_subresource:
        return FieldSet(("f:status",))
    return FieldSet()


def default_reset_fields(schema: SchemaNode | None, subresource: str) -> FieldSet:
    """reset_fields for a built-in kind (which has a status subresource when it has a
    status); custom resources should pass theirs, known from the CRD."""
    builtin_status = schema is not None and schema.ref_name is not None and "status" in schema.properties
    return reset_fields(subresource, status_subresource=builtin_status or subresource == "status")


def _zero(node: SchemaNode) -> Obj:
    out: Obj = {}
    for name in node.required:
        child = node.field(name)
        shape = declared_shape(child)
        if shape == STRUCT and child is not None:
            out[name] = _zero(child)
        elif shape in (MAP, SET, ASSOC) or (shape == ATOMIC and child is not None and child.type == "array"):
            out[name] = None
    return out


def as_typed(obj: Obj, schema: SchemaNode | None) -> Obj:
    """`obj` with the spec and status a typed object always has (shallow copy if needed)."""
    missing = {k: v for k, v in empty_object(schema).items() if k not in obj}
    return {**obj, **missing} if missing else obj


def empty_object(schema: SchemaNode | None) -> Obj:
    """What a create is compared with: a typed Kubernetes object always has its spec and
    status (and their required fields, structs or null), so creating one never adds those
    containers themselves. A custom resource starts empty."""
    if schema is None or schema.ref_name is None:
        return {}
    out: Obj = {}
    for name in ("spec", "status"):
        child = schema.field(name) if name in schema.properties else None
        if child is not None and declared_shape(child) == STRUCT:
            out[name] = _zero(child)
    return out


# --- taking ownership ---------------------------------------------------------------------

def conflicting(managed: Managed, changed: FieldSet, *, skip: str | None) -> dict[str, FieldSet]:
    """For every other manager, the changed fields it owns."""
    out = {}
    for ident, entry in managed.items():
        if ident != skip:
            owned = entry.fields.intersection(changed)
            if not owned.empty():
                out[ident] = owned
    return out


def disown(managed: Managed, lost: dict[str, FieldSet], removed: FieldSet, *, skip: str | None) -> Managed:
    """Take `lost` fields away from their managers and `removed` ones from everyone but
    `skip`; managers left with nothing disappear."""
    out: Managed = {}
    for ident, entry in managed.items():
        fields = entry.fields
        if ident != skip:
            fields = fields.difference(lost.get(ident, FieldSet())).difference(removed)
        if not fields.empty():
            out[ident] = entry if fields is entry.fields else replace(entry, fields=fields)
    return out


def record_update(managed: Managed, old: Obj, new: Obj, *, schema: SchemaNode | None, manager: str,
                  api_version: str, now: str, subresource: str, ignored: FieldSet) -> Managed:
    """An Update operation: what it changed becomes `manager`'s (merged into its entry for
    this apiVersion and subresource, whose time becomes `now`), and nobody else's."""
    diff = compare(as_typed(old, schema), as_typed(new, schema), schema).excluding(ignored)
    changed = diff.changed()
    managed = disown(managed, conflicting(managed, changed, skip=None), diff.removed, skip=None)
    taken = changed.difference(diff.removed).difference(STRIPPED)
    if taken.empty():
        return managed
    entry = Entry(manager or "unknown", UPDATE, api_version, taken, now, subresource)
    previous = managed.get(entry.identifier)
    if previous is not None:
        entry = replace(entry, fields=taken.union(previous.fields))
    managed[entry.identifier] = entry
    return managed


def cap_update_managers(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> Managed:
    """capManagersManager: merge the oldest Update entries into one `ancient-changes`
    entry per apiVersion until at most `limit` Update entries remain."""
    count = sum(1 for e in managed.values() if e.operation == UPDATE)
    if count <= limit:
        return managed  # the usual case: no need to parse times and sort
    updaters = sorted((e for e in managed.values() if e.operation == UPDATE),
                      key=lambda e: (_seconds(e.time), e.identifier))
    managed = dict(managed)
    first_of_version: dict[str, Entry] = {}
    for entry in updaters:
        if count <= limit:
            break
        first = first_of_version.setdefault(entry.api_version, entry)
        if first is entry:
            continue
        bucket_id = identifier(_ANCIENT_CHANGES, UPDATE, entry.api_version)
        bucket = managed.pop(bucket_id, None) or managed.pop(first.identifier)
        managed.pop(entry.identifier, None)
        managed[bucket_id] = Entry(_ANCIENT_CHANGES, UPDATE, entry.api_version,
                                   entry.fields.union(bucket.fields), entry.time)
        count -= 1
    return managed


# --- Update tracking ---------------------------------------------------------------------

def _is_reset(sent: Any) -> bool:
    """`managedFields: []` or `[{}]` asks to clear them."""
    return isinstance(sent, list) and (not sent or (len(sent) == 1 and isinstance(sent[0], dict)
                                                    and not any(sent[0].values())))


def _decode_or_empty(entries: Any) -> Managed:
    try:
        return decode_managed_fields(entries)
    except ManagedFieldsError:
        return {}


def _base_managed(old: Obj | None, sent: Any, subresource: str) -> Managed:
    """The managedFields an Update starts from: those the client sent when they decode and
    are not empty (never through a subresource), else the live object's."""
    live = ((old or {}).get("metadata") or {}).get("managedFields")
    if subresource:
        return _decode_or_empty(live)
    if _is_reset(sent):
        return {}
    managed = _decode_or_empty(None if sent is ABSENT else sent)
    return managed or _decode_or_empty(live)


def track_update(old: Obj | None, new: Obj, *, schema: SchemaNode | None, manager: str, api_version: str,
                 now: str, subresource: str = "", ignored_fields: FieldSet | None = None) -> None:
    """Set `new`'s metadata.managedFields after a create (`old` None), update or
    non-apply patch by `manager`. `ignored_fields` defaults to default_reset_fields."""
    meta = new.setdefault("metadata", {})
    managed = _base_managed(old, meta.pop("managedFields", ABSENT), subresource)
    if not managed and old is not None:
        return  # nothing tracked before: updates do not start tracking
    ignored = ignored_fields if ignored_fields is not None else default_reset_fields(schema, subresource)
    before = without_managed_fields(old) if old is not None else empty_object(schema)
    try:
        managed = record_update(managed, before, new, schema=schema, manager=manager, api_version=api_version,
                                now=now, subresource=subresource, ignored=ignored)
    except TypedError:
        return  # as UpdateNoErrors: an object the schema cannot type loses its managedFields
    set_managed_fields(new, cap_update_managers(managed))
