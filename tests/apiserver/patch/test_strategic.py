"""Strategic merge patch: the bodies kubectl sends, list merging, directives, errors.

Every table here is also fed to the real kubectl 1.32 (test_kubectl_agreement.py), so the
expectations are Kubernetes' behaviour, not just this implementation's.
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.patch.strategic import strategic_merge_patch
from apiserver.schema import SchemaNode
from tests.apiserver.patch.objects import at, configmap, deployment, names, service


def schema_of(obj: dict[str, Any]) -> SchemaNode:
    group, _, version = obj["apiVersion"].rpartition("/")
    node = SchemaNode.builtin(group, version, obj["kind"])
    assert node is not None
    return node


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def pod_spec(**fields: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": fields}}}


def container_patch(*items: dict[str, Any], order: list[str] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"containers": list(items)}
    if order is not None:
        fields["$setElementOrder/containers"] = [{"name": n} for n in order]
    return pod_spec(**fields)


# What kubectl sends for its commands (bodies as seen on the wire, see KUBECTL.md).
KUBECTL_COMMANDS = [
    pytest.param(
        deployment(),
        container_patch({"env": None, "image": "nginx:2", "name": "a"}, {"$patch": "delete", "name": "b"}, order=["a"]),
        {"spec.template.spec.containers": [{
            "name": "a", "image": "nginx:2",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }]},
        id="apply-3way-new-image-drops-env-and-deletes-container",
    ),
    pytest.param(
        deployment(),
        container_patch({"image": "nginx:2", "name": "a"}, order=["a", "b"]),
        {"spec.template.spec.containers.0.image": "nginx:2", "spec.template.spec.containers.1.image": "busybox",
         "spec.template.spec.containers.0.env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        id="set-image-changes-only-that-container",
    ),
    pytest.param(
        deployment(),
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}},
        {"spec.template.metadata": {"labels": {"app": "web"},
                                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}},
        id="rollout-restart-adds-template-annotation",
    ),
    pytest.param(deployment(), {"spec": {"paused": True}}, {"spec.paused": True}, id="rollout-pause"),
    pytest.param(deployment(paused=True), {"spec": {"paused": None}}, {"spec": deployment()["spec"]}, id="rollout-resume-removes-paused"),
    pytest.param(
        deployment(),
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}},
        {"spec.strategy": {"type": "Recreate"}},
        id="apply-strategy-rollingupdate-to-recreate-with-retainkeys",
    ),
    pytest.param(
        deployment(),
        pod_spec(**{"$setElementOrder/volumes": [{"name": "data"}], "volumes": [
            {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "emptyDir": None, "name": "data"}]}),
        {"spec.template.spec.volumes": [{"name": "data", "configMap": {"name": "cfg"}}]},
        id="apply-volume-source-switch-with-retainkeys",
    ),
    pytest.param(
        deployment(),
        {"metadata": {"labels": {"tier": "fe", "app": None}}},
        {"metadata.labels": {"tier": "fe"}},
        id="labels-merge-and-null-removes",
    ),
    pytest.param(deployment(), {"spec": {"replicas": 5}}, {"spec.replicas": 5, "spec.selector": {"matchLabels": {"app": "web"}}},
                 id="scalar-replaced-siblings-kept"),
    pytest.param(
        deployment(),
        pod_spec(**{"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}),
        {"spec.template.spec.containers": [deployment()["spec"]["template"]["spec"]["containers"][1],
                                           deployment()["spec"]["template"]["spec"]["containers"][0]]},
        id="apply-reorder-only-with-setelementorder",
    ),
]

LIST_MERGING = [
    pytest.param(deployment(), container_patch({"name": "c", "image": "redis"}),
                 {"spec.template.spec.containers.0": {"name": "c", "image": "redis"}},
                 id="new-container-goes-first-without-order"),
    pytest.param(deployment(), container_patch({"name": "c", "image": "redis"}, order=["a", "b", "c"]),
                 {"spec.template.spec.containers.2": {"name": "c", "image": "redis"}},
                 id="new-container-placed-by-setelementorder"),
    pytest.param(deployment(), container_patch({"name": "c", "image": "redis"}, order=["a", "c", "b"]),
                 {"spec.template.spec.containers.1.name": "c"},
                 id="new-container-in-the-middle-by-setelementorder"),
    pytest.param(deployment(), container_patch({"image": "redis", "name": "c"}, {"$patch": "delete", "name": "a"}, order=["c"]),
                 {"spec.template.spec.containers": [deployment()["spec"]["template"]["spec"]["containers"][1],
                                                    {"name": "c", "image": "redis"}]},
                 id="apply-rename-container-keeps-unmanaged-sidecar-first"),
    pytest.param(deployment(), container_patch({"name": "a", "env": [{"name": "Z", "value": "3"}]}),
                 {"spec.template.spec.containers.0.env": [{"name": "Z", "value": "3"}, {"name": "X", "value": "1"},
                                                          {"name": "Y", "value": "2"}]},
                 id="env-added-by-name"),
    pytest.param(deployment(), container_patch({"name": "a", "env": [{"name": "Y", "value": "20"}]}),
                 {"spec.template.spec.containers.0.env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "20"}]},
                 id="env-value-changed-by-name-keeps-order"),
    pytest.param(deployment(), container_patch({"name": "a", "env": [{"$patch": "delete", "name": "X"}]}),
                 {"spec.template.spec.containers.0.env": [{"name": "Y", "value": "2"}]},
                 id="env-removed-by-name"),
    pytest.param(deployment(),
                 container_patch({"name": "a", "$setElementOrder/env": [{"name": "X"}, {"name": "Y"}, {"name": "Z"}],
                                  "env": [{"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
                                 order=["a", "b"]),
                 {"spec.template.spec.containers.0.env.2": {"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}},
                 id="apply-env-appended-by-nested-setelementorder"),
    pytest.param(deployment(), container_patch({"name": "a", "ports": [{"containerPort": 443, "protocol": "TCP"}]}),
                 {"spec.template.spec.containers.0.ports": [{"containerPort": 443, "protocol": "TCP"},
                                                            {"containerPort": 80, "protocol": "TCP"}]},
                 id="port-added-by-containerport"),
    pytest.param(deployment(), container_patch({"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}),
                 {"spec.template.spec.containers.0.ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
                 id="port-merged-by-containerport"),
    pytest.param(deployment(), container_patch({"name": "a", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}),
                 {"spec.template.spec.containers.0.volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]},
                 id="volumemount-merged-by-mountpath"),
    pytest.param(deployment(), pod_spec(volumes=[{"name": "cache", "emptyDir": {"medium": "Memory"}}]),
                 {"spec.template.spec.volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}},
                                                 {"name": "data", "emptyDir": {}}]},
                 id="volume-added-by-name"),
    pytest.param(deployment(), pod_spec(tolerations=[{"key": "gpu", "operator": "Exists"}]),
                 {"spec.template.spec.tolerations": [{"key": "gpu", "operator": "Exists"}]},
                 id="tolerations-have-no-merge-key-so-are-replaced"),
    pytest.param(deployment(), container_patch({"name": "b", "args": ["sleep", "1"]}),
                 {"spec.template.spec.containers.1.args": ["sleep", "1"]},
                 id="container-args-are-replaced"),
    pytest.param(deployment(), container_patch(),
                 {"spec.template.spec.containers": deployment()["spec"]["template"]["spec"]["containers"]},
                 id="empty-merging-list-changes-nothing"),
    pytest.param(deployment(), {"metadata": {"finalizers": ["c.example.com/z"]}},
                 {"metadata.finalizers": ["c.example.com/z", "a.example.com/x", "b.example.com/y"]},
                 id="finalizers-merged-as-a-set-new-first"),
    pytest.param(deployment(), {"metadata": {"finalizers": ["b.example.com/y"]}},
                 {"metadata.finalizers": ["a.example.com/x", "b.example.com/y"]},
                 id="finalizers-existing-entry-not-duplicated"),
    pytest.param(deployment(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}},
                 {"metadata.finalizers": ["b.example.com/y"]},
                 id="finalizer-deleted-from-primitive-list"),
    pytest.param(deployment(), {"metadata": {"$setElementOrder/finalizers": ["b.example.com/y", "c.example.com/z"],
                                             "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
                                             "finalizers": ["c.example.com/z"]}},
                 {"metadata.finalizers": ["b.example.com/y", "c.example.com/z"]},
                 id="apply-finalizers-3way-add-delete-order"),
    pytest.param(deployment(), {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u-2"}]}},
                 {"metadata.ownerReferences.1.uid": "u-1", "metadata.ownerReferences.0.uid": "u-2"},
                 id="ownerreferences-merged-by-uid"),
    pytest.param(service(), {"spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}},
                 {"spec.ports": [{"name": "https", "port": 443, "targetPort": 8443},
                                 {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]},
                 id="service-port-added-by-port"),
]

DIRECTIVES = [
    pytest.param(deployment(), container_patch({"$patch": "replace"}, {"name": "c", "image": "redis"}),
                 {"spec.template.spec.containers": [{"name": "c", "image": "redis"}]},
                 id="list-replace-directive"),
    pytest.param(deployment(), {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "v": "2"}}}}},
                 {"spec.template.metadata.labels": {"v": "2"}},
                 id="map-replace-directive"),
    pytest.param(deployment(), {"spec": {"strategy": {"$patch": "delete"}}}, {"spec.strategy": {}},
                 id="map-delete-directive-empties-the-map"),
    pytest.param(deployment(), {"spec": {"minReadySeconds": 5, "template": {"spec": {"securityContext": {"$patch": "delete"}}}}},
                 {"spec.minReadySeconds": 5, "spec.template.spec": deployment()["spec"]["template"]["spec"]},
                 id="map-delete-directive-on-missing-field-adds-nothing"),
    pytest.param(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
                 {"spec.strategy": {"type": "Recreate"}},
                 id="retainkeys-clears-unlisted-keys"),
    pytest.param(deployment(), pod_spec(initContainers=[{"name": "init", "image": "busybox",
                                                         "env": [{"name": "Q", "value": None}, {"$patch": "delete", "name": "R"}]}]),
                 {"spec.template.spec.initContainers": [{"name": "init", "image": "busybox", "env": [{"name": "Q"}]}]},
                 id="new-field-loses-nulls-and-directives"),
    pytest.param(deployment(), {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}},
                 {"spec.strategy.rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                 id="int-or-string-type-change-replaces"),
    pytest.param(deployment(), {"spec": {"revisionHistoryLimit": None}}, {"spec": deployment()["spec"]},
                 id="null-for-missing-field-is-a-no-op"),
    pytest.param(configmap(), {"data": {"k": None, "m": "x"}, "metadata": {"annotations": {"note": "n"}}},
                 {"data": {"l": "w", "m": "x"}, "metadata.annotations": {"note": "n"}},
                 id="configmap-data-merged"),
    pytest.param(deployment(), None, {"spec": deployment()["spec"]}, id="null-body-is-an-empty-patch"),
]

SUCCESS = [*KUBECTL_COMMANDS, *LIST_MERGING, *DIRECTIVES]

FAILURES = [
    pytest.param(deployment(), container_patch({"name": "a", "$patch": "bogus"}),
                 500, "unknown patch type: bogus in map: map[$patch:bogus name:a]", id="unknown-list-element-directive"),
    pytest.param(deployment(), {"spec": {"strategy": {"$patch": "merge"}}},
                 500, "unknown patch type: merge in map: map[$patch:merge]", id="merge-directive-on-map"),
    pytest.param(deployment(), {"spec": {"strategy": {"$patch": 5}}},
                 500, "unknown patch type: %!s(int64=5) in map: map[$patch:5]", id="non-string-directive"),
    pytest.param(deployment(), container_patch({"name": "a", "$patch": "merge"}),
                 500, "merging lists cannot yet be specified in the patch", id="merge-directive-in-list"),
    pytest.param(deployment(), container_patch({"image": "x"}),
                 500, "map: map[image:x] does not contain declared merge key: name", id="element-without-merge-key"),
    pytest.param(deployment(), container_patch({"$patch": "delete"}),
                 500, "map: map[$patch:delete] does not contain declared merge key: name", id="delete-without-merge-key"),
    pytest.param(deployment(), container_patch({"name": "a", "image": "c"}, order=["c"]),
                 500, "The order in patch list:\n[map[image:c name:a]]\n doesn't match $setElementOrder list:\n[map[name:c]]",
                 id="patch-list-not-in-setelementorder"),
    pytest.param(deployment(), {"metadata": {"$setElementOrder/finalizers": "x"}},
                 500, "expected a []interface {}, but received a string", id="setelementorder-not-a-list"),
    pytest.param(deployment(), {"metadata": {"finalizers": [1]}},
                 500, "list element types are not identical: [[a.example.com/x b.example.com/y] [1]]",
                 id="mixed-element-types"),
    pytest.param(deployment(), {"spec": {"strategy": {"$retainKeys": "type"}}},
                 400, "invalid patch format of retainKeys", id="retainkeys-not-a-list"),
    pytest.param(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}},
                 400, "invalid patch format of retainKeys", id="retainkeys-missing-a-patched-key"),
    pytest.param(deployment(), {"metadata": {"$deleteFromPrimitiveList": ["a"]}},
                 400, "invalid patch format of primitive list", id="deletefromprimitivelist-without-field"),
    pytest.param(deployment(), {"metadata": {"$setElementOrder": ["a"]}},
                 400, "invalid patch format of setElementOrder list", id="setelementorder-without-field"),
    pytest.param({**configmap(), "metadata": {**configmap()["metadata"], "finalizers": []}},
                 {"metadata": {"finalizers": [["x"]]}}, 422, "lists of lists are not supported", id="list-of-lists"),
]


def check(result: dict[str, Any], expected: dict[str, Any]) -> None:
    for path, value in expected.items():
        assert at(result, path) == value, path


@pytest.mark.parametrize(("doc", "patch", "expected"), SUCCESS)
def test_strategic_merge_patch_result(doc: dict[str, Any], patch: Any, expected: dict[str, Any]) -> None:
    check(strategic_merge_patch(doc, patch, schema_of(doc)), expected)


@pytest.mark.parametrize(("doc", "patch", "code", "message"), FAILURES)
def test_strategic_merge_patch_failure(doc: dict[str, Any], patch: Any, code: int, message: str) -> None:
    with pytest.raises(StatusError) as caught:
        strategic_merge_patch(doc, patch, schema_of(doc))
    assert caught.value.code == code
    assert caught.value.message.strip() == message or caught.value.details["causes"][0]["message"] == message


def test_failure_status_shapes_match_kube_apiserver() -> None:
    bad_request = pytest.raises(StatusError)
    with bad_request as caught:
        strategic_merge_patch(deployment(), {"spec": {"strategy": {"$retainKeys": 1}}}, schema_of(deployment()))
    assert caught.value.to_status()["reason"] == "BadRequest"
    with pytest.raises(StatusError) as caught:
        strategic_merge_patch(deployment(), container_patch({"image": "x"}), schema_of(deployment()))
    assert (caught.value.code, caught.value.reason) == (500, "")
    doc = {**configmap(), "metadata": {"name": "c", "finalizers": []}}
    with pytest.raises(StatusError) as caught:
        strategic_merge_patch(doc, {"metadata": {"finalizers": [["x"]]}}, schema_of(doc))
    assert caught.value.to_status()["reason"] == "Invalid"
    assert caught.value.message == "the server rejected our request due to an error in our request"
    assert caught.value.details == {"causes": [{"reason": "UnexpectedServerResponse",
                                                "message": "lists of lists are not supported"}]}


def test_non_object_body_is_a_bad_request() -> None:
    with pytest.raises(StatusError) as caught:
        strategic_merge_patch(deployment(), [{"op": "add"}], schema_of(deployment()))
    assert caught.value.code == 400
    assert caught.value.message == "json: cannot unmarshal array into Go value of type map[string]interface {}"


def test_inputs_are_not_mutated() -> None:
    doc, patch = deployment(), container_patch({"name": "a", "$setElementOrder/env": [{"name": "X"}],
                                                "env": [{"name": "Y", "$patch": "delete"}]}, order=["a", "b"])
    before = (deployment(), container_patch({"name": "a", "$setElementOrder/env": [{"name": "X"}],
                                             "env": [{"name": "Y", "$patch": "delete"}]}, order=["a", "b"]))
    result = strategic_merge_patch(doc, patch, schema_of(doc))
    assert (doc, patch) == before
    assert names(containers(result)[0]["env"]) == ["X"]
    containers(result)[0]["image"] = "changed"
    assert containers(doc)[0]["image"] == "nginx:1"


def test_fields_without_schema_merge_like_a_merge_patch() -> None:
    doc = deployment()
    doc["spec"]["extra"] = {"keep": 1, "list": [{"name": "a"}]}
    result = strategic_merge_patch(doc, {"spec": {"extra": {"add": 2, "list": [{"name": "b"}], "keep": None}}},
                                   schema_of(doc))
    assert result["spec"]["extra"] == {"add": 2, "list": [{"name": "b"}]}


def test_preserve_unknown_fields_node_merges_maps_and_replaces_lists() -> None:
    schema = SchemaNode.from_openapi({"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}})
    doc = {"spec": {"a": {"b": 1}, "items": [{"name": "x"}]}}
    result = strategic_merge_patch(doc, {"spec": {"a": {"c": 2}, "items": [{"name": "y"}]}}, schema)
    assert result == {"spec": {"a": {"b": 1, "c": 2}, "items": [{"name": "y"}]}}


def test_null_members_of_wholesale_values_are_dropped() -> None:
    # Kubernetes keeps them in the map and decodes them to zero values; a typed object
    # omits those, so dropping them gives the object the API server would store.
    result = strategic_merge_patch(deployment(), {"spec": {"strategy": {"$patch": "replace", "type": "Recreate",
                                                                        "rollingUpdate": None}}},
                                   schema_of(deployment()))
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_schema_is_required() -> None:
    with pytest.raises(AssertionError):
        strategic_merge_patch(configmap(), {"data": {}}, None)
