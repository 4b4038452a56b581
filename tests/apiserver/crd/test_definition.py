"""CustomResourceDefinition defaults, validation messages and status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apiserver.crd.definition import crd_status, default_crd, validate_crd, validate_crd_update
from tests.apiserver.crd.helpers import widget_crd

_SCHEMA = "spec.validation.openAPIV3Schema"
_DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def _messages(crd: dict[str, Any]) -> list[str]:
    return [e.message() for e in validate_crd(default_crd(crd))]


def test_defaults() -> None:
    crd = default_crd(widget_crd())
    assert crd["spec"]["names"]["singular"] == "widget"
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"]["storedVersions"] == ["v1"]
    assert _messages(widget_crd()) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(crd: dict[str, Any]) -> None:
        node = crd
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[parts[-1]] = value
    return apply


_PROPS = "spec.versions.0.schema.openAPIV3Schema.properties.spec.properties"


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param(_set("metadata.name", "widgets.other.com"),
                 ['metadata.name: Invalid value: "widgets.other.com": must be spec.names.plural+"."+spec.group'],
                 id="name-must-be-plural-dot-group"),
    pytest.param(_set("spec.group", "example"),
                 ['metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
                  'spec.group: Invalid value: "example": should be a domain with at least one dot'], id="group-dot"),
    pytest.param(_set("spec.scope", "Global"),
                 ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'], id="scope"),
    pytest.param(_set("spec.names.shortNames", ["Wd"]),
                 [f'spec.names.shortNames[0]: Invalid value: "Wd": {_DNS1035}'], id="short-name"),
    pytest.param(_set("spec.names.kind", "Widget_1"),
                 [f'spec.names.singular: Invalid value: "widget_1": {_DNS1035}',
                  f'spec.names.kind: Invalid value: "Widget_1": may have mixed case, but should otherwise match: '
                  f'{_DNS1035}',
                  f'spec.names.listKind: Invalid value: "Widget_1List": may have mixed case, but should otherwise '
                  f'match: {_DNS1035}'], id="kind-and-defaulted-names"),
    pytest.param(_set("spec.names.listKind", "Widget"),
                 ['spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'],
                 id="list-kind-equals-kind"),
    pytest.param(_set("spec.versions.0.storage", False),
                 ['spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions.'
                  'CustomResourceDefinitionVersion{Name:"v1", Served:true, Storage:false, ...}}: must have exactly one '
                  'version marked as storage version',
                  'status.storedVersions: Invalid value: []string(nil): must have at least one stored version'],
                 id="storage-version"),
    pytest.param(_set("spec.versions.0.schema", None),
                 ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"], id="schema-required"),
    pytest.param(_set(f"{_PROPS}.size.type", ""),
                 [f"{_SCHEMA}.properties[spec].properties[size].type: Required value: must not be empty for "
                  "specified object fields"], id="structural-type"),
    pytest.param(_set(f"{_PROPS}.size.type", "int"),
                 [f'{_SCHEMA}.properties[spec].properties[size].type: Unsupported value: "int": supported values: '
                  '"array", "boolean", "integer", "number", "object", "string"'], id="type-name"),
    pytest.param(_set(f"{_PROPS}.size.$ref", "#/definitions/x"),
                 [f"{_SCHEMA}.properties[spec].properties[size].$ref: Forbidden: $ref is not supported"], id="ref"),
    pytest.param(_set(f"{_PROPS}.tags.uniqueItems", True),
                 [f"{_SCHEMA}.properties[spec].properties[tags].uniqueItems: Forbidden: uniqueItems cannot be set to "
                  "true since the runtime complexity becomes quadratic"], id="unique-items"),
    pytest.param(_set(f"{_PROPS}.size.default", "big"),
                 [f'{_SCHEMA}.properties[spec].properties[size].default: Invalid value: "string": in body must be of '
                  'type integer: "string"'], id="default-must-validate"),
    pytest.param(_set(f"{_PROPS}.nested.default", {"unknown": 1}),
                 [f'{_SCHEMA}.properties[spec].properties[nested].default: Invalid value: {{"unknown":1}}: must not '
                  'have unknown fields'], id="default-must-be-pruned"),
    pytest.param(_set("spec.versions.0.schema.openAPIV3Schema.properties.metadata",
                      {"type": "object", "properties": {"labels": {"type": "object"}}}),
                 [f"{_SCHEMA}.properties[metadata]: Forbidden: must not specify anything other than name and "
                  "generateName, but metadata is implicitly specified"], id="metadata-restricted"),
    pytest.param(_set(f"{_PROPS}.ports.x-kubernetes-list-map-keys", ["port"]),
                 [f"{_SCHEMA}.properties[spec].properties[ports].items.properties[port].default: Required value: this "
                  "property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"],
                 id="list-map-keys-required"),
    pytest.param(_set("spec.preserveUnknownFields", True),
                 ["spec.preserveUnknownFields: Invalid value: true: must be false"], id="preserve-unknown-fields"),
    pytest.param(_set("spec.conversion", {"strategy": "Webhook"}),
                 ["spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"],
                 id="webhook-needs-client-config"),
])
def test_validation_messages(change: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    crd = widget_crd()
    change(crd)
    assert _messages(crd) == expected


def test_per_version_schemas_are_reported_per_version() -> None:
    crd = widget_crd()
    v2 = {"name": "v2", "served": True, "storage": False,
          "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"description": "no type"}}}}}
    crd["spec"]["versions"].append(v2)
    assert _messages(crd) == ["spec.versions[1].schema.openAPIV3Schema.properties[spec].type: Required value: "
                              "must not be empty for specified object fields"]


def test_protected_group_needs_approval() -> None:
    crd = widget_crd(group="widgets.k8s.io")
    crd["metadata"]["name"] = "widgets.widgets.k8s.io"
    assert _messages(crd) == ['metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups '
                              'must have approval annotation "api-approved.kubernetes.io", see '
                              'https://github.com/kubernetes/enhancements/pull/1111']


def test_update_keeps_group_and_plural() -> None:
    old = default_crd(widget_crd())
    old["status"].update(crd_status(old))
    new = default_crd(widget_crd())
    new["spec"]["names"]["kind"] = "Gadget"
    new["spec"]["names"]["listKind"] = "GadgetList"
    assert [e.message() for e in validate_crd_update(new, old)] == [
        'spec.names.kind: Invalid value: "Gadget": field is immutable']


def test_status_accepts_names_and_establishes() -> None:
    crd = default_crd(widget_crd())
    status = crd_status(crd, now="2025-01-02T03:04:05Z")
    assert status["acceptedNames"] == {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                       "listKind": "WidgetList", "shortNames": ["wd"]}
    assert status["conditions"] == [
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z",
         "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z",
         "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
    ]
    assert status["storedVersions"] == ["v1"]
    crd["status"] = status
    again = crd_status(crd, now="2030-01-01T00:00:00Z")
    assert [c["lastTransitionTime"] for c in again["conditions"]] == ["2025-01-02T03:04:05Z"] * 2


def test_status_reports_a_name_conflict_in_the_same_group() -> None:
    existing = default_crd(widget_crd())
    existing["metadata"]["name"] = "gizmos.example.com"
    existing["status"] = crd_status(existing)
    crd = default_crd(widget_crd())
    status = crd_status(crd, [existing])
    names, established = status["conditions"]
    assert (names["status"], names["reason"], names["message"]) == (
        "False", "ListKindConflict", '"WidgetList" is already in use')
    assert "plural" not in status["acceptedNames"]
    assert (established["status"], established["reason"]) == ("False", "NotAccepted")
