"""Pruning unknown fields of custom resources, and the paths reported for them."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd.pruning import prune
from tests.apiserver.crd.helpers import WIDGET_SCHEMA, widget


@pytest.mark.parametrize(("obj", "expected_paths", "expected_spec"), [
    pytest.param(widget(), [], {"size": 3}, id="nothing-to-prune"),
    pytest.param(widget(sise=4), ["spec.sise"], {"size": 3}, id="unknown-field"),
    pytest.param(widget(ports=[{"name": "a", "protocol": "TCP"}]), ["spec.ports[0].protocol"],
                 {"size": 3, "ports": [{"name": "a"}]}, id="in-list-item"),
    pytest.param(widget(extra={"free": {"x": 1}, "known": {"a": "1", "b": 2}}), ["spec.extra.known.b"],
                 {"size": 3, "extra": {"free": {"x": 1}, "known": {"a": "1"}}}, id="preserve-unknown-keeps-unknown"),
    pytest.param(widget(template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1},
                                  "spec": {"anything": True}}),
                 ["spec.template.metadata.junk"],
                 {"size": 3, "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                          "spec": {"anything": True}}}, id="embedded-resource-metadata"),
    pytest.param(widget(labels={"a": "b"}), [], {"size": 3, "labels": {"a": "b"}}, id="map-keys-kept"),
])
def test_prune_spec(obj: dict[str, Any], expected_paths: list[str], expected_spec: dict[str, Any]) -> None:
    assert prune(obj, WIDGET_SCHEMA) == expected_paths
    assert obj["spec"] == expected_spec


def test_root_type_meta_and_metadata_are_kept_but_metadata_is_trimmed() -> None:
    obj = widget()
    obj["metadata"] = {"name": "w", "labels": {"a": "b"}, "bogus": 1}
    obj["toplevel"] = 1
    assert prune(obj, WIDGET_SCHEMA) == ["metadata.bogus", "toplevel"]
    assert obj["apiVersion"] == "example.com/v1" and obj["kind"] == "Widget"
    assert obj["metadata"] == {"name": "w", "labels": {"a": "b"}}


def test_paths_are_sorted() -> None:
    obj = widget(zeta=1, alpha=2)
    assert prune(obj, WIDGET_SCHEMA) == ["spec.alpha", "spec.zeta"]


def test_a_map_without_a_value_schema_empties_nested_objects() -> None:
    schema = {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": True}}}
    obj = {"m": {"scalar": 1, "obj": {"x": 1}}}
    assert prune(obj, schema, resource_root=False) == ["m.obj.x"]
    assert obj == {"m": {"scalar": 1, "obj": {}}}
