"""Server-side apply: merging by schema, ownership, pruning, conflicts, and kubectl's
upgrade from client-side apply. Expected managedFields and messages are Kubernetes'."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.patch.apply import LAST_APPLIED, merge, server_side_apply
from apiserver.patch.managedfields import track_update
from apiserver.schema import SchemaNode

T1, T2, T3 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"
CM = SchemaNode.builtin("", "v1", "ConfigMap")
DEPLOY = SchemaNode.builtin("apps", "v1", "Deployment")
CONTAINERS = ("spec", "template", "spec", "containers")


def configmap(data: dict | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "cm", "namespace": "default", **meta}}
    if data is not None:
        obj["data"] = data
    return obj


def deployment(replicas: int | None = 2, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1", **container}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": spec}


def apply(live: dict | None, config: dict, manager: str = "kubectl", *, force: bool = False, now: str = T2,
          schema: SchemaNode | None = CM, subresource: str = "") -> dict:
    api_version = config.get("apiVersion", "v1")
    before = copy.deepcopy((live, config))
    out = server_side_apply(live, config, schema=schema, manager=manager, api_version=api_version, force=force,
                            now=now, subresource=subresource)
    assert (live, config) == before, "inputs must not be changed"
    return out


def conflict(live: dict, config: dict, manager: str = "kubectl", **kwargs: Any) -> StatusError:
    with pytest.raises(StatusError) as caught:
        apply(live, config, manager, **kwargs)
    return caught.value


def owners(obj: dict) -> dict[str, dict]:
    return {e["manager"]: e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def times(obj: dict) -> dict[str, str | None]:
    return {e["manager"]: e.get("time") for e in obj["metadata"].get("managedFields", [])}


def dig(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def with_entries(obj: dict, *entries: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["managedFields"] = list(entries)
    return obj


def update_entry(manager: str, fields: dict, api_version: str = "v1", subresource: str = "") -> dict:
    out = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": T1,
           "fieldsType": "FieldsV1", "fieldsV1": fields}
    return {**out, "subresource": subresource} if subresource else out


def apply_entry(manager: str, fields: dict, api_version: str = "v1") -> dict:
    return {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": fields}


# --- create, re-apply, change -------------------------------------------------------------

def test_create_by_apply_owns_what_it_applied():
    config = configmap({"key": "some value"}, labels={"test-label": "test"})
    obj = apply(None, config, now=T1)
    assert obj["metadata"].pop("managedFields") == [apply_entry("kubectl", {
        "f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}})]
    assert obj == config


def test_create_deployment_by_apply_matches_kubernetes_field_set():
    obj = apply(None, deployment(args=["--a"], ports=[{"containerPort": 80}]), schema=DEPLOY)
    assert owners(obj)["kubectl"] == {"f:spec": {
        "f:replicas": {}, "f:selector": {},
        "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {
            'k:{"name":"web"}': {".": {}, "f:args": {}, "f:image": {}, "f:name": {}, "f:ports": {
                'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}}}


def test_reapplying_unchanged_config_changes_nothing_not_even_the_time():
    obj = apply(None, configmap({"key": "v"}), now=T1)
    assert apply(obj, configmap({"key": "v"}), now=T2) == obj


def test_applying_a_new_value_changes_it_and_the_time():
    obj = apply(apply(None, configmap({"key": "v"}), now=T1), configmap({"key": "w"}), now=T2)
    assert obj["data"] == {"key": "w"} and times(obj) == {"kubectl": T2}


def test_two_appliers_setting_the_same_value_share_the_field():
    obj = apply(None, configmap({"key": "v"}), "a", now=T1)
    obj = apply(obj, configmap({"key": "v", "other": "x"}), "b", now=T2)
    assert owners(obj) == {"a": {"f:data": {"f:key": {}}}, "b": {"f:data": {"f:key": {}, "f:other": {}}}}
    assert times(obj) == {"a": T1, "b": T2}
    shared = conflict(obj, configmap({"key": "changed"}), "a")
    assert shared.message == 'Apply failed with 1 conflict: conflict with "b": .data.key'


# --- conflicts ------------------------------------------------------------------------------

@pytest.mark.parametrize("entries, message, causes", [
    pytest.param([apply_entry("a", {"f:data": {"f:key": {}}})],
                 'Apply failed with 1 conflict: conflict with "a": .data.key',
                 [("conflict with \"a\"", ".data.key")], id="another-applier"),
    pytest.param([update_entry("kubectl-edit", {"f:data": {"f:key": {}}})],
                 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.key',
                 [("conflict with \"kubectl-edit\" using v1", ".data.key")], id="an-updater"),
    pytest.param([update_entry("kubelet", {"f:data": {"f:key": {}}}, subresource="status")],
                 'Apply failed with 1 conflict: conflict with "kubelet" with subresource "status" using v1: .data.key',
                 [("conflict with \"kubelet\" with subresource \"status\" using v1", ".data.key")],
                 id="an-updater-of-a-subresource"),
    pytest.param([update_entry("b", {"f:data": {"f:other": {}}}),
                  apply_entry("a", {"f:data": {"f:key": {}, "f:more": {}}})],
                 'Apply failed with 3 conflicts: conflicts with "a":\n- .data.key\n- .data.more\n'
                 'conflicts with "b" using v1:\n- .data.other',
                 [('conflict with "a"', ".data.key"), ('conflict with "a"', ".data.more"),
                  ('conflict with "b" using v1', ".data.other")], id="several"),
])
def test_conflict_is_a_409_kubectl_understands(entries, message, causes):
    live = with_entries(configmap({"key": "v", "more": "m", "other": "o"}), *entries)
    error = conflict(live, configmap({"key": "x", "more": "y", "other": "z"}))
    assert (error.code, error.reason, error.message) == (409, "Conflict", message)
    assert error.to_status()["details"] == {"causes": [
        {"reason": "FieldManagerConflict", "message": m, "field": f} for m, f in causes]}


def test_force_moves_conflicting_fields_to_the_applier():
    live = with_entries(configmap({"key": "v", "other": "o"}),
                        update_entry("kubectl-edit", {"f:data": {"f:key": {}}}),
                        apply_entry("a", {"f:data": {"f:key": {}, "f:other": {}}}))
    obj = apply(live, configmap({"key": "x"}), "kubectl", force=True)
    assert obj["data"] == {"key": "x", "other": "o"}
    assert owners(obj) == {"kubectl": {"f:data": {"f:key": {}}}, "a": {"f:data": {"f:other": {}}}}
    assert times(obj) == {"kubectl": T2, "a": T1}


# --- removing fields by no longer applying them ---------------------------------------------

@pytest.mark.parametrize("others, data, labels", [
    pytest.param([], {"keep": "1"}, None, id="owned-by-nobody-else-removed"),
    pytest.param([apply_entry("b", {"f:data": {"f:drop": {}}})], {"keep": "1", "drop": "2"}, None,
                 id="co-owned-by-another-applier-kept"),
    pytest.param([update_entry("kubectl-edit", {"f:metadata": {"f:labels": {"f:x": {}}}})],
                 {"keep": "1"}, {"x": "y"}, id="owned-by-an-updater-kept"),
])
def test_fields_no_longer_applied_are_removed_unless_someone_else_owns_them(others, data, labels):
    obj = apply(None, configmap({"keep": "1", "drop": "2"}, labels={"x": "y"}), "a", now=T1)
    obj["metadata"]["managedFields"] += others
    obj = apply(obj, configmap({"keep": "1"}), "a", now=T2)
    assert obj.get("data") == data and obj["metadata"].get("labels") == labels
    assert owners(obj)["a"] == {"f:data": {"f:keep": {}}}


# --- list semantics --------------------------------------------------------------------------

def test_map_lists_merge_by_keys_and_keep_other_appliers_elements():
    obj = apply(None, deployment(ports=[{"containerPort": 53, "protocol": "UDP"}]), "a", schema=DEPLOY)
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {
        "spec": {"containers": [{"name": "proxy", "image": "envoy"},
                                {"name": "web", "ports": [{"containerPort": 53}]}]}}}}
    obj = apply(obj, sidecar, "injector", schema=DEPLOY)
    containers = dig(obj, *CONTAINERS)
    assert [c["name"] for c in containers] == ["proxy", "web"]
    assert containers[1]["ports"] == [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]
    assert dig(owners(obj)["injector"], "f:spec", "f:template", "f:spec", "f:containers") == {
        'k:{"name":"proxy"}': {".": {}, "f:image": {}, "f:name": {}},
        'k:{"name":"web"}': {".": {}, "f:name": {}, "f:ports": {
            'k:{"containerPort":53,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}
    # the first applier owns the UDP element under its full two-key identity
    web = dig(owners(obj)["a"], "f:spec", "f:template", "f:spec", "f:containers")['k:{"name":"web"}']
    assert web["f:ports"]['k:{"containerPort":53,"protocol":"UDP"}'] == {".": {}, "f:containerPort": {}, "f:protocol": {}}
    obj = apply(obj, deployment(ports=[{"containerPort": 53, "protocol": "UDP"}], image="nginx:2"), "a",
                schema=DEPLOY)
    assert [(c["name"], c["image"] if "image" in c else None) for c in dig(obj, *CONTAINERS)] == [
        ("proxy", "envoy"), ("web", "nginx:2")]


@pytest.mark.parametrize("live, applied, merged", [
    pytest.param(["a", "b", "c"], ["c", "a"], ["b", "c", "a"], id="applied-order-wins-for-shared"),
    pytest.param(["a", "b"], ["b", "c"], ["a", "b", "c"], id="new-after-shared"),
    pytest.param(["a", "b"], ["c"], ["a", "b", "c"], id="new-at-end"),
    pytest.param([], ["x"], ["x"], id="into-empty"),
])
def test_set_merge_order(live, applied, merged):
    result = merge({"metadata": {"finalizers": live}}, {"metadata": {"finalizers": applied}}, CM)
    assert result["metadata"]["finalizers"] == merged


def test_set_lists_are_owned_element_by_element():
    obj = apply(None, configmap(finalizers=["example.com/a"]), "a", now=T1)
    obj = apply(obj, configmap(finalizers=["example.com/b"]), "b", now=T2)
    assert obj["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert owners(obj)["b"] == {"f:metadata": {"f:finalizers": {'v:"example.com/b"': {}}}}
    obj = apply(obj, configmap(), "a", now=T3)
    assert obj["metadata"]["finalizers"] == ["example.com/b"] and "a" not in owners(obj)


def test_atomic_lists_are_owned_and_replaced_whole():
    obj = apply(None, deployment(args=["--a", "--b"]), "a", schema=DEPLOY)
    error = conflict(obj, deployment(args=["--c"]), "b", schema=DEPLOY)
    assert error.message.endswith(': .spec.template.spec.containers[name="web"].args')
    obj = apply(obj, deployment(args=["--c"]), "b", schema=DEPLOY, force=True)
    assert dig(obj, *CONTAINERS)[0]["args"] == ["--c"]
    assert "f:args" not in json.dumps(owners(obj)["a"])


# --- Updates, subresources, custom resources ---------------------------------------------------

def test_apply_after_an_update_conflicts_only_where_values_differ():
    obj = copy.deepcopy(deployment())
    track_update(None, obj, schema=DEPLOY, manager="kubectl-create", api_version="apps/v1", now=T1)
    edited = copy.deepcopy(obj)
    dig(edited, *CONTAINERS)[0]["image"] = "nginx:2"
    track_update(obj, edited, schema=DEPLOY, manager="kubectl-edit", api_version="apps/v1", now=T2)
    error = conflict(edited, deployment(), schema=DEPLOY)
    assert error.message == ('Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
                             '.spec.template.spec.containers[name="web"].image')
    obj = apply(edited, deployment(image="nginx:2", replicas=2), schema=DEPLOY, now=T3)
    assert set(owners(obj)) == {"kubectl", "kubectl-create", "kubectl-edit"} and times(obj)["kubectl"] is None


def test_status_subresource_apply_owns_only_status():
    live = apply(None, deployment(), "kubectl", schema=DEPLOY, now=T1)
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 9}, "status": {"replicas": 2}}
    obj = apply(live, status, "controller", schema=DEPLOY, subresource="status")
    entry = obj["metadata"]["managedFields"][-1]
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}
    assert "f:status" not in owners(apply(live, {**deployment(), "status": {"replicas": 1}}, schema=DEPLOY))["kubectl"]


CRD_SCHEMA = SchemaNode.from_openapi({"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "size": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    "routes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host", "port"],
               "items": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer"},
                                                          "weight": {"type": "integer"}}}},
    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}})


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"app": "x"}},
            "spec": spec}


def test_custom_resource_schema_drives_ownership():
    config = widget(size=1, tags=["a"], routes=[{"host": "h", "port": 80, "weight": 1}],
                    config={"nested": {"x": 1}, "list": [1, 2]})
    obj = apply(None, config, "a", schema=CRD_SCHEMA)
    assert owners(obj)["a"] == {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {
        "f:config": {"f:list": {}, "f:nested": {".": {}, "f:x": {}}},
        "f:routes": {'k:{"host":"h","port":80}': {".": {}, "f:host": {}, "f:port": {}, "f:weight": {}}},
        "f:size": {}, "f:tags": {'v:"a"': {}}}}
    obj = apply(obj, widget(tags=["b"], routes=[{"host": "h", "port": 81}], config={"nested": {"y": 2}}), "b",
                schema=CRD_SCHEMA)
    assert obj["spec"]["tags"] == ["a", "b"] and [r["port"] for r in obj["spec"]["routes"]] == [80, 81]
    assert obj["spec"]["config"] == {"nested": {"x": 1, "y": 2}, "list": [1, 2]}


# --- client-side apply upgrade, before-first-apply --------------------------------------------

def client_side_applied(config: dict) -> dict:
    obj = copy.deepcopy(config)
    obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config, sort_keys=True, separators=(",", ":")) + "\n"}
    track_update(None, obj, schema=DEPLOY, manager="kubectl-client-side-apply", api_version="apps/v1", now=T1)
    return obj


def test_kubectl_server_side_apply_takes_over_fields_client_side_apply_set():
    obj = apply(client_side_applied(deployment(replicas=2)), deployment(replicas=3), "kubectl", schema=DEPLOY)
    assert obj["spec"]["replicas"] == 3
    assert "f:replicas" not in owners(obj)["kubectl-client-side-apply"]["f:spec"]
    assert json.loads(obj["metadata"]["annotations"][LAST_APPLIED]) == deployment(replicas=3)


@pytest.mark.parametrize("manager, scaled, message", [
    pytest.param("other", False, 'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas',
                 id="only-for-the-kubectl-manager"),
    pytest.param("kubectl", True, 'conflict with "kubectl-scale" with subresource "scale" using apps/v1: '
                                  '.spec.replicas', id="not-for-values-changed-since"),
])
def test_client_side_apply_upgrade_limits(manager, scaled, message):
    obj = client_side_applied(deployment(replicas=2))
    if scaled:
        new = copy.deepcopy(obj)
        new["spec"]["replicas"] = 5
        track_update(obj, new, schema=DEPLOY, manager="kubectl-scale", api_version="apps/v1", now=T2,
                     subresource="scale")
        obj = new
    error = conflict(obj, deployment(replicas=3), manager, schema=DEPLOY)
    assert error.message == "Apply failed with 1 conflict: " + message


def test_object_without_managed_fields_is_first_owned_by_before_first_apply():
    error = conflict(configmap({"key": "v"}), configmap({"key": "w"}), "a")
    assert error.message == 'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.key'
    obj = apply(configmap({"key": "v", "other": "o"}), configmap({"key": "v"}), "a")
    assert owners(obj) == {"a": {"f:data": {"f:key": {}}},
                           "before-first-apply": {"f:data": {".": {}, "f:key": {}, "f:other": {}}}}


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("config, code, message", [
    pytest.param({**configmap(), "metadata": {"name": "cm", "managedFields": []}}, 400,
                 "metadata.managedFields must be nil", id="managed-fields-sent"),
    pytest.param({**configmap(), "apiVersion": "v2"}, 400,
                 "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1",
                 id="wrong-version"),
    pytest.param({**configmap(), "data": {"k": 1}, "binaryData": None, "extra": True}, 500,
                 "failed to create typed patch object (default/cm; /v1, Kind=ConfigMap): .extra: field not "
                 "declared in schema", id="undeclared-field"),
])
def test_invalid_configs(config, code, message):
    with pytest.raises(StatusError) as caught:
        server_side_apply(None, config, schema=CM, manager="m", api_version="v1", force=False, now=T1)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_duplicate_map_list_keys_in_config_are_rejected():
    config = deployment()
    dig(config, *CONTAINERS).append({"name": "web", "image": "x"})
    with pytest.raises(StatusError) as caught:
        apply(None, config, schema=DEPLOY)
    assert caught.value.message == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                                    '.spec.template.spec.containers: duplicate entries for key [name="web"]')


def test_null_in_config_conflicts_like_a_change_and_removes_the_value():
    obj = apply(None, deployment(replicas=2), "a", schema=DEPLOY)
    unset = {**deployment(), "spec": {"replicas": None}}
    error = conflict(obj, unset, "b", schema=DEPLOY)
    assert error.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    obj = apply(obj, unset, "b", schema=DEPLOY, force=True)
    assert "replicas" not in obj["spec"] and owners(obj)["b"] == {"f:spec": {"f:replicas": {}}}


def test_result_shares_nothing_with_the_live_object():
    live = apply(None, deployment(), "a", schema=DEPLOY)
    snapshot = copy.deepcopy(live)
    labels_only = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"x": "y"}}}
    obj = apply(live, labels_only, "b", schema=DEPLOY)
    dig(obj, *CONTAINERS)[0]["image"] = "mutated"
    obj["spec"]["selector"]["matchLabels"]["app"] = "mutated"
    assert live == snapshot


def test_custom_resource_metadata_is_always_object_meta():
    schema = SchemaNode.from_openapi({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}})
    obj = apply(None, widget(anything={"goes": True}), "a", schema=schema)
    assert owners(obj)["a"] == {"f:metadata": {"f:labels": {"f:app": {}}},
                                "f:spec": {"f:anything": {".": {}, "f:goes": {}}}}
