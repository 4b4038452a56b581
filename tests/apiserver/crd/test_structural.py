"""Structural-schema rules for CRD schemas, with ValidateStructural's messages."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd.structural import is_structural, validate_openapi_schema, validate_structural


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


@pytest.mark.parametrize(("schema", "expected"), [
    pytest.param(_obj(spec=_obj(a={"type": "string"})), [], id="structural"),
    pytest.param({"properties": {}}, ["type: Required value: must not be empty at the root"], id="root-type"),
    pytest.param({"type": "string"}, ['type: Invalid value: "string": must be object at the root'], id="root-object"),
    pytest.param(_obj(a={"type": "array"}), ["properties[a].items: Required value: must be specified"],
                 id="array-items"),
    pytest.param(_obj(a={"type": "array", "items": {}}),
                 ["properties[a].items.type: Required value: must not be empty for specified array items"],
                 id="item-type"),
    pytest.param(_obj(a={"x-kubernetes-int-or-string": True}), [], id="int-or-string-needs-no-type"),
    pytest.param(_obj(a={"x-kubernetes-preserve-unknown-fields": True}), [], id="preserve-needs-no-type"),
    pytest.param(_obj(a={"x-kubernetes-int-or-string": True,
                         "anyOf": [{"type": "integer"}, {"type": "string"}]}), [], id="int-or-string-any-of"),
    pytest.param(_obj(a={"type": "string", "anyOf": [{"type": "string"}]}),
                 ["properties[a].anyOf[0].type: Forbidden: must be empty to be structural"], id="type-in-junctor"),
    pytest.param(_obj(a={"type": "object", "anyOf": [{"properties": {"b": {}}}]}),
                 ["properties[a].properties[b]: Required value: because it is defined in "
                  "properties[a].anyOf[0].properties[b]"], id="junctor-completeness"),
    pytest.param(_obj(a={"type": "object", "x-kubernetes-embedded-resource": True}),
                 ["properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource is "
                  "true without x-kubernetes-preserve-unknown-fields"], id="embedded-needs-properties"),
    pytest.param({"type": "object", "additionalProperties": {"type": "string"}},
                 ["additionalProperties: Forbidden: must not be used at the root"], id="root-additional-properties"),
    pytest.param(_obj(kind={"type": "integer"}), ['properties[kind].type: Invalid value: "integer": must be string'],
                 id="kind-is-string"),
    pytest.param(_obj(a={"type": "string", "pattern": "("}),
                 ['properties[a].pattern: Invalid value: "(": must be a valid regular expression, but isn\'t: '
                  'missing ), unterminated subpattern at position 0'], id="pattern-compiles"),
])
def test_validate_structural(schema: dict[str, Any], expected: list[str]) -> None:
    assert [e.message() for e in validate_structural(schema, "")] == expected
    assert is_structural(schema) == (not expected)


@pytest.mark.parametrize(("schema", "expected"), [
    pytest.param(_obj(a={"type": "string"}), [], id="fine"),
    pytest.param(_obj(a={"type": "null"}),
                 ['properties[a].type: Unsupported value: "null": supported values: "array", "boolean", "integer", '
                  '"number", "object", "string"',
                  "properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative"],
                 id="null-type"),
    pytest.param(_obj(a={"type": "object", "properties": {"b": {"type": "string"}},
                         "additionalProperties": {"type": "string"}}),
                 ["properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual "
                  "exclusive"], id="properties-and-additional"),
    pytest.param(_obj(metadata={"type": "object", "default": {}}),
                 ["properties[metadata].default: Forbidden: must not be set in top-level metadata"],
                 id="no-default-in-metadata"),
    pytest.param(_obj(a={"type": "string", "x-kubernetes-list-type": "set"}),
                 ['properties[a].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified'],
                 id="list-type-on-string"),
    pytest.param(_obj(a={"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "set"}),
                 ["properties[a].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list "
                  "with x-kubernetes-list-type=set"], id="set-of-granular-maps"),
    pytest.param(_obj(a={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"}),
                 ["properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if "
                  "x-kubernetes-list-type is map",
                  'properties[a].items.type: Invalid value: "string": must be object if parent array\'s '
                  "x-kubernetes-list-type is map"], id="list-map-needs-keys"),
    pytest.param(_obj(a={"type": "object", "x-kubernetes-map-type": "sometimes"}),
                 ['properties[a].x-kubernetes-map-type: Unsupported value: "sometimes": supported values: "atomic", '
                  '"granular"'], id="map-type"),
    pytest.param(_obj(a={"type": "string", "x-kubernetes-preserve-unknown-fields": False}),
                 ["properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or "
                  "undefined"], id="preserve-false"),
])
def test_validate_openapi_schema(schema: dict[str, Any], expected: list[str]) -> None:
    assert [e.message() for e in validate_openapi_schema(schema, "")] == expected
