"""JSON patch (RFC 6902) with the evanphx/json-patch v4 behaviour kube-apiserver has.

The SUCCESS and FAILURES tables are also run through the real kubectl 1.32
(test_kubectl_agreement.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.patch.jsonpatch import MAX_OPERATIONS, json_patch
from tests.apiserver.patch.objects import at, configmap, deployment

TEMPLATE_V1 = {"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "a", "image": "nginx:0.9"}]}}

SUCCESS = [
    pytest.param(
        deployment(),
        [{"op": "replace", "path": "/spec/template", "value": TEMPLATE_V1},
         {"op": "replace", "path": "/metadata/annotations",
          "value": {"deployment.kubernetes.io/revision": "1", "kubernetes.io/change-cause": "v1"}}],
        {"spec.template": TEMPLATE_V1,
         "metadata.annotations": {"deployment.kubernetes.io/revision": "1", "kubernetes.io/change-cause": "v1"}},
        id="rollout-undo-replaces-template-and-annotations",
    ),
    pytest.param(configmap(), [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"}],
                 {"metadata.labels": {"app": "web", "tier": "fe", "app.kubernetes.io/name": "x"}},
                 id="tilde-one-escapes-a-slash"),
    pytest.param(configmap(), [{"op": "add", "path": "/data/a~0b", "value": "t"}],
                 {"data.a~b": "t"}, id="tilde-zero-escapes-a-tilde"),
    pytest.param(deployment(), [{"op": "add", "path": "/spec/template/spec/containers/-",
                                 "value": {"name": "c", "image": "redis"}}],
                 {"spec.template.spec.containers.2.name": "c"}, id="dash-appends-to-array"),
    pytest.param(deployment(), [{"op": "add", "path": "/spec/template/spec/containers/0",
                                 "value": {"name": "c", "image": "redis"}}],
                 {"spec.template.spec.containers.0.name": "c", "spec.template.spec.containers.1.name": "a"},
                 id="add-at-index-inserts"),
    pytest.param(deployment(), [{"op": "add", "path": "/spec/template/spec/containers/-1",
                                 "value": {"name": "c", "image": "redis"}}],
                 {"spec.template.spec.containers.2.name": "c"}, id="add-at-minus-one-appends"),
    pytest.param(deployment(), [{"op": "replace", "path": "/spec/template/spec/containers/-1/image", "value": "alpine"}],
                 {"spec.template.spec.containers.1.image": "alpine"}, id="negative-index-counts-from-the-end"),
    pytest.param(deployment(), [{"op": "remove", "path": "/spec/template/spec/containers/1"}],
                 {"spec.template.spec.containers": deployment()["spec"]["template"]["spec"]["containers"][:1]},
                 id="remove-array-element"),
    pytest.param(configmap(), [{"op": "replace", "path": "/metadata/labels/missing", "value": "m"}],
                 {"metadata.labels.missing": "m"}, id="replace-of-missing-member-adds-it"),
    pytest.param(deployment(), [{"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                                {"op": "replace", "path": "/spec/replicas", "value": 3}],
                 {"spec.replicas": 3}, id="test-guards-a-replace"),
    pytest.param(deployment(), [{"op": "test", "path": "/spec/template/spec/containers/0/ports",
                                 "value": [{"protocol": "TCP", "containerPort": 80}]}],
                 {"spec.replicas": 2}, id="test-compares-structurally"),
    pytest.param(configmap(), [{"op": "test", "path": "/data/missing", "value": None}],
                 {"data": {"k": "v", "l": "w"}}, id="test-null-matches-missing-member"),
    pytest.param(configmap(), [{"op": "move", "from": "/data/k", "path": "/data/k2"}],
                 {"data": {"k2": "v", "l": "w"}}, id="move-member"),
    pytest.param(configmap(), [{"op": "copy", "from": "/data/k", "path": "/metadata/labels/k"}],
                 {"metadata.labels.k": "v", "data.k": "v"}, id="copy-member"),
    pytest.param(configmap(), [{"op": "copy", "from": "/data/nope", "path": "/data/n"}],
                 {"data": {"k": "v", "l": "w", "n": None}}, id="copy-of-missing-member-copies-null"),
    pytest.param(configmap(), [{"op": "add", "path": "/data", "value": {"only": "x"}}],
                 {"data": {"only": "x"}}, id="add-replaces-existing-member"),
    pytest.param(configmap(), [{"op": "remove", "path": "/metadata/labels/tier"},
                               {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}],
                 {"metadata.labels": {"app": "web"}, "metadata.annotations": {"a": "b"}}, id="operations-apply-in-order"),
    pytest.param(configmap(), [{"op": "replace", "path": "", "value": {**configmap(), "data": {"z": "1"}}}],
                 {"data": {"z": "1"}}, id="replace-whole-document"),
    pytest.param(configmap(), [], {"data": {"k": "v", "l": "w"}}, id="empty-patch"),
]

FAILURES = [
    pytest.param(deployment(), [{"op": "test", "path": "/metadata/resourceVersion", "value": "41"}],
                 422, "testing value /metadata/resourceVersion failed: test failed", id="test-that-fails"),
    pytest.param(configmap(), [{"op": "test", "path": "/data/missing", "value": "x"}],
                 422, "testing value /data/missing failed: test failed", id="test-of-missing-member"),
    pytest.param(configmap(), [{"op": "add", "path": "/status/phase", "value": "x"}],
                 422, 'add operation does not apply: doc is missing path: "/status/phase": missing value',
                 id="add-below-missing-parent"),
    pytest.param(configmap(), [{"op": "remove", "path": "/data/nope"}],
                 422, "error in remove for path: '/data/nope': Unable to remove nonexistent key: nope: missing value",
                 id="remove-missing-member"),
    pytest.param(deployment(), [{"op": "replace", "path": "/spec/template/spec/containers/5/image", "value": "x"}],
                 422, "replace operation does not apply: doc is missing path: /spec/template/spec/containers/5/image: missing value",
                 id="replace-below-missing-index"),
    pytest.param(deployment(), [{"op": "replace", "path": "/spec/template/spec/containers/5", "value": {}}],
                 422, "replace operation does not apply: doc is missing key: /spec/template/spec/containers/5: missing value",
                 id="replace-missing-index"),
    pytest.param(deployment(), [{"op": "remove", "path": "/spec/template/spec/containers/2"}],
                 422, "error in remove for path: '/spec/template/spec/containers/2': Unable to access invalid index: 2: invalid index referenced",
                 id="remove-index-out-of-range"),
    pytest.param(deployment(), [{"op": "add", "path": "/spec/template/spec/containers/x", "value": {}}],
                 422, "error in add for path: '/spec/template/spec/containers/x': value was not a proper array index: 'x': "
                      'strconv.Atoi: parsing "x": invalid syntax',
                 id="add-non-numeric-index"),
    pytest.param(deployment(), [{"op": "add", "path": "/spec/template/spec/containers/3", "value": {}}],
                 422, "error in add for path: '/spec/template/spec/containers/3': Unable to access invalid index: 3: invalid index referenced",
                 id="add-index-past-the-end"),
    pytest.param(configmap(), [{"op": "move", "from": "/data/nope", "path": "/data/x"}],
                 422, "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value",
                 id="move-from-missing-member"),
    pytest.param(configmap(), [{"op": "copy", "from": "/nope/x", "path": "/data/x"}],
                 422, "copy operation does not apply: doc is missing from path: /nope/x: missing value",
                 id="copy-from-missing-parent"),
    pytest.param(configmap(), [{"op": "frobnicate", "path": "/data"}], 422, "Unexpected kind: frobnicate", id="unknown-op"),
    pytest.param(configmap(), [{"path": "/data"}], 422, "Unexpected kind: unknown", id="missing-op"),
    pytest.param(configmap(), [{"op": "add", "value": 1}], 422, "add operation failed to decode path: missing value",
                 id="add-without-path"),
    pytest.param(configmap(), [{"op": "replace", "value": 1}],
                 422, "replace operation failed to decode path: operation missing path field: missing value",
                 id="replace-without-path"),
    pytest.param(configmap(), [{"op": "move", "path": "/data/x"}],
                 422, "move operation failed to decode from: operation, missing from field: missing value",
                 id="move-without-from"),
    pytest.param(configmap(), [{"op": "test", "path": 7, "value": 1}],
                 422, "test operation failed to decode path: json: cannot unmarshal number into Go value of type string",
                 id="path-not-a-string"),
    pytest.param(configmap(), {"op": "add", "path": "/data/x", "value": "1"},
                 400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch", id="body-not-a-list"),
    pytest.param(configmap(), ["add"], 400, "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
                 id="operation-not-an-object"),
]


@pytest.mark.parametrize(("doc", "ops", "expected"), SUCCESS)
def test_json_patch_result(doc: dict[str, Any], ops: list[Any], expected: dict[str, Any]) -> None:
    result = json_patch(doc, ops)
    for path, value in expected.items():
        assert at(result, path) == value, path


@pytest.mark.parametrize(("doc", "ops", "code", "message"), FAILURES)
def test_json_patch_failure(doc: dict[str, Any], ops: Any, code: int, message: str) -> None:
    with pytest.raises(StatusError) as caught:
        json_patch(doc, ops)
    assert caught.value.code == code
    if code == 422:
        # kube-apiserver's NewGenericServerResponse: fixed message, the error as a cause.
        assert caught.value.to_status()["reason"] == "Invalid"
        assert caught.value.message == "the server rejected our request due to an error in our request"
        assert caught.value.details == {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]}
    else:
        assert caught.value.message == message


def test_too_many_operations_is_request_entity_too_large() -> None:
    ops = [{"op": "test", "path": "/data/k", "value": "v"}] * (MAX_OPERATIONS + 1)
    with pytest.raises(StatusError) as caught:
        json_patch(configmap(), ops)
    assert caught.value.code == 413
    assert caught.value.message == ("Request entity too large: The allowed maximum operations in a JSON patch "
                                    "is 10000, got 10001")
    assert json_patch(configmap(), ops[:MAX_OPERATIONS]) == configmap()


def test_failed_patch_changes_nothing_and_inputs_are_not_mutated() -> None:
    doc = configmap()
    ops = [{"op": "add", "path": "/data/new", "value": {"nested": ["x"]}},
           {"op": "test", "path": "/data/k", "value": "other"}]
    with pytest.raises(StatusError):
        json_patch(doc, ops)
    assert doc == configmap()
    result = json_patch(doc, ops[:1])
    result["data"]["new"]["nested"].append("y")
    assert ops[0]["value"] == {"nested": ["x"]}
    assert doc == configmap()


def test_result_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(StatusError) as caught:
        json_patch(configmap(), [{"op": "replace", "path": "", "value": [1]}])
    assert caught.value.code == 422
    assert caught.value.details["causes"][0]["field"] == "patch"


def test_replace_whole_document_with_a_scalar_does_nothing() -> None:
    assert json_patch(configmap(), [{"op": "replace", "path": "", "value": 3}]) == configmap()


@pytest.mark.parametrize(("value", "matches"), [
    pytest.param(True, False, id="bool-is-not-one"),
    pytest.param(1.0, True, id="one-point-zero-is-one"),
    pytest.param([1], False, id="list-is-not-scalar"),
])
def test_test_operation_equality(value: Any, matches: bool) -> None:
    doc = {**configmap(), "spec": {"n": 1}}
    op = [{"op": "test", "path": "/spec/n", "value": value}]
    if matches:
        assert json_patch(doc, op) == doc
    else:
        with pytest.raises(StatusError):
            json_patch(doc, op)
