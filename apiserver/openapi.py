"""The OpenAPI v3 documents served at /openapi/v3 (and the data /openapi/v2 derives from).

kubectl 1.32 reads these for three things: `explain` (the schemas in
`components.schemas`, found by their `x-kubernetes-group-version-kind`), strict field
validation (it only sends `fieldValidation=Strict` if the kind's path item has a `patch`
operation with the kind's GVK and a `fieldValidation` query parameter, else it falls back
to /openapi/v2 and fails), and strategic-merge-patch metadata for `apply`/`edit`.

Built-in schemas come from the Kubernetes 1.32 definitions (`apiserver.schema`), which
are stored in JSON-schema form (`type: [string, null]`, `$ref: #/$defs/...`); they are
turned back into the shape kube-apiserver emits: one `type`, refs to
`#/components/schemas/...`, a ref with sibling keys wrapped in `allOf` (kube-openapi's
`wrapRefs`), IntOrString as `format: int-or-string` with `oneOf` integer/string and
Quantity as `oneOf` string/number. Custom resources get their version's
`openAPIV3Schema` plus apiVersion/kind/metadata and a List kind, as the apiextensions
OpenAPI builder adds them, under reversed-group names (`com.example.stable.v1.CronTab`).

Documents are cached per group-version under a fingerprint of the resources served in
it, so a changed CRD yields a new document (and a new `?hash=` in the index) while
unchanged group-versions cost a dictionary lookup.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from apiserver.registry.resource import ResourceInfo
from apiserver.schema import definition_name, definitions

REF_PREFIX = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SERVER_VERSION = "v1.32.4"

# The two definitions the JSON-schema data rewrote; restored to kube-apiserver's v3 form.
_SPECIAL: dict[str, dict[str, Any]] = {
    _INT_OR_STRING: {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
    _QUANTITY: {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


# --- schemas ---------------------------------------------------------------------------
def _primary_type(raw: Any) -> str | None:
    if isinstance(raw, list):
        types = [t for t in raw if t != "null"]
        return types[0] if types else None
    return raw


def _ref_node(ref: str, siblings: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` with sibling keys is wrapped in allOf, as kube-openapi's wrapRefs does."""
    return {"allOf": [{"$ref": ref}], **siblings} if siblings else {"$ref": ref}


def _convert_builtin(node: dict[str, Any]) -> dict[str, Any]:
    """One node of the JSON-schema data in OpenAPI v3 form."""
    if "$ref" in node:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _ref_node(REF_PREFIX + node["$ref"].rsplit("/", 1)[-1], siblings)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            primary = _primary_type(value)
            if primary:
                out["type"] = primary
        elif key == "properties":
            out["properties"] = {
                name: _convert_builtin(
                    # The data adds apiVersion/kind enums kube-apiserver never publishes.
                    {k: v for k, v in prop.items() if k != "enum"} if name in ("apiVersion", "kind") else prop)
                for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert_builtin(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [_convert_builtin(v) for v in value]
        else:
            out[key] = value
    return out


@functools.cache
def builtin_schema(name: str) -> dict[str, Any]:
    """The v3 schema of one built-in definition (shared: never mutate it)."""
    raw = definitions()[name]
    if name in _SPECIAL:
        extra = {"description": raw["description"]} if raw.get("description") else {}
        return {**extra, **_SPECIAL[name]}
    return _convert_builtin(raw)


def _refs_in(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX):])
        for value in node.values():
            _refs_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs_in(value, found)


def _add_reachable(schemas: dict[str, Any], roots: list[str]) -> None:
    """Add every built-in definition reachable from `roots` and from `schemas`."""
    pending = set(roots)
    for schema in list(schemas.values()):
        _refs_in(schema, pending)
    all_defs = definitions()
    while pending:
        name = pending.pop()
        if name in schemas or name not in all_defs:
            continue
        schemas[name] = builtin_schema(name)
        _refs_in(schemas[name], pending)


