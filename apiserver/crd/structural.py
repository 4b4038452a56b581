"""Structural schemas: the rules a CRD's openAPIV3Schema must follow, and how to walk one.

Pruning, defaulting and server-side apply need to know, for every field, exactly one type
and one schema. apiextensions-apiserver therefore requires v1 CRD schemas to be
*structural*: a `type` on every node (except int-or-string and preserve-unknown-fields
nodes), value validations (`allOf`/`anyOf`/`oneOf`/`not`) that only restrict what the
structural part already declares, `metadata` restricted to name/generateName, and no
JSON-schema features Kubernetes does not support (`$ref`, `definitions`,
`patternProperties`, `uniqueItems`...). The checks and their messages follow
ValidateStructural and ValidateCustomResourceDefinitionOpenAPISchema; paths are written as
field.Path writes them (`spec.versions[0].schema.openAPIV3Schema.properties[spec].type`).

CEL rules (`x-kubernetes-validations`) are not compiled or checked.
"""

from __future__ import annotations

import re
from typing import Any

from apiserver.errors import FieldError, forbidden, invalid, not_supported, required

Schema = dict[str, Any]
OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
META_FIELDS = ("apiVersion", "kind", "metadata")
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_LEVEL_DETAIL = {"root": "must not be empty at the root", "item": "must not be empty for specified array items",
                 "field": "must not be empty for specified object fields"}


# --- walking a schema ------------------------------------------------------------------
def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def key(path: str, name: str) -> str:
    return f"{path}[{name}]"


def properties(s: Schema | None) -> dict[str, Schema]:
    return (s or {}).get("properties") or {}


def items(s: Schema | None) -> Schema | None:
    value = (s or {}).get("items")
    return value if isinstance(value, dict) else None


def additional(s: Schema | None) -> tuple[bool, Schema | None]:
    """(is a map, schema of the values): `additionalProperties: {schema}` or `true`."""
    value = (s or {}).get("additionalProperties")
    if isinstance(value, dict):
        return True, value
    return value is True, None


def field_schema(s: Schema | None, name: str) -> tuple[bool, Schema | None]:
    """(known, schema) of field `name`: a property, or a map value."""
    props = properties(s)
    if name in props:
        return True, props[name]
    return additional(s)


def preserves_unknown(s: Schema | None) -> bool:
    return bool((s or {}).get("x-kubernetes-preserve-unknown-fields"))


def is_int_or_string(s: Schema | None) -> bool:
    return bool((s or {}).get("x-kubernetes-int-or-string"))


# --- ValidateStructural ----------------------------------------------------------------
def _int_or_string_any_of(s: Schema) -> bool:
    return s.get("anyOf") == _INT_OR_STRING_ANY_OF


def _int_or_string_all_of(s: Schema) -> bool:
    all_of = s.get("allOf") or []
    return bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF


def _invariants(s: Schema | None, level: str, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs: list[FieldError] = []
    typ = s.get("type", "")
    if typ == "array" and items(s) is None:
        errs.append(required(child(path, "items"), "must be specified"))
    errs += _invariants(items(s), "item", child(path, "items"))
    for name, prop in properties(s).items():
        errs += _invariants(prop, "field", key(child(path, "properties"), name))
    if "additionalProperties" in s:
        if level == "root":
            errs.append(forbidden(child(path, "additionalProperties"), "must not be used at the root"))
        errs += _invariants(additional(s)[1], "field", child(path, "additionalProperties"))
    errs += _extension_invariants(s, path)
    errs += _value_validation(s, path, skip_any_of=_int_or_string_any_of(s),
                              skip_first_all_of_any_of=_int_or_string_all_of(s))
    errs += _type_invariants(s, level, path)
    if level == "root" or s.get("x-kubernetes-embedded-resource"):
        errs += _meta_types(s, path)
    if level == "root" and "metadata" in properties(s):
        errs += _root_metadata(properties(s)["metadata"], path)
    if (s.get("x-kubernetes-embedded-resource") and not preserves_unknown(s) and not properties(s)):
        errs.append(required(child(path, "properties"), "must not be empty if x-kubernetes-embedded-resource "
                                                         "is true without x-kubernetes-preserve-unknown-fields"))
    return errs


def _extension_invariants(s: Schema, path: str) -> list[FieldError]:
    errs = []
    if is_int_or_string(s) and preserves_unknown(s):
        errs.append(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), True,
                            "must be false if x-kubernetes-int-or-string is true"))
    if is_int_or_string(s) and s.get("x-kubernetes-embedded-resource"):
        errs.append(invalid(child(path, "x-kubernetes-embedded-resource"), True,
                            "must be false if x-kubernetes-int-or-string is true"))
    return errs


