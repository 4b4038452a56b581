"""Metadata rules every kind obeys: names per kind, labels, annotations, finalizers,
owner references, and the immutable fields of an update."""

from __future__ import annotations

import pytest

from apiserver.admission.validation_meta import selector_matches
from apiserver.admission.validation_names import (
    is_dns1035_label,
    is_dns1123_label,
    is_qualified_name,
    name_is_dns_subdomain,
    regex_error,
)

from .support import errors, stored

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def configmap(**meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", **meta}}


def test_regex_error_keeps_the_double_space_of_go() -> None:
    assert regex_error("msg", "x+", "a", "b") == "msg (e.g. 'a',  or 'b', regex used for validation is 'x+')"


@pytest.mark.parametrize(("check", "value", "expected"), [
    pytest.param(is_dns1123_label, "my-name", [], id="label-ok"),
    pytest.param(is_dns1123_label, "a.b", ["must not contain dots"], id="label-with-dots"),
    pytest.param(is_dns1123_label, "x" * 64, ["must be no more than 63 characters"], id="label-too-long"),
    pytest.param(is_dns1123_label, "My", [LABEL_MSG], id="label-uppercase"),
    pytest.param(is_dns1035_label, "1abc", [DNS1035_MSG], id="dns1035-leading-digit"),
    pytest.param(is_qualified_name, "example.com/app", [], id="qualified-with-prefix"),
    pytest.param(is_qualified_name, "/app", ["prefix part must be non-empty"], id="empty-prefix"),
    pytest.param(is_qualified_name, "app_", [NAME_PART_MSG], id="bad-name-part"),
])
def test_format_checks(check, value: str, expected: list[str]) -> None:
    assert check(value) == expected


def test_generate_name_may_end_with_a_dash() -> None:
    assert name_is_dns_subdomain("web-", True) == []
    assert name_is_dns_subdomain("web-", False) == [SUBDOMAIN_MSG]


@pytest.mark.parametrize(("meta", "expected"), [
    pytest.param({"name": "My_App"}, [f'metadata.name: Invalid value: "My_App": {SUBDOMAIN_MSG}'], id="bad-name"),
    pytest.param({"name": ""}, ["metadata.name: Required value: name or generateName is required"], id="no-name"),
    pytest.param({"labels": {"app_": "web"}}, [f'metadata.labels: Invalid value: "app_": {NAME_PART_MSG}'],
                 id="bad-label-key"),
    pytest.param({"labels": {"app": "-web"}}, [f'metadata.labels: Invalid value: "-web": {LABEL_VALUE_MSG}'],
                 id="bad-label-value"),
    pytest.param({"labels": {"app": "x" * 64}},
                 [f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 characters'],
                 id="label-value-too-long"),
    pytest.param({"annotations": {"Example.COM/Note": "ok"}}, [], id="annotation-keys-ignore-case"),
    pytest.param({"annotations": {"a": "x" * (256 * 1024)}},
                 ["metadata.annotations: Too long: may not be more than 262144 bytes"], id="annotations-too-big"),
    pytest.param({"finalizers": ["cleanup"]},
                 ['metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer name nor '
                  'is it fully qualified'], id="unqualified-finalizer"),
    pytest.param({"finalizers": ["example.com/cleanup", "kubernetes"]}, [], id="good-finalizers"),
    pytest.param({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]},
                 ['metadata.ownerReferences.uid: Invalid value: "": uid must not be empty'], id="owner-without-uid"),
    pytest.param({"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True}]},
        ['metadata.ownerReferences: Invalid value: []v1.OwnerReference{...}: Only one reference can have '
         'Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b'],
        id="two-controllers"),
])
def test_object_meta_on_create(meta: dict, expected: list[str]) -> None:
    obj = configmap(**meta)
    if meta.get("name") == "":
        obj["metadata"]["name"] = ""
    assert errors(obj) == expected


@pytest.mark.parametrize(("kind", "api_version", "name", "expected"), [
    pytest.param("Namespace", "v1", "team.a", ['metadata.name: Invalid value: "team.a": must not contain dots'],
                 id="namespace-is-a-label"),
    pytest.param("Service", "v1", "1web", [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}'],
                 id="service-is-dns1035"),
    pytest.param("ClusterRole", "rbac.authorization.k8s.io/v1", "system:viewer", [], id="rbac-allows-colons"),
    pytest.param("ClusterRole", "rbac.authorization.k8s.io/v1", "a/b",
                 ["metadata.name: Invalid value: \"a/b\": may not contain '/'"], id="rbac-path-segment"),
])
def test_name_rules_differ_per_kind(kind: str, api_version: str, name: str, expected: list[str]) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if kind == "Service":
        obj["spec"] = {"ports": [{"port": 80}]}
    assert [e for e in errors(obj) if e.startswith("metadata.name")] == expected


def test_update_rejects_changed_identity_fields() -> None:
    old = stored(configmap(uid="u1"))
    new = {**old, "metadata": {**old["metadata"], "uid": "u2", "name": "other"}}
    assert errors(new, old, default=False) == [
        'metadata.name: Invalid value: "other": field is immutable',
        'metadata.uid: Invalid value: "u2": field is immutable',
    ]


def test_update_requires_a_resource_version() -> None:
    old = stored(configmap())
    new = {**old, "metadata": {"name": "settings"}}
    assert errors(new, old, default=False) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update']


def test_no_new_finalizers_while_deleting() -> None:
    old = stored(configmap(deletionTimestamp="2025-01-01T00:00:00Z"))
    new = {**old, "metadata": {**old["metadata"], "finalizers": ["example.com/x"]}}
    assert errors(new, old, default=False) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, '
        'found new finalizers []string{"example.com/x"}']


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    pytest.param({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True, id="subset"),
    pytest.param({"matchLabels": {"app": "web"}}, {"app": "api"}, False, id="different-value"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
                 {"tier": "be"}, True, id="in"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]},
                 {}, True, id="notin-absent"),
    pytest.param({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
                 {"tier": "x"}, False, id="does-not-exist"),
    pytest.param(None, {"app": "web"}, False, id="nil-selects-nothing"),
    pytest.param({}, {"app": "web"}, True, id="empty-selects-everything"),
])
def test_selector_matching(selector, labels: dict, matches: bool) -> None:
    assert selector_matches(selector, labels) is matches