# --- custom resources ------------------------------------------------------------------
def crd_definition_name(group: str, version: str, kind: str) -> str:
    """`stable.example.com`, `v1`, `CronTab` -> `com.example.stable.v1.CronTab`."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def _resource_meta() -> dict[str, Any]:
    """apiVersion, kind and metadata as every built-in kind documents them."""
    props = builtin_schema("io.k8s.api.apps.v1.Deployment")["properties"]
    return {name: props[name] for name in ("apiVersion", "kind", "metadata")}


def _crd_node(node: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema node for publishing; embedded resources get TypeMeta and metadata."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: _crd_node(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _crd_node(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_crd_node(v) for v in value]
        elif key not in ("$schema", "id", "definitions", "$ref", "example", "externalDocs"):
            out[key] = value
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for name, schema in _resource_meta().items():
            props.setdefault(name, schema)
    return out


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def crd_version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    for v in crd.get("spec", {}).get("versions", []):
        if v.get("name") == version:
            return (v.get("schema") or {}).get("openAPIV3Schema")
    return None


def _crd_schemas(info: ResourceInfo, version: str) -> dict[str, dict[str, Any]]:
    """The kind and List-kind schemas of a custom resource, as apiextensions builds them."""
    assert info.crd is not None
    name = crd_definition_name(info.group, version, info.kind)
    raw = crd_version_schema(info.crd, version)
    if raw is None:
        kind_schema: dict[str, Any] = {"type": "object"}
    else:
        kind_schema = _crd_node(raw)
        kind_schema.setdefault("properties", {}).update(_resource_meta())
    kind_schema["x-kubernetes-group-version-kind"] = [_gvk(info.group, version, info.kind)]
    list_meta = builtin_schema("io.k8s.api.apps.v1.DeploymentList")["properties"]["metadata"]
    items_doc = (f"List of {info.plural}. More info: "
                 "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md")
    list_schema = {
        "description": f"{info.list_kind} is a list of {info.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": _resource_meta()["apiVersion"], "kind": _resource_meta()["kind"],
            "items": {"type": "array", "description": items_doc, "items": {"$ref": REF_PREFIX + name}},
            "metadata": list_meta,
        },
        "x-kubernetes-group-version-kind": [_gvk(info.group, version, info.list_kind)],
    }
    return {name: kind_schema, crd_definition_name(info.group, version, info.list_kind): list_schema}


def kind_schema_names(info: ResourceInfo, version: str) -> tuple[str | None, str | None]:
    """The component names of (kind, list kind) for a served version."""
    if info.crd is not None:
        return (crd_definition_name(info.group, version, info.kind),
                crd_definition_name(info.group, version, info.list_kind))
    return (definition_name(info.group, version, info.kind),
            definition_name(info.group, version, info.list_kind))


# --- documents -------------------------------------------------------------------------
def gv_path(group: str, version: str) -> str:
    """`api/v1` or `apis/apps/v1`: the key of a group-version in the /openapi/v3 index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def served_group_versions(resources: list[ResourceInfo]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for info in resources:
        for version in info.versions:
            seen[(info.group, version)] = None
    return list(seen)


def _in_gv(resources: list[ResourceInfo], group: str, version: str) -> list[ResourceInfo]:
    return [r for r in resources if r.group == group and version in r.versions]


def _fingerprint(members: list[ResourceInfo], version: str) -> bytes:
    rows = [[r.kind, r.plural, r.namespaced, r.subresources, r.verbs,
             r.crd and r.crd.get("spec", {}).get("names"),
             r.crd and crd_version_schema(r.crd, version)] for r in members]
    return hashlib.sha256(orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)).digest()