def _type_invariants(s: Schema, level: str, path: str) -> list[FieldError]:
    errs = []
    typ = s.get("type", "")
    type_path = child(path, "type")
    embedded_detail = "must be object if x-kubernetes-embedded-resource is true"
    if s.get("x-kubernetes-embedded-resource") and typ != "object":
        errs.append(required(type_path, embedded_detail) if not typ else invalid(type_path, typ, embedded_detail))
    elif not typ and not is_int_or_string(s) and not preserves_unknown(s):
        errs.append(required(type_path, _LEVEL_DETAIL[level]))
    if s.get("x-kubernetes-embedded-resource") and "additionalProperties" in s:
        errs.append(forbidden(child(path, "additionalProperties"),
                              "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and typ and typ != "object":
        errs.append(invalid(type_path, typ, "must be object at the root"))
    return errs


def _meta_types(s: Schema, path: str) -> list[FieldError]:
    errs = []
    for name, want in (("kind", "string"), ("apiVersion", "string"), ("metadata", "object")):
        prop = properties(s).get(name)
        if prop is not None and prop.get("type", "") != want:
            errs.append(invalid(child(key(child(path, "properties"), name), "type"), prop.get("type", ""),
                                f"must be {want}"))
    return errs


def _root_metadata(metadata: Schema, path: str) -> list[FieldError]:
    """At the root, metadata may only restrict name and generateName."""
    rest = {k: v for k, v in metadata.items() if k not in ("type", "default")}
    props = rest.pop("properties", None) or {}
    if set(props) - {"name", "generateName"} or rest:
        return [forbidden(key(child(path, "properties"), "metadata"), "must not specify anything other than name "
                          "and generateName, but metadata is implicitly specified")]
    return []


_FORBIDDEN_IN_JUNCTORS = [
    ("type", "must be empty to be structural"), ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"), ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"), ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
]


def _value_validation(s: Schema, path: str, *, skip_any_of: bool = False,
                      skip_first_all_of_any_of: bool = False) -> list[FieldError]:
    errs: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(s.get("anyOf") or []):
            errs += _nested(sub, f"{child(path, 'anyOf')}[{i}]")
    for i, sub in enumerate(s.get("allOf") or []):
        errs += _nested(sub, f"{child(path, 'allOf')}[{i}]", skip_any_of=skip_first_all_of_any_of and i == 0)
    for i, sub in enumerate(s.get("oneOf") or []):
        errs += _nested(sub, f"{child(path, 'oneOf')}[{i}]")
    if isinstance(s.get("not"), dict):
        errs += _nested(s["not"], child(path, "not"))
    pattern = s.get("pattern")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            errs.append(invalid(child(path, "pattern"), pattern,
                                f"must be a valid regular expression, but isn't: {exc}"))
    return errs


def _nested(v: Any, path: str, *, skip_any_of: bool = False) -> list[FieldError]:
    """A schema under allOf/anyOf/oneOf/not may only validate, never declare."""
    if not isinstance(v, dict):
        return []
    errs = _value_validation(v, path, skip_any_of=skip_any_of)
    errs += _nested(items(v), child(path, "items"))
    for name, prop in properties(v).items():
        errs += _nested(prop, key(child(path, "properties"), name))
    for name, detail in _FORBIDDEN_IN_JUNCTORS:
        if v.get(name) not in (None, "", False, []):
            errs.append(forbidden(child(path, name), detail))
    if "metadata" in properties(v):
        errs.append(forbidden(key(child(path, "properties"), "metadata"), "must not be specified in a nested context"))
    return errs


def _completeness(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[FieldError]:
    """Everything a junctor mentions must also be declared by the structural part."""
    errs: list[FieldError] = []
    for junctor in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(v.get(junctor) or []):
            if isinstance(sub, dict):
                errs += _nested_completeness(sub, s, s_path, f"{child(v_path, junctor)}[{i}]")
    if isinstance(v.get("not"), dict):
        errs += _nested_completeness(v["not"], s, s_path, child(v_path, "not"))
    return errs


def _nested_completeness(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[FieldError]:
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    errs = _completeness(v, s, s_path, v_path)
    if items(v) is not None:
        errs += _nested_completeness(items(v), items(s), child(s_path, "items"), child(v_path, "items"))
    for name, sub in properties(v).items():
        known, sub_s = field_schema(s, name)
        target = key(child(s_path, "properties"), name) if name in properties(s) or not known else \
            child(s_path, "additionalProperties")
        errs += _nested_completeness(sub, sub_s if known else None, target,
                                     key(child(v_path, "properties"), name))
    return errs


def _all_completeness(s: Schema | None, path: str) -> list[FieldError]:
    if not isinstance(s, dict):
        return []
    errs = _completeness(s, s, path, path)
    errs += _all_completeness(items(s), child(path, "items"))
    for name, prop in properties(s).items():
        errs += _all_completeness(prop, key(child(path, "properties"), name))
    errs += _all_completeness(additional(s)[1], child(path, "additionalProperties"))
    return errs


def validate_structural(schema: Schema, path: str) -> list[FieldError]:
    """The structural-schema violations of `schema`, sorted by message as Kubernetes does."""
    errs = _invariants(schema, "root", path) + _all_completeness(schema, path)
    return sorted(errs, key=lambda e: e.message())


def is_structural(schema: Schema) -> bool:
    return not validate_structural(schema, "")




# --- ValidateCustomResourceDefinitionOpenAPISchema --------------------------------------
_UNSUPPORTED = [("id", "id is not supported"), ("additionalItems", "additionalItems is not supported"),
                ("patternProperties", "patternProperties is not supported"),
                ("definitions", "definitions is not supported"), ("dependencies", "dependencies is not supported"),
                ("$ref", "$ref is not supported")]


def _keyword_checks(s: Schema, path: str, *, allow_defaults: bool, defaults_reason: str,
                    inside_meta: bool) -> list[FieldError]:
    """The checks specStandardValidatorV3 makes on every node."""
    errs: list[FieldError] = []
    typ = s.get("type", "")
    if typ and typ not in OPENAPI_TYPES:
        errs.append(not_supported(child(path, "type"), typ, OPENAPI_TYPES))
    if "default" in s and not allow_defaults:
        errs.append(forbidden(child(path, "default"), f"must not be set {defaults_reason}".strip()))
    for name, detail in _UNSUPPORTED:
        if s.get(name) not in (None, "", {}, []):
            errs.append(forbidden(child(path, name), detail))
    if typ == "null":
        errs.append(forbidden(child(path, "type"), "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list):
        errs.append(forbidden(child(path, "items"), "items must be a schema object and not an array"))
    if inside_meta and s.get("x-kubernetes-embedded-resource"):
        errs.append(forbidden(child(path, "x-kubernetes-embedded-resource"), "must not be used inside of resource meta"))
    if s.get("uniqueItems"):
        errs.append(forbidden(child(path, "uniqueItems"),
                              "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    if "additionalProperties" in s and properties(s) and s["additionalProperties"] is not True:
        errs.append(forbidden(child(path, "additionalProperties"), "additionalProperties and properties are mutual exclusive"))
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), False, "must be true or undefined"))
    return errs


def _map_type_checks(s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    map_type, typ = s.get("x-kubernetes-map-type"), s.get("type", "")
    if map_type is not None and typ != "object":
        detail = "must be object if x-kubernetes-map-type is specified"
        errs.append(required(child(path, "type"), detail) if not typ else invalid(child(path, "type"), typ, detail))
    if map_type is not None and map_type not in ("atomic", "granular"):
        errs.append(not_supported(child(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]))
    return errs


def _list_type_checks(s: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    list_type, typ, keys = s.get("x-kubernetes-list-type"), s.get("type", ""), s.get("x-kubernetes-list-map-keys") or []
    item = items(s)
    if list_type is not None and typ != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        errs.append(required(child(path, "type"), detail) if not typ else invalid(child(path, "type"), typ, detail))
    elif list_type == "set" and item is not None:
        if item.get("type") == "array" and item.get("x-kubernetes-list-type", "atomic") != "atomic":
            errs.append(invalid(child(child(path, "items"), "x-kubernetes-list-type"), item["x-kubernetes-list-type"],
                                "must be atomic as item of a list with x-kubernetes-list-type=set"))
        if item.get("type") == "object" and item.get("x-kubernetes-map-type") != "atomic":
            errs.append(invalid(child(child(path, "items"), "x-kubernetes-map-type"), item.get("x-kubernetes-map-type"),
                                "must be atomic as item of a list with x-kubernetes-list-type=set"))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(not_supported(child(path, "x-kubernetes-list-type"), list_type, ["atomic", "set", "map"]))
    if keys and list_type != "map":
        detail = "must be map if x-kubernetes-list-map-keys is non-empty"
        errs.append(required(child(path, "x-kubernetes-list-type"), detail) if list_type is None
                    else invalid(child(path, "x-kubernetes-list-type"), list_type, detail))
    if list_type == "map":
        errs += _list_map_checks(s, path, keys, item)
    if list_type in ("set", "map") and item is not None and item.get("nullable"):
        errs.append(forbidden(child(child(path, "items"), "nullable"),
                              f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
    return errs


def _list_map_checks(s: Schema, path: str, keys: list[str], item: Schema | None) -> list[FieldError]:
    errs: list[FieldError] = []
    if not keys:
        errs.append(required(child(path, "x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"))
    if item is None:
        errs.append(required(child(path, "items"), "must have a schema if x-kubernetes-list-type is map"))
        return errs
    if item.get("type") != "object":
        return errs + [invalid(child(child(path, "items"), "type"), item.get("type", ""),
                               "must be object if parent array's x-kubernetes-list-type is map")]
    seen: set[str] = set()
    for name in keys:
        prop = properties(item).get(name)
        prop_path = key(child(child(path, "items"), "properties"), name)
        if prop is None:
            errs.append(invalid(child(path, "x-kubernetes-list-map-keys"), keys, "entries must all be names of item properties"))
        else:
            if prop.get("type") in ("array", "object"):
                errs.append(invalid(child(prop_path, "type"), item.get("type", ""),
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map"))
            if name not in (item.get("required") or []) and "default" not in prop:
                errs.append(required(child(prop_path, "default"), "this property is in x-kubernetes-list-map-keys, "
                                     "so it must have a default or be a required property"))
            if prop.get("nullable"):
                errs.append(forbidden(child(prop_path, "nullable"),
                                      "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
        if name in seen:
            errs.append(invalid(child(path, "x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries"))
        seen.add(name)
    return errs


def validate_openapi_schema(s: Any, path: str, *, is_root: bool = True, allow_defaults: bool = True, defaults_reason: str = "",
                            inside_meta: bool = False) -> list[FieldError]:
    """The node-by-node checks of ValidateCustomResourceDefinitionOpenAPISchema."""
    if not isinstance(s, dict):
        return []
    sub = {"allow_defaults": allow_defaults, "defaults_reason": defaults_reason, "inside_meta": inside_meta}
    errs = _keyword_checks(s, path, **sub) + _map_type_checks(s, path) + _list_type_checks(s, path)
    if isinstance(s.get("additionalProperties"), dict):
        extra = dict(sub, allow_defaults=False, defaults_reason="inside additionalProperties applying to object "
                     "metadata") if inside_meta else sub
        errs += validate_openapi_schema(s["additionalProperties"], child(path, "additionalProperties"),
                                        is_root=False, **extra)
    for name, prop in properties(s).items():
        extra = sub
        if (is_root or s.get("x-kubernetes-embedded-resource")) and name in META_FIELDS:
            extra = dict(sub, inside_meta=True)
            if is_root:
                extra.update(allow_defaults=False, defaults_reason=f"in top-level {name}")
        errs += validate_openapi_schema(prop, key(child(path, "properties"), name), is_root=False, **extra)
    if isinstance(s.get("not"), dict):
        errs += validate_openapi_schema(s["not"], child(path, "not"), is_root=False, **sub)
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, node in enumerate(s.get(junctor) or []):
            errs += validate_openapi_schema(node, f"{child(path, junctor)}[{i}]", is_root=False, **sub)
    errs += validate_openapi_schema(items(s), child(path, "items"), is_root=False, **sub)
    return errs
