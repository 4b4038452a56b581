"""Custom resources validated against their schema, with apiextensions' messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apiserver.crd.validation import validate_custom_object
from tests.apiserver.crd.helpers import WIDGET_SCHEMA, widget


def _messages(obj: dict[str, Any], schema: dict[str, Any] = WIDGET_SCHEMA) -> list[str]:
    return [e.message() for e in validate_custom_object(obj, schema)]


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, [], id="valid"),
    pytest.param({"size": "3"}, ['spec.size: Invalid value: "string": spec.size in body must be of type integer: '
                                 '"string"'], id="type"),
    pytest.param({"size": 3.0}, [], id="integral-float-is-an-integer"),
    pytest.param({"size": 0}, ["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"],
                 id="minimum"),
    pytest.param({"size": 11}, ["spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"],
                 id="maximum"),
    pytest.param({"ratio": 0}, ["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"],
                 id="exclusive-minimum"),
    pytest.param({"ratio": 0.7}, ["spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"],
                 id="multiple-of"),
    pytest.param({"color": "green"}, ['spec.color: Unsupported value: "green": supported values: "red", "blue"'],
                 id="enum"),
    pytest.param({"name": "a"}, ['spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long'],
                 id="min-length"),
    pytest.param({"name": "abcdef"}, ["spec.name: Too long: may not be longer than 5"], id="max-length"),
    pytest.param({"name": "AB"}, ["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"],
                 id="pattern"),
    pytest.param({"port": 80}, [], id="int-or-string-int"),
    pytest.param({"port": "http"}, [], id="int-or-string-string"),
    pytest.param({"port": True}, ['spec.port: Invalid value: "boolean": spec.port in body must be of type '
                                  'integer,string: "boolean"'], id="int-or-string-wrong"),
    pytest.param({"when": "2024-05-01T10:00:00Z"}, [], id="date-time"),
    pytest.param({"when": "yesterday"}, ['spec.when: Invalid value: "yesterday": spec.when in body must be of type '
                                         'date-time: "yesterday"'], id="date-time-invalid"),
    pytest.param({"tags": []}, ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"],
                 id="min-items"),
    pytest.param({"tags": ["a", "b", "c", "d"]}, ["spec.tags: Too many: must have at most 3 items"], id="max-items"),
    pytest.param({"tags": ["a", "b", "a"]}, ['spec.tags[2]: Duplicate value: "a"'], id="list-type-set"),
    pytest.param({"ports": [{"name": "a"}, {"name": "a", "port": 2}]},
                 ['spec.ports[1]: Duplicate value: {"name":"a"}'], id="list-type-map"),
    pytest.param({"ports": [{"port": 2}]}, ["spec.ports[0].name: Required value"], id="required-in-item"),
    pytest.param({"labels": {"a": "1", "b": 2}}, ['spec.labels.b: Invalid value: "integer": spec.labels.b in body '
                                                  'must be of type string: "integer"'], id="map-values"),
    pytest.param({"labels": {"a": "1", "b": "2", "c": "3"}}, ["spec.labels: Too many: must have at most 2 items"],
                 id="max-properties"),
    pytest.param({"note": None}, [], id="nullable"),
    pytest.param({"extra": {"anything": [1], "known": {"a": 1}}},
                 ['spec.extra.known.a: Invalid value: "integer": spec.extra.known.a in body must be of type string: '
                  '"integer"'], id="declared-fields-below-preserve-unknown"),
    pytest.param({"template": {"kind": "Pod", "spec": {}}}, ["spec.template.apiVersion: Required value: must not "
                                                             "be empty"], id="embedded-resource-type-meta"),
])
def test_widget_spec(spec: dict[str, Any], expected: list[str]) -> None:
    assert _messages(widget(**spec)) == expected


def test_missing_required_field() -> None:
    obj = widget()
    del obj["spec"]["size"]
    assert _messages(obj) == ["spec.size: Required value"]


def test_null_where_not_nullable_is_a_type_error() -> None:
    assert _messages(widget(color=None)) == [
        'spec.color: Invalid value: "null": spec.color in body must be of type string: "null"']


def test_value_validation_junctors() -> None:
    schema = copy.deepcopy(WIDGET_SCHEMA)
    schema["properties"]["spec"]["anyOf"] = [{"required": ["name"]}, {"required": ["color"]}]
    assert _messages(widget(), schema) == [
        '<nil>: Invalid value: "": "spec" must validate at least one schema (anyOf)', "spec.name: Required value"]
    assert _messages(widget(name="ab"), schema) == []
    schema["properties"]["spec"]["not"] = {"required": ["note"]}
    assert _messages(widget(name="ab", note="x"), schema) == [
        '<nil>: Invalid value: "": "spec" must not validate the schema (not)']


def test_error_field_and_reason_feed_the_status_causes() -> None:
    [err] = validate_custom_object(widget(size="3"), WIDGET_SCHEMA)
    assert err.cause() == {"reason": "FieldValueTypeInvalid", "field": "spec.size",
                           "message": 'Invalid value: "string": spec.size in body must be of type integer: "string"'}