def _build_group_version(members: list[ResourceInfo], group: str, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    roots = [_META + n for n in ("APIResourceList", "DeleteOptions", "Status", "WatchEvent", "Patch")]
    for info in members:
        if info.crd is not None:
            schemas.update(_crd_schemas(info, version))
        else:
            roots += [n for n in kind_schema_names(info, version) if n]
        if "scale" in info.subresources:
            roots.append("io.k8s.api.autoscaling.v1.Scale")
    _add_reachable(schemas, roots)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": group_version_paths(members, group, version),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"BearerToken": {
                "type": "apiKey", "description": "Bearer Token authentication",
                "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    }


# (group, version) -> (fingerprint, document, JSON bytes, hash)
_cache: dict[tuple[str, str], tuple[bytes, dict[str, Any], bytes, str]] = {}


def _cached(resources: list[ResourceInfo], group: str, version: str) -> tuple[dict[str, Any], bytes, str]:
    members = _in_gv(resources, group, version)
    key = _fingerprint(members, version)
    hit = _cache.get((group, version))
    if hit is None or hit[0] != key:
        doc = _build_group_version(members, group, version)
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        # kube-apiserver's hash: upper-case hex SHA-512 of the document.
        hit = (key, doc, body, hashlib.sha512(body).hexdigest().upper())
        _cache[(group, version)] = hit
    return hit[1], hit[2], hit[3]


def openapi_v3_group_version(resources: list[ResourceInfo], group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (cached; do not mutate it)."""
    return _cached(resources, group, version)[0]


def openapi_v3_group_version_json(resources: list[ResourceInfo], group: str,
                                  version: str) -> tuple[bytes, str]:
    """The same document serialised, with its hash (for ETag and the `?hash=` check)."""
    _, body, digest = _cached(resources, group, version)
    return body, digest


def openapi_v3_index(resources: list[ResourceInfo]) -> dict[str, Any]:
    """The /openapi/v3 discovery document: one entry per served group-version."""
    paths = {}
    for group, version in served_group_versions(resources):
        _, digest = openapi_v3_group_version_json(resources, group, version)
        key = gv_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": dict(sorted(paths.items()))}


# --- paths -----------------------------------------------------------------------------
_QUERY: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events while watching."),
    "continue": ("string", "The continue token returned with the previous page of a list."),
    "dryRun": ("string", "Run admission and validation but persist nothing; the only value is All."),
    "fieldManager": ("string", "The name of the actor making the change, recorded in managedFields."),
    "fieldSelector": ("string", "Return only objects whose fields match this selector."),
    "fieldValidation": ("string", "What to do with unknown and duplicate fields: Ignore, Warn or Strict."),
    "force": ("boolean", "For apply patches: take over fields other managers own."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 deletes at once."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean", "Delete an object that cannot be read from storage."),
    "labelSelector": ("string", "Return only objects whose labels match this selector."),
    "limit": ("integer", "The largest number of objects to return in one page."),
    "orphanDependents": ("boolean", "Deprecated; use propagationPolicy."),
    "pretty": ("string", "Indent the output."),
    "propagationPolicy": ("string", "How dependents are garbage collected: Orphan, Background or Foreground."),
    "resourceVersion": ("string", "Which version of the data the request may be served from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    "sendInitialEvents": ("boolean", "Begin a watch with synthetic events for the existing objects."),
    "timeoutSeconds": ("integer", "Time limit of the list or watch call."),
    "watch": ("boolean", "Watch changes instead of listing."),
}
_LIST_Q = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
           "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"]
_WRITE_Q = ["dryRun", "fieldManager", "fieldValidation"]
_DELETE_Q = ["dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
             "orphanDependents", "propagationPolicy"]
_COLLECTION_DELETE_Q = sorted(set(_DELETE_Q + _LIST_Q) - {"allowWatchBookmarks", "watch"})
_OBJECT_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
_STREAM_TYPES = _OBJECT_TYPES + ["application/json;stream=watch",
                                 "application/vnd.kubernetes.protobuf;stream=watch"]
_PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json"]
_CODES = {"200": "OK", "201": "Created", "202": "Accepted"}


def _param(name: str, where: str = "query", doc: str = "") -> dict[str, Any]:
    typ, default_doc = _QUERY.get(name, ("string", ""))
    param = {"name": name, "in": where, "description": doc or default_doc,
             "schema": {"type": typ, "uniqueItems": True}}
    if where == "path":
        param["required"] = True
    return param


def _valid_operation_id(text: str, capitalize: bool) -> str:
    """kube-openapi's ToValidOperationID: drop separators, upper-case the letter after one."""
    out, upper = [], capitalize
    for ch in text:
        if not ch.isalnum():
            upper = True
            continue
        out.append(ch.upper() if upper else ch)
        upper = False
    return "".join(out)


def _schema_ref(name: str | None) -> dict[str, Any]:
    return {"$ref": REF_PREFIX + name} if name else {"type": "object"}


class _Ops:
    """Builds the operations of one group-version, named as kube-apiserver names them."""

    def __init__(self, group: str, version: str, crd: bool) -> None:
        trimmed = group.removesuffix(".k8s.io") or "core"
        self.prefix = _valid_operation_id(trimmed, True) + _valid_operation_id(version, True)
        self.tag = f"{_valid_operation_id(trimmed, False)}_{version}"
        self.group, self.version = group, version
        self.patch_types = [t for t in _PATCH_TYPES if not (crd and "strategic" in t)]

    def op(self, action: str, verb: str, ident: str, doc: str, response: str | None, *,
           query: list[str] | None = None, body: str | None = None, codes: tuple[str, ...] = ("200",),
           kind: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {"tags": [self.tag], "description": doc, "operationId": verb + self.prefix + ident,
                              "parameters": [_param(q) for q in query or []]}
        if body is not None:
            types = self.patch_types if action == "patch" else ["*/*"]
            op["requestBody"] = {"content": {t: {"schema": _schema_ref(body)} for t in types}, "required": True}
        types = _STREAM_TYPES if action in ("list", "watch", "watchlist") else _OBJECT_TYPES
        content = {t: {"schema": _schema_ref(response)} for t in types}
        op["responses"] = {c: {"description": _CODES[c], "content": content} for c in codes}
        op["responses"]["401"] = {"description": "Unauthorized"}
        if kind or gvk:
            op["x-kubernetes-action"] = action
            op["x-kubernetes-group-version-kind"] = gvk or _gvk(self.group, self.version, kind)
        return op


def _object_item(ops: _Ops, ident: str, what: str, schema: str | None, verbs: set[str],
                 gvk: dict[str, str]) -> dict[str, Any]:
    """get/put/delete/patch of one object, or get/put/patch of its status or scale."""
    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = ops.op("get", "read", ident, f"read {what}", schema, gvk=gvk)
    if "update" in verbs:
        item["put"] = ops.op("put", "replace", ident, f"replace {what}", schema, query=_WRITE_Q,
                             body=schema, codes=("200", "201"), gvk=gvk)
    if "delete" in verbs:
        item["delete"] = ops.op("delete", "delete", ident, f"delete {what}", _META + "Status",
                                query=_DELETE_Q, body=_META + "DeleteOptions", codes=("200", "202"), gvk=gvk)
    if "patch" in verbs:
        item["patch"] = ops.op("patch", "patch", ident, f"partially update {what}", schema,
                               query=_WRITE_Q + ["force"], body=_META + "Patch", codes=("200", "201"), gvk=gvk)
    return item


def _resource_paths(ops: _Ops, info: ResourceInfo, base: str) -> dict[str, dict[str, Any]]:
    kind_name, list_name = kind_schema_names(info, ops.version)
    verbs, kind = set(info.verbs), info.kind
    scope = "Namespaced" if info.namespaced else ""
    ns_seg = "/namespaces/{namespace}" if info.namespaced else ""
    common = ([_param("namespace", "path", "object name and auth scope, such as for teams and projects")]
              if info.namespaced else []) + [_param("pretty")]
    named = [_param("name", "path", f"name of the {kind}")] + common
    collection: dict[str, Any] = {"parameters": common}
    if "list" in verbs:
        collection["get"] = ops.op("list", "list", scope + kind, f"list or watch objects of kind {kind}",
                                   list_name, query=_LIST_Q, kind=kind)
    if "create" in verbs:
        collection["post"] = ops.op("post", "create", scope + kind, f"create a {kind}", kind_name,
                                    query=_WRITE_Q, body=kind_name, codes=("200", "201", "202"), kind=kind)
    if "deletecollection" in verbs:
        collection["delete"] = ops.op("deletecollection", "delete", f"Collection{scope}{kind}",
                                      f"delete collection of {kind}", _META + "Status",
                                      query=_COLLECTION_DELETE_Q, body=_META + "DeleteOptions", kind=kind)
    item_path = f"{base}{ns_seg}/{info.plural}/{{name}}"
    own_gvk = _gvk(ops.group, ops.version, kind)
    paths = {f"{base}{ns_seg}/{info.plural}": collection, item_path: {
        **_object_item(ops, scope + kind, f"the specified {kind}", kind_name, verbs, own_gvk), "parameters": named}}
    sub_verbs = verbs & {"get", "update", "patch"}
    if "status" in info.subresources:
        paths[item_path + "/status"] = {**_object_item(
            ops, f"{scope}{kind}Status", f"status of the specified {kind}", kind_name, sub_verbs, own_gvk),
            "parameters": named}
    if "scale" in info.subresources:
        paths[item_path + "/scale"] = {**_object_item(
            ops, f"{scope}{kind}Scale", f"scale of the specified {kind}", "io.k8s.api.autoscaling.v1.Scale",
            sub_verbs, _gvk("autoscaling", "v1", "Scale")), "parameters": named}
    if info.namespaced and "list" in verbs:
        paths[f"{base}/{info.plural}"] = {"get": ops.op(
            "list", "list", f"{kind}ForAllNamespaces", f"list or watch objects of kind {kind}", list_name,
            query=_LIST_Q, kind=kind), "parameters": [_param("pretty")]}
    if info.crd is None and "watch" in verbs:
        paths.update(_watch_paths(ops, info, base, ns_seg, common, named))
    return {path: item for path, item in paths.items() if len(item) > 1}


def _watch_paths(ops: _Ops, info: ResourceInfo, base: str, ns_seg: str, common: list[dict[str, Any]],
                 named: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The deprecated /watch/ paths built-in resources still publish."""
    kind, scope = info.kind, ("Namespaced" if info.namespaced else "")
    event, listing = _META + "WatchEvent", [_param(q) for q in _LIST_Q]
    doc = f"watch individual changes to a list of {kind}"
    paths = {
        f"{base}/watch{ns_seg}/{info.plural}": {"get": ops.op(
            "watchlist", "watch", f"{scope}{kind}List", doc, event, kind=kind), "parameters": common + listing},
        f"{base}/watch{ns_seg}/{info.plural}/{{name}}": {"get": ops.op(
            "watch", "watch", scope + kind, f"watch changes to an object of kind {kind}", event, kind=kind),
            "parameters": named + listing},
    }
    if info.namespaced:
        paths[f"{base}/watch/{info.plural}"] = {"get": ops.op(
            "watchlist", "watch", f"{kind}ListForAllNamespaces", doc, event, kind=kind),
            "parameters": [_param("pretty")] + listing}
    return paths


def group_version_paths(members: list[ResourceInfo], group: str, version: str) -> dict[str, Any]:
    """Every path of a group-version, keyed by URL pattern."""
    base = "/" + gv_path(group, version)
    paths: dict[str, Any] = {f"{base}/": {"get": _Ops(group, version, crd=False).op(
        "get", "get", "APIResources", "get available resources", _META + "APIResourceList")}}
    for info in sorted(members, key=lambda r: r.plural):
        paths.update(_resource_paths(_Ops(group, version, info.crd is not None), info, base))
    return dict(sorted(paths.items()))
