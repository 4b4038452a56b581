"""Strict field validation of built-in kinds: unknown and duplicate fields, and the
errors and warnings kube-apiserver words from them."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.admission.fields import (
    duplicate_fields,
    field_validation_error,
    field_validation_warnings,
    go_format,
    patch_field_validation_error,
    unknown_fields,
)
from apiserver.schema import SchemaNode


def _deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}, **spec},
    }


@pytest.mark.parametrize(("group", "version", "kind", "obj", "expected"), [
    pytest.param("apps", "v1", "Deployment", _deployment(replicas=2), [], id="valid-deployment"),
    pytest.param("apps", "v1", "Deployment", _deployment(replicaz=2), ["spec.replicaz"], id="top-level-typo"),
    pytest.param("apps", "v1", "Deployment",
                 _deployment(template={"spec": {"containers": [{"name": "a"}, {"name": "b", "imagez": "x"}]}}),
                 ["spec.template.spec.containers[1].imagez"], id="list-item-index"),
    pytest.param("apps", "v1", "Deployment", {**_deployment(), "metadata": {"name": "x", "labelz": {}}},
                 ["metadata.labelz"], id="object-meta"),
    pytest.param("apps", "v1", "Deployment", _deployment(strategy={"rollingUpdate": {"maxSurge": "25%", "x": 1}}),
                 ["spec.strategy.rollingUpdate.x"], id="nested-struct"),
    pytest.param("apps", "v1", "Deployment", _deployment(bogus={"deep": {"er": 1}}), ["spec.bogus"],
                 id="unknown-subtree-reported-once"),
    pytest.param("", "v1", "ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"any-key": "v"}},
                 [], id="map-keys-are-not-fields"),
    pytest.param("", "v1", "Pod", {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}},
                                                             "env": [{"name": "X", "valueFrom": {"bad": 1}}]}]}},
                 ["spec.containers[0].env[0].valueFrom.bad"], id="map-of-quantities-and-list"),
    pytest.param("apps", "v1", "ControllerRevision",
                 {"data": {"anything": {"goes": [1, 2]}}, "revision": 1}, [], id="raw-extension-is-free-form"),
    pytest.param("", "v1", "Pod", {"metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}, "oops": 1}]}},
                 ["metadata.managedFields[0].oops"], id="fields-v1-is-free-form"),
    pytest.param("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                 {"spec": {"versions": [{"schema": {"openAPIV3Schema": {
                     "properties": {"a": {"type": "string", "x-bogus": 1}}, "default": {"x": [1]}}}}]}},
                 ["spec.versions[0].schema.openAPIV3Schema.properties.a.x-bogus"],
                 id="map-of-structs-and-json-values"),
    pytest.param("", "v1", "Pod", {"spec": {"containers": "not-a-list"}}, [], id="type-mismatch-is-not-unknown"),
])
def test_unknown_fields_paths(group: str, version: str, kind: str, obj: dict[str, Any], expected: list[str]) -> None:
    schema = SchemaNode.builtin(group, version, kind)
    assert schema is not None
    assert unknown_fields(obj, schema) == expected


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(b'{"a": 1, "b": 2}', [], id="none"),
    pytest.param(b'{"metadata": {"name": "a", "name": "b"}}', ["metadata.name"], id="nested"),
    pytest.param(b'{"spec": {"containers": [{"name": "a"}, {"name": "b", "name": "c"}]}}',
                 ["spec.containers[1].name"], id="in-list-item"),
    pytest.param(b'{"kind": "A", "kind": "B", "kind": "C"}', ["kind"], id="reported-once"),
    pytest.param(b"kind: Pod\nkind: Pod\n", [], id="yaml-is-not-checked"),
])
def test_duplicate_fields(body: bytes, expected: list[str]) -> None:
    assert duplicate_fields(body) == expected


def test_strict_error_is_a_bad_request_worded_like_the_decoder() -> None:
    err = field_validation_error(["spec.replicaz", "spec.template.spec.containers[0].imagez"],
                                 kind="Deployment", version="v1", duplicates=["metadata.name"])
    assert err.code == 400
    assert err.reason == "BadRequest"
    assert err.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "metadata.name", unknown field "spec.replicaz", '
        'unknown field "spec.template.spec.containers[0].imagez"')
    assert err.to_status()["status"] == "Failure"


def test_strict_patch_error_is_invalid_with_the_patch_as_go_map() -> None:
    err = patch_field_validation_error(["spec.replicaz"], {"spec": {"replicaz": 3, "paused": True}})
    assert err.code == 422
    assert err.message == (' "" is invalid: patch: Invalid value: "map[spec:map[paused:true replicaz:3]]": '
                           'strict decoding error: unknown field "spec.replicaz"')
    assert err.details is not None and err.details["causes"][0]["field"] == "patch"


def test_warn_texts_match_the_warning_headers() -> None:
    assert field_validation_warnings(["spec.replicaz"], ["metadata.name"]) == [
        'duplicate field "metadata.name"', 'unknown field "spec.replicaz"']


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param({"b": 1, "a": [1, "x", None]}, "map[a:[1 x <nil>] b:1]", id="map-sorted"),
    pytest.param(2.5, "2.5", id="float"),
    pytest.param(3.0, "3", id="integral-float"),
    pytest.param(1e6, "1e+06", id="large-float-exponent"),
    pytest.param(0.00001, "1e-05", id="small-float-exponent"),
    pytest.param(False, "false", id="bool"),
])
def test_go_format(value: Any, expected: str) -> None:
    assert go_format(value) == expected
