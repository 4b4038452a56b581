"""The type information every structural feature of the API server walks.

Strict field validation, strategic merge patch, server-side apply, OpenAPI documents and
`kubectl explain` all need to know, for each field of an object, its type, its list
semantics (`x-kubernetes-list-type`, map keys) and its patch strategy. Built-in kinds
take this from the Kubernetes 1.32 OpenAPI definitions shipped as data by the
`kubernetes-validate` package (read at run time, never copied into this project);
custom resources take it from their CRD's `openAPIV3Schema`. Both are wrapped in the
same `SchemaNode`, so the code that walks objects does not care where a schema came from.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import orjson

KUBERNETES_SCHEMA_VERSION = "v1.32.0"
_REF_PREFIX = "#/$defs/"
# Keys of SchemaNode._children for the non-field children (no field name has spaces).
_ITEMS, _MAP_VALUES = " items", " map values"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """All built-in type definitions, keyed like `io.k8s.api.apps.v1.Deployment`."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package (Kubernetes OpenAPI data) is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "kubernetes-json-schema" / f"{KUBERNETES_SCHEMA_VERSION}-local" / "_definitions.json"
    return orjson.loads(path.read_bytes())["$defs"]


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # Prefer the definition that lives in the kind's own API package over
            # shared ones (DeleteOptions and WatchEvent claim every group).
            if key not in index or not name.startswith("io.k8s.apimachinery"):
                index[key] = name
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition name of a built-in kind, e.g. ("apps","v1","Deployment") ->
    "io.k8s.api.apps.v1.Deployment"; None if the kind is not built in."""
    return _gvk_index().get((group, version, kind))


def _primary_type(raw: Any) -> str | None:
    """The JSON-schema data marks optional fields as type ["string", "null"]; OpenAPI
    has one type per node."""
    if isinstance(raw, list):
        types = [t for t in raw if t != "null"]
        return types[0] if types else None
    return raw


class SchemaNode:
    """One node of a schema tree, with `$ref`s resolved lazily.

    `raw` is the schema dict as found (a built-in definition, or part of a CRD's
    openAPIV3Schema). `defs` resolves `$ref`s; CRD schemas have none.
    """

    __slots__ = ("raw", "_defs", "ref_name", "_children", "memo", "_type")

    def __init__(self, raw: dict[str, Any], defs: dict[str, dict[str, Any]] | None = None,
                 ref_name: str | None = None) -> None:
        self._defs = defs
        self.ref_name = ref_name
        # Child nodes made so far (field name, or a marker for items/map values): a node
        # and its raw schema never change, and resolving a $ref copies the definition, so
        # each child is built once per node rather than once per value walked.
        self._children: dict[str, SchemaNode | None] = {}
        # Facts other modules derive from this node alone, cached under their own keys.
        self.memo: dict[str, Any] = {}
        while "$ref" in raw and defs is not None:
            ref_name = raw["$ref"].removeprefix(_REF_PREFIX)
            # Keep the field's own description/extension keys, take the type from the ref.
            merged = dict(defs[ref_name])
            for key, value in raw.items():
                if key != "$ref" and (key.startswith("x-kubernetes") or key == "description"):
                    merged[key] = value
            raw = merged
            self.ref_name = ref_name
        self.raw = raw
        self._type = _primary_type(raw.get("type"))

    @classmethod
    def builtin(cls, group: str, version: str, kind: str) -> SchemaNode | None:
        name = definition_name(group, version, kind)
        if name is None:
            return None
        return cls.named(name)

    @classmethod
    def named(cls, definition: str) -> SchemaNode:
        """The node of a built-in definition; one shared tree per definition (see
        `_children`), so later walks reuse the children earlier ones resolved."""
        return _named(definition)

    @classmethod
    def from_openapi(cls, raw: dict[str, Any]) -> SchemaNode:
        """Wrap a CRD's openAPIV3Schema."""
        return cls(raw, None)

    def _wrap(self, raw: dict[str, Any] | None) -> SchemaNode | None:
        return None if raw is None else SchemaNode(raw, self._defs)

    # --- what kind of value lives here -------------------------------------------------
    @property
    def type(self) -> str | None:
        """'object', 'array', 'string', 'integer', 'number', 'boolean', or None when the
        node accepts several (int-or-string, quantity) or anything."""
        return self._type

    @property
    def description(self) -> str:
        return self.raw.get("description", "")

    @property
    def int_or_string(self) -> bool:
        if self.raw.get("x-kubernetes-int-or-string"):
            return True
        one_of = self.raw.get("oneOf") or self.raw.get("anyOf") or []
        types = {_primary_type(o.get("type")) for o in one_of}
        return types == {"string", "integer"}

    @property
    def quantity(self) -> bool:
        return self.ref_name == "io.k8s.apimachinery.pkg.api.resource.Quantity"

    @property
    def preserve_unknown_fields(self) -> bool:
        """Anything goes below this node (x-kubernetes-preserve-unknown-fields, or a
        RawExtension/JSON field of a built-in type)."""
        if self.raw.get("x-kubernetes-preserve-unknown-fields"):
            return True
        return self.type is None and not self.raw.get("oneOf") and not self.raw.get("anyOf")

    @property
    def embedded_resource(self) -> bool:
        return bool(self.raw.get("x-kubernetes-embedded-resource"))

    # --- objects --------------------------------------------------------------------
    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("properties") or {}

    @property
    def required(self) -> list[str]:
        return self.raw.get("required") or []

    def field(self, name: str) -> SchemaNode | None:
        """The schema of field `name` of this object (or of a map value when the object
        is a map); None when the field is unknown here."""
        try:
            return self._children[name]
        except KeyError:
            pass
        props = self.properties
        child = self._wrap(props[name]) if name in props else self.map_values()
        self._children[name] = child
        return child

    def map_values(self) -> SchemaNode | None:
        """For a map (`additionalProperties`), the schema of its values."""
        try:
            return self._children[_MAP_VALUES]
        except KeyError:
            pass
        extra = self.raw.get("additionalProperties")
        child = None
        if isinstance(extra, dict):
            child = self._wrap(extra)
        elif extra is True:
            child = SchemaNode({"x-kubernetes-preserve-unknown-fields": True})
        self._children[_MAP_VALUES] = child
        return child

    @property
    def is_map(self) -> bool:
        return self.type == "object" and not self.properties and "additionalProperties" in self.raw

    @property
    def map_type(self) -> str:
        """'granular' (default) or 'atomic' (x-kubernetes-map-type)."""
        return self.raw.get("x-kubernetes-map-type", "granular")

    # --- lists ----------------------------------------------------------------------
    def items(self) -> SchemaNode | None:
        try:
            return self._children[_ITEMS]
        except KeyError:
            pass
        items = self.raw.get("items")
        child = self._wrap(items) if isinstance(items, dict) else None
        self._children[_ITEMS] = child
        return child

    @property
    def list_type(self) -> str:
        """'atomic' (default), 'set' or 'map' (x-kubernetes-list-type). Lists that only
        declare a patch merge key are treated as maps keyed by it, as Kubernetes does."""
        declared = self.raw.get("x-kubernetes-list-type")
        if declared:
            return declared
        if self.patch_merge_key:
            return "map"
        return "atomic"

    @property
    def list_map_keys(self) -> list[str]:
        keys = self.raw.get("x-kubernetes-list-map-keys")
        if keys:
            return list(keys)
        return [self.patch_merge_key] if self.patch_merge_key else []

    @property
    def patch_strategy(self) -> str:
        """The x-kubernetes-patch-strategy value, e.g. 'merge', 'replace',
        'retainKeys', 'merge,retainKeys'; '' when none is declared."""
        return self.raw.get("x-kubernetes-patch-strategy", "")

    @property
    def patch_merge_key(self) -> str:
        return self.raw.get("x-kubernetes-patch-merge-key", "")

    def __repr__(self) -> str:
        return f"SchemaNode({self.ref_name or self.type})"


@functools.cache
def _named(definition: str) -> SchemaNode:
    defs = definitions()
    return SchemaNode(defs[definition], defs, definition)
