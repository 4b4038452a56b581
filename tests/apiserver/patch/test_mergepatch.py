"""JSON merge patch (RFC 7386): kubectl label/annotate/scale and `patch --type merge`.

The SUCCESS table is also run through the real kubectl 1.32 (test_kubectl_agreement.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.errors import StatusError
from apiserver.patch.mergepatch import go_value, merge_patch
from tests.apiserver.patch.objects import at, configmap, deployment


def with_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {**configmap(), "spec": spec}


SUCCESS = [
    pytest.param(configmap(), {"metadata": {"labels": {"env": "prod"}}},
                 {"metadata.labels": {"app": "web", "tier": "fe", "env": "prod"}}, id="label-adds"),
    pytest.param(configmap(), {"metadata": {"labels": {"tier": None}}},
                 {"metadata.labels": {"app": "web"}}, id="label-removed-with-null"),
    pytest.param(configmap(), {"metadata": {"annotations": {"note": "x", "gone": None}}},
                 {"metadata.annotations": {"note": "x"}}, id="annotate-new-map-drops-nulls"),
    pytest.param(configmap(), {"metadata": {"labels": {"app": "web", "$patch": "replace"}}},
                 {"metadata.labels": {"app": "web", "tier": "fe", "$patch": "replace"}},
                 id="no-directives-in-merge-patch"),
    pytest.param(deployment(), {"spec": {"replicas": 3}}, {"spec.replicas": 3, "spec.strategy.type": "RollingUpdate"},
                 id="scale-replicas"),
    pytest.param(deployment(), {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "redis"}]}}}},
                 {"spec.template.spec.containers": [{"name": "c", "image": "redis"}],
                  "spec.template.spec.volumes": [{"name": "data", "emptyDir": {}}]},
                 id="lists-are-replaced-wholesale"),
    pytest.param(deployment(), {"spec": {"strategy": {"rollingUpdate": None, "type": "Recreate"}}},
                 {"spec.strategy": {"type": "Recreate"}}, id="nested-null-deletes"),
    pytest.param(configmap(), {"data": None}, {"metadata.name": "cfg"}, id="null-deletes-a-whole-map"),
    pytest.param(with_spec({"x": "scalar"}), {"spec": {"x": {"a": 1, "b": None}}},
                 {"spec.x": {"a": 1}}, id="object-replacing-scalar-is-pruned"),
    pytest.param(with_spec({"x": {"a": 1}}), {"spec": {"x": [{"b": None}, None]}},
                 {"spec.x": [{"b": None}, None]}, id="list-replacing-object-keeps-nulls"),
    pytest.param(with_spec({"x": "s"}), {"spec": {"x": [{"b": None}, None]}},
                 {"spec.x": [{}, None]}, id="list-replacing-scalar-prunes-members-not-elements"),
    pytest.param(configmap(), {}, {"data": {"k": "v", "l": "w"}}, id="empty-patch"),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), SUCCESS)
def test_merge_patch_result(doc: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    result = merge_patch(doc, patch)
    for path, value in expected.items():
        assert at(result, path) == value, path


def test_null_deleting_a_whole_map_removes_the_key() -> None:
    assert "data" not in merge_patch(configmap(), {"data": None})


@pytest.mark.parametrize("patch", [pytest.param(None, id="null"), pytest.param("x", id="string"),
                                   pytest.param(3, id="number")])
def test_body_that_is_not_an_object_is_a_bad_request(patch: Any) -> None:
    with pytest.raises(StatusError) as caught:
        merge_patch(configmap(), patch)
    assert (caught.value.code, caught.value.message) == (400, "Invalid JSON Patch")


def test_list_body_replaces_the_object_and_fails_to_decode() -> None:
    with pytest.raises(StatusError) as caught:
        merge_patch(configmap(), [{"a": None}])
    assert caught.value.code == 422
    assert caught.value.details["causes"][0]["field"] == "patch"
    assert caught.value.message.startswith(' "" is invalid: patch: Invalid value: "[{}]"')


def test_inputs_are_not_mutated() -> None:
    doc, patch = configmap(), {"metadata": {"labels": {"tier": None, "new": "1"}}, "spec": {"a": {"b": None}}}
    result = merge_patch(doc, patch)
    assert doc == configmap()
    assert patch == {"metadata": {"labels": {"tier": None, "new": "1"}}, "spec": {"a": {"b": None}}}
    result["metadata"]["labels"]["app"] = "changed"
    assert doc["metadata"]["labels"]["app"] == "web"


@pytest.mark.parametrize(("value", "rendered"), [
    pytest.param({"b": [1, 2.5, None], "a": True}, "map[a:true b:[1 2.5 <nil>]]", id="map-sorted"),
    pytest.param(1e6, "1e+06", id="float-exponent"),
    pytest.param(80.0, "80", id="integral-float"),
    pytest.param(1.5e-5, "1.5e-05", id="small-float"),
])
def test_go_rendering_of_json_values(value: Any, rendered: str) -> None:
    assert go_value(value) == rendered
