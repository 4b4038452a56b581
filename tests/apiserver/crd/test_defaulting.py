"""Schema defaults applied to custom resources."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd.defaulting import apply_defaults, prune_nulls
from tests.apiserver.crd.helpers import WIDGET_SCHEMA, widget


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, {"size": 3, "color": "red", "nested": {"level": 3}}, id="missing-gets-default-recursively"),
    pytest.param({"color": "blue", "nested": {"level": 1}}, {"size": 3, "color": "blue", "nested": {"level": 1}},
                 id="given-values-kept"),
    pytest.param({"color": None}, {"size": 3, "color": "red", "nested": {"level": 3}},
                 id="non-nullable-null-gets-default"),
    pytest.param({"name": None}, {"size": 3, "color": "red", "nested": {"level": 3}},
                 id="non-nullable-null-without-default-dropped"),
    pytest.param({"note": None}, {"size": 3, "note": None, "color": "red", "nested": {"level": 3}},
                 id="nullable-null-kept"),
])
def test_apply_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = widget(**spec)
    apply_defaults(obj, WIDGET_SCHEMA)
    assert obj["spec"] == expected


def test_defaults_are_copies() -> None:
    first, second = widget(), widget()
    apply_defaults(first, WIDGET_SCHEMA)
    apply_defaults(second, WIDGET_SCHEMA)
    first["spec"]["nested"]["level"] = 9
    assert second["spec"]["nested"] == {"level": 3}
    assert WIDGET_SCHEMA["properties"]["spec"]["properties"]["nested"]["default"] == {}


def test_list_items_and_map_values_are_defaulted() -> None:
    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {"p": {"type": "integer", "default": 80}}}},
        "byName": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"on": {"type": "boolean", "default": True}}}}}}
    obj = {"items": [{}, {"p": 1}], "byName": {"a": {}}}
    apply_defaults(obj, schema)
    assert obj == {"items": [{"p": 80}, {"p": 1}], "byName": {"a": {"on": True}}}


def test_prune_nulls_alone() -> None:
    obj = {"spec": {"size": None, "note": None}}
    prune_nulls(obj, WIDGET_SCHEMA)
    assert obj == {"spec": {"note": None}}
