"""Field sets, their FieldsV1 encoding, and managedFields tracking of Update operations.

Expected encodings are the ones Kubernetes produces (server-side apply docs, real
`kubectl get -o yaml --show-managed-fields` output, structured-merge-diff's tests)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apiserver.patch.fieldsets import FieldSet, TypedError, element_order, path_string, to_field_set
from apiserver.patch.managedfields import (
    ManagedFieldsError,
    cap_update_managers,
    compare,
    decode_managed_fields,
    encode_managed_fields,
    track_update,
)
from apiserver.schema import SchemaNode

T1, T2, T3 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"
CM = SchemaNode.builtin("", "v1", "ConfigMap")
DEPLOY = SchemaNode.builtin("apps", "v1", "Deployment")
POD = SchemaNode.builtin("", "v1", "Pod")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def configmap(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", **meta}, "data": data}


def entry(manager: str, fields: dict, *, operation: str = "Update", api_version: str = "v1",
          time: str | None = T1, subresource: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version}
    if time:
        out["time"] = time
    out.update(fieldsType="FieldsV1", fieldsV1=fields)
    if subresource:
        out["subresource"] = subresource
    return out


def created(obj: dict, manager: str, schema: SchemaNode | None = CM, api_version: str = "v1") -> dict:
    obj = copy.deepcopy(obj)
    track_update(None, obj, schema=schema, manager=manager, api_version=api_version, now=T1)
    return obj


def updated(old: dict, change, manager: str, *, schema: SchemaNode | None = CM, now: str = T2,
            subresource: str = "", api_version: str = "v1") -> dict:
    new = copy.deepcopy(old)
    change(new)
    track_update(old, new, schema=schema, manager=manager, api_version=api_version, now=now,
                 subresource=subresource)
    return new


# --- FieldsV1 ---------------------------------------------------------------------------

@pytest.mark.parametrize("paths, fields_v1", [
    pytest.param([("f:data", "f:key"), ("f:metadata", "f:labels", "f:test-label")],
                 {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}},
                 id="docs-configmap-example"),
    pytest.param([("f:data",), ("f:data", "f:key")], {"f:data": {".": {}, "f:key": {}}},
                 id="dot-marks-a-member-with-children"),
    pytest.param([("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'),
                  ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:port")],
                 {"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}},
                 id="map-list-element"),
    pytest.param([("f:metadata", "f:finalizers", 'v:"example.com/a"')],
                 {"f:metadata": {"f:finalizers": {'v:"example.com/a"': {}}}}, id="set-element"),
    pytest.param([("i:1",), ('v:"x"',), ("v:2",), ('k:{"a":1}',), ("f:z",), ("f:a",)],
                 {"f:a": {}, "f:z": {}, 'k:{"a":1}': {}, "v:2": {}, 'v:"x"': {}, "i:1": {}},
                 id="fields-then-keys-then-values-then-indexes"),
])
def test_fields_v1_encoding_matches_kubernetes(paths, fields_v1):
    encoded = FieldSet.from_paths(paths).to_fields_v1()
    assert encoded == fields_v1 and list(encoded) == list(fields_v1)
    assert FieldSet.from_fields_v1(fields_v1) == FieldSet.from_paths(paths)


@pytest.mark.parametrize("fields_v1, paths", [
    pytest.param({'k:{"protocol":"TCP","containerPort":80}': {}}, [('k:{"containerPort":80,"protocol":"TCP"}',)],
                 id="key-fields-sorted"),
    pytest.param({"x:future": {}, "f:a": {}}, [("f:a",)], id="unknown-element-types-dropped"),
    pytest.param({"f:a": {"f:b": {}}}, [("f:a", "f:b")], id="children-without-dot-are-not-members"),
])
def test_fields_v1_decoding(fields_v1, paths):
    assert FieldSet.from_fields_v1(fields_v1) == FieldSet.from_paths(paths)


@pytest.mark.parametrize("bad", [
    pytest.param({"nocolon": {}}, id="missing-colon"),
    pytest.param({'k:["a"]': {}}, id="key-not-an-object"),
    pytest.param({"f:a": []}, id="value-not-an-object"),
])
def test_fields_v1_decoding_rejects_malformed(bad):
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1(bad)


def test_value_elements_order_numbers_before_strings_before_booleans():
    elements = ['v:"b"', "v:true", "v:10", 'v:"a"', "v:2"]
    assert sorted(elements, key=element_order) == ["v:2", "v:10", 'v:"a"', 'v:"b"', "v:true"]


@pytest.mark.parametrize("path, text", [
    pytest.param(("f:spec", "f:replicas"), ".spec.replicas", id="fields"),
    pytest.param(("f:spec", "f:containers", 'k:{"name":"web"}', "f:image"),
                 '.spec.containers[name="web"].image', id="map-list-key"),
    pytest.param(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'),
                 '.ports[containerPort=80,protocol="TCP"]', id="two-keys"),
    pytest.param(("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]', id="set-value"),
])
def test_path_string_as_in_conflict_messages(path, text):
    assert path_string(path) == text


A, B, AB, AC = ("f:a",), ("f:b",), ("f:a", "f:b"), ("f:a", "f:c")


@pytest.mark.parametrize("op, left, right, expected", [
    pytest.param("union", [A], [AB], [A, AB], id="union"),
    pytest.param("difference", [A, AB, AC], [AB], [A, AC], id="difference"),
    pytest.param("difference", [AB], [A], [AB], id="difference-keeps-children-of-removed-member"),
    pytest.param("recursive_difference", [AB, AC, B], [A], [B], id="recursive-difference-drops-subtree"),
    pytest.param("intersection", [A, AB, B], [AB, B, AC], [AB, B], id="intersection"),
])
def test_set_operations(op, left, right, expected):
    result = getattr(FieldSet.from_paths(left), op)(FieldSet.from_paths(right))
    assert result == FieldSet.from_paths(expected)


# --- objects to sets ---------------------------------------------------------------------

CONTAINER = {"name": "web", "image": "nginx", "args": ["a", "b"], "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}}}


@pytest.mark.parametrize("obj, schema, fields_v1", [
    pytest.param({"spec": {"containers": [CONTAINER]}}, POD,
                 {"f:spec": {"f:containers": {'k:{"name":"web"}': {
                     ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                     "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                     "f:resources": {"f:limits": {"f:cpu": {}}}}}}},
                 id="pod-lists-and-maps"),
    pytest.param({"spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {}}}, DEPLOY,
                 {"f:spec": {"f:selector": {}}}, id="atomic-map-whole-and-empty-struct-not-owned"),
    pytest.param({"metadata": {"finalizers": ["b", "a"]}, "spec": {"x": {"y": [1]}}}, None,
                 {"f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}},
                  "f:spec": {".": {}, "f:x": {".": {}, "f:y": {}}}},
                 id="no-schema-maps-granular-lists-atomic"),
])
def test_to_field_set(obj, schema, fields_v1):
    assert to_field_set(obj, schema).to_fields_v1() == fields_v1


@pytest.mark.parametrize("obj, message", [
    pytest.param({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}},
                 '.spec.containers: duplicate entries for key [name="a"]', id="duplicate-key"),
    pytest.param({"spec": {"containres": []}}, ".spec.containres: field not declared in schema", id="unknown-field"),
    pytest.param({"spec": {"containers": [{"image": "x"}]}},
                 '.spec.containers: element 0: associative list with keys has an element that omits key field '
                 '"name" (and doesn\'t have default value)', id="missing-key"),
])
def test_strict_field_set_rejects_what_apply_rejects(obj, message):
    with pytest.raises(TypedError) as caught:
        to_field_set(obj, POD, strict=True)
    assert str(caught.value) == message


def test_compare_adds_new_maps_and_modifies_leaves():
    old = {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}}
    new = {"data": {"a": "9"}, "metadata": {"name": "cm", "labels": {"x": "y"}}}
    diff = compare(old, new, CM)
    assert diff.modified == FieldSet.from_paths([("f:data", "f:a")])
    assert diff.removed == FieldSet.from_paths([("f:data", "f:b")])
    assert diff.added == FieldSet.from_paths([("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:x")])


# The fast path skips subtrees that are the same JSON value; these pin that it never
# skips one that is not (Python's == cannot tell true from 1, nor {"a": [1]} from {"a": [True]}).
@pytest.mark.parametrize("old_value, new_value, modified", [
    pytest.param({"k": True}, {"k": 1}, True, id="bool-vs-int"),
    pytest.param({"k": [1, 0]}, {"k": [True, False]}, True, id="bool-vs-int-in-list"),
    pytest.param({"k": 1}, {"k": 1.0}, False, id="int-vs-float-is-equal"),
    pytest.param({"b": "2", "a": "1"}, {"a": "1", "b": "2"}, False, id="reordered-keys"),
    pytest.param({"k": 2**70}, {"k": 2**70}, False, id="big-int"),
])
def test_compare_tells_json_values_apart_inside_equal_looking_subtrees(old_value, new_value, modified):
    old = {"metadata": {"name": "x", "annotations": {"keep": "1"}}, "spec": {"v": old_value}}
    new = {"metadata": {"name": "x", "annotations": {"keep": "1"}}, "spec": {"v": new_value}}
    diff = compare(old, new, None)
    assert diff.added.empty() and diff.removed.empty()
    assert diff.modified == (FieldSet.from_paths([("f:spec", "f:v", "f:k")]) if modified else FieldSet())


def test_compare_of_a_status_write_skips_the_unchanged_spec_but_finds_every_status_change():
    old = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
           "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Running"
    new["status"]["conditions"].append({"type": "Ready", "status": "True"})
    diff = compare(old, new, POD)
    assert diff.modified == FieldSet.from_paths([("f:status", "f:phase")])
    ready = ("f:status", "f:conditions", 'k:{"type":"Ready"}')
    assert diff.added == FieldSet.from_paths([ready, (*ready, "f:type"), (*ready, "f:status")])
    assert diff.removed.empty()


# --- managedFields entries ------------------------------------------------------------------

@pytest.mark.parametrize("entries, message", [
    pytest.param([{"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}],
                 "operation must be `Apply` or `Update`", id="operation"),
    pytest.param([{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1"}],
                 "apiVersion must not be empty", id="api-version"),
    pytest.param([{"manager": "m", "operation": "Update", "apiVersion": "v1"}],
                 "missing fieldsType in managed fields entry 0", id="fields-type-missing"),
    pytest.param([{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}],
                 'invalid fieldsType "FieldsV2" in managed fields entry 0', id="fields-type-invalid"),
])
def test_decode_rejects_invalid_entries(entries, message):
    with pytest.raises(ManagedFieldsError, match=message):
        decode_managed_fields(entries)


def test_entries_sorted_apply_first_then_by_time():
    entries = [entry("z", {"f:a": {}}, time=T1), entry("b", {"f:b": {}}, time=T3),
               entry("a", {"f:c": {}}, time=T3), entry("y", {"f:d": {}}, operation="Apply", time=T2)]
    names = [e["manager"] for e in encode_managed_fields(decode_managed_fields(entries))]
    assert names == ["y", "z", "a", "b"]


def test_update_entries_are_capped_into_ancient_changes():
    entries = [entry(f"m{i:02}", {f"f:k{i}": {}}, time=f"2024-05-01T10:{i:02}:00Z") for i in range(12)]
    managed = cap_update_managers(decode_managed_fields(entries))
    names = sorted(e.manager for e in managed.values())
    assert len(names) == 10 and "ancient-changes" in names and "m00" not in names and "m02" not in names
    bucket = next(e for e in managed.values() if e.manager == "ancient-changes")
    assert bucket.fields == FieldSet.from_paths([("f:k0",), ("f:k1",), ("f:k2",)])
    assert bucket.time == "2024-05-01T10:02:00Z"


# --- Update tracking ------------------------------------------------------------------------

def test_client_side_apply_create_owns_everything_it_sent():
    obj = created(configmap({"key": "v"}, annotations={LAST_APPLIED: "{}"}), "kubectl-client-side-apply")
    assert obj["metadata"]["managedFields"] == [entry("kubectl-client-side-apply", {
        "f:data": {".": {}, "f:key": {}},
        "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}}})]


def test_create_of_builtin_does_not_own_spec_itself():
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    obj = created(deploy, "kubectl-create", DEPLOY, "apps/v1")
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert "." not in fields["f:spec"] and "." not in fields["f:spec"]["f:template"]
    assert fields["f:spec"]["f:replicas"] == {}


@pytest.mark.parametrize("change, expected", [
    pytest.param(lambda o: o["data"].update(a="9"),
                 [entry("create", {"f:data": {".": {}, "f:b": {}}}), entry("edit", {"f:data": {"f:a": {}}}, time=T2)],
                 id="changed-field-moves-to-updater"),
    pytest.param(lambda o: o["data"].pop("a"), [entry("create", {"f:data": {".": {}, "f:b": {}}})],
                 id="removed-field-disowned-and-no-entry-for-remover"),
    pytest.param(lambda o: o["data"].update(a="1"), [entry("create", {"f:data": {".": {}, "f:a": {}, "f:b": {}}})],
                 id="no-op-changes-nothing"),
    pytest.param(lambda o: o["metadata"].update(resourceVersion="9", generation=2),
                 [entry("create", {"f:data": {".": {}, "f:a": {}, "f:b": {}}})], id="bookkeeping-metadata-not-owned"),
    pytest.param(lambda o: o.pop("data"), None, id="manager-left-with-nothing-dropped"),
])
def test_update_moves_ownership(change, expected):
    obj = created(configmap({"a": "1", "b": "2"}), "create")
    new = updated(obj, change, "edit")
    assert new["metadata"].get("managedFields") == expected


def test_same_manager_updates_merge_per_api_version():
    obj = created(configmap({"a": "1"}), "m")
    obj = updated(obj, lambda o: o["data"].update(b="2"), "m", now=T2)
    assert obj["metadata"]["managedFields"] == [entry("m", {"f:data": {".": {}, "f:a": {}, "f:b": {}}}, time=T2)]
    obj = updated(obj, lambda o: o["data"].update(c="3"), "m", now=T3, api_version="v2")
    assert [(e["apiVersion"], e["fieldsV1"]) for e in obj["metadata"]["managedFields"]] == [
        ("v1", {"f:data": {".": {}, "f:a": {}, "f:b": {}}}), ("v2", {"f:data": {"f:c": {}}})]


def test_status_subresource_entries_are_separate_and_own_only_status():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    obj = created(pod, "kubectl-create", POD)

    def set_status(o):
        o["status"] = {"phase": "Running"}
        o["spec"]["nodeName"] = "ignored-through-status"

    obj = updated(obj, set_status, "kubelet", schema=POD, subresource="status")
    kubelet = obj["metadata"]["managedFields"][1]
    assert kubelet == entry("kubelet", {"f:status": {"f:phase": {}}}, time=T2, subresource="status")
    obj = updated(obj, lambda o: o["status"].update(phase="Failed"), "kubectl-edit", schema=POD)
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["kubectl-create", "kubelet"]


@pytest.mark.parametrize("sent, expected_managers", [
    pytest.param([entry("imported", {"f:data": {"f:a": {}}})], ["imported", "edit"], id="valid-entries-honoured"),
    pytest.param([], None, id="empty-list-resets"),
    pytest.param([{}], None, id="single-empty-entry-resets"),
    pytest.param([{"manager": "x", "operation": "Nope"}], ["create", "edit"], id="invalid-entries-keep-live"),
    pytest.param(None, ["create", "edit"], id="null-keeps-live"),
])
def test_update_honours_sent_managed_fields(sent, expected_managers):
    obj = created(configmap({"a": "1"}), "create")

    def change(o):
        o["metadata"]["managedFields"] = sent
        o["data"]["b"] = "2"

    new = updated(obj, change, "edit")
    managers = [e["manager"] for e in new["metadata"].get("managedFields", [])] or None
    assert managers == expected_managers


def test_subresource_update_ignores_sent_managed_fields():
    obj = created(configmap({"a": "1"}), "create")

    def change(o):
        o["metadata"]["managedFields"] = []

    new = updated(obj, change, "edit", subresource="status")
    assert new["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_untracked_object_stays_untracked_on_update():
    obj = configmap({"a": "1"})
    new = updated(obj, lambda o: o["data"].update(a="2"), "edit")
    assert "managedFields" not in new["metadata"]


@pytest.mark.parametrize("value", [
    pytest.param({"name": "c", "containerPort": 80, "protocol": "TCP"}, id="map-list-keys"),
    pytest.param({"b": True, "a": None, "c": False}, id="bool-null"),
    pytest.param({"k": "<a&b>\u2028\u2029é\"\\\n"}, id="escapes"),
    pytest.param({"k": 1.0, "z": 2}, id="float-falls-back"),
    pytest.param({"k": {"nested": 1}}, id="nested-falls-back"),
    pytest.param("<x>&ü", id="string"),
    pytest.param([1, "a"], id="list"),
])
def test_go_json_fast_paths_write_what_the_general_encoder_writes(value):
    from apiserver.patch.fieldsets import _go_json, go_json

    assert go_json(value) == _go_json(value, True)
