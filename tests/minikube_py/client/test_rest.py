"""ApiClient against the real API server: verbs, errors, paging, patches, subresources."""

from __future__ import annotations

import pytest

from minikube_py.client import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    ApiClient,
    ApiError,
    Resource,
    is_not_found,
)
from minikube_py.client.rest import selector_string
from tests.minikube_py.client.support import configmap, pod


def deployment(name: str, replicas: int = 1) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.mark.parametrize(("resource", "namespace", "name", "sub", "path"), [
    pytest.param(PODS, "ns1", "p", None, "/api/v1/namespaces/ns1/pods/p", id="core-namespaced"),
    pytest.param(PODS, None, None, None, "/api/v1/pods", id="core-all-namespaces"),
    pytest.param(NODES, "ignored", "n1", "status", "/api/v1/nodes/n1/status", id="cluster-scoped"),
    pytest.param(DEPLOYMENTS, "d", "web", "scale", "/apis/apps/v1/namespaces/d/deployments/web/scale",
                 id="group"),
    pytest.param(Resource("example.com", "v1", "widgets", True, "Widget"), "x", "a b", None,
                 "/apis/example.com/v1/namespaces/x/widgets/a%20b", id="crd-escaped"),
])
def test_resource_paths(resource: Resource, namespace: str | None, name: str | None, sub: str | None,
                        path: str) -> None:
    assert resource.path(namespace, name, sub) == path


def test_selector_string_from_dict() -> None:
    assert selector_string({"app": "web", "tier": "fe"}) == "app=web,tier=fe"
    assert selector_string("") is None


async def test_create_get_update_delete_roundtrip(client: ApiClient) -> None:
    created = await client.create(CONFIGMAPS, configmap("cm1", data={"a": "1"}))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    fetched = await client.get(CONFIGMAPS, "cm1", "default")
    assert fetched["data"] == {"a": "1"}
    fetched["data"]["b"] = "2"
    updated = await client.update(CONFIGMAPS, fetched)
    assert updated["data"] == {"a": "1", "b": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    managers = {m["manager"] for m in updated["metadata"].get("managedFields", [])}
    assert "client-tests" in managers
    await client.delete(CONFIGMAPS, "cm1", "default")
    with pytest.raises(ApiError) as err:
        await client.get(CONFIGMAPS, "cm1", "default")
    assert err.value.is_not_found() and is_not_found(err.value)
    assert err.value.code == 404 and err.value.details.get("name") == "cm1"


async def test_errors_carry_the_servers_status(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, configmap("dup"))
    with pytest.raises(ApiError) as exists:
        await client.create(CONFIGMAPS, configmap("dup"))
    assert exists.value.is_already_exists() and exists.value.code == 409 and not exists.value.is_conflict()

    stale = await client.get(CONFIGMAPS, "dup", "default")
    await client.update(CONFIGMAPS, {**stale, "data": {"x": "1"}})
    with pytest.raises(ApiError) as conflict:
        await client.update(CONFIGMAPS, {**stale, "data": {"x": "2"}})
    assert conflict.value.is_conflict() and conflict.value.reason == "Conflict"

    with pytest.raises(ApiError) as invalid:
        await client.create(CONFIGMAPS, configmap("Not_Valid"))
    assert invalid.value.is_invalid() and invalid.value.code == 422
    assert invalid.value.details.get("causes")


def test_non_status_error_bodies_become_a_status() -> None:
    exc = ApiError.from_response(503, b"<html>upstream down</html>")
    assert exc.code == 503 and exc.reason == "ServiceUnavailable" and "upstream down" in exc.message


async def test_namespaced_calls_need_a_namespace(client: ApiClient) -> None:
    with pytest.raises(ValueError):
        await client.get(PODS, "p")
    with pytest.raises(ValueError):
        await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})


async def test_cluster_scoped_create_and_list(client: ApiClient) -> None:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    names = {ns["metadata"]["name"] for ns in (await client.list(NAMESPACES))["items"]}
    assert {"default", "kube-system", "team-a"} <= names


async def test_list_filters_by_label_and_field_selector(client: ApiClient) -> None:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    await client.create(CONFIGMAPS, configmap("a", labels={"app": "web", "tier": "fe"}))
    await client.create(CONFIGMAPS, configmap("b", labels={"app": "web", "tier": "be"}))
    await client.create(CONFIGMAPS, configmap("c", "other", labels={"app": "db"}))

    def names(page: dict) -> list[str]:
        return sorted(o["metadata"]["name"] for o in page["items"])

    assert names(await client.list(CONFIGMAPS, label_selector={"app": "web"})) == ["a", "b"]
    assert names(await client.list(CONFIGMAPS, label_selector="app=web,tier!=fe")) == ["b"]
    assert names(await client.list(CONFIGMAPS, "other", label_selector="app")) == ["c"]
    assert names(await client.list(CONFIGMAPS, field_selector="metadata.name=c")) == ["c"]
    with pytest.raises(ApiError) as bad:
        await client.list(CONFIGMAPS, label_selector="app in (")
    assert bad.value.code == 400


async def test_list_pages_with_limit_and_continue(client: ApiClient) -> None:
    for i in range(7):
        await client.create(CONFIGMAPS, configmap(f"cm-{i}"))
    first = await client.list(CONFIGMAPS, "default", limit=3)
    assert len(first["items"]) == 3 and first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 4
    second = await client.list(CONFIGMAPS, "default", limit=3, continue_=first["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in second["items"]] == ["cm-3", "cm-4", "cm-5"]

    await client.create(CONFIGMAPS, configmap("cm-late"))  # after the snapshot: not in this paged list
    items, rv = await client.list_all(CONFIGMAPS, "default", page_size=2)
    names = [o["metadata"]["name"] for o in items]
    assert names[:7] == [f"cm-{i}" for i in range(7)] and "cm-late" in names
    assert int(rv) > 0
    page = await client.list(CONFIGMAPS, "default", resource_version=rv, resource_version_match="Exact")
    assert len(page["items"]) == 8


async def test_list_all_restarts_when_the_continue_token_expired(client: ApiClient, apiserver) -> None:
    for i in range(4):
        await client.create(CONFIGMAPS, configmap(f"cm-{i}"))
    first = await client.list(CONFIGMAPS, "default", limit=2)
    await client.create(CONFIGMAPS, configmap("cm-new"))
    await apiserver.compact()
    with pytest.raises(ApiError) as gone:
        await client.list(CONFIGMAPS, "default", limit=2, continue_=first["metadata"]["continue"])
    assert gone.value.is_gone()
    original = client.list
    calls = []

    async def list_expiring(*args, **kwargs):  # the token expires between page 1 and 2
        calls.append(kwargs.get("continue_"))
        if kwargs.get("continue_"):
            kwargs["continue_"] = first["metadata"]["continue"]
        return await original(*args, **kwargs)

    client.list = list_expiring  # type: ignore[method-assign]
    items, _ = await client.list_all(CONFIGMAPS, "default", page_size=2)
    assert len(items) == 5 and calls[-1] is None


@pytest.mark.parametrize(("patch_type", "patch", "expected"), [
    pytest.param("merge", {"data": {"b": "2", "a": None}}, {"b": "2"}, id="merge"),
    pytest.param("strategic", {"data": {"b": "2"}}, {"a": "1", "b": "2"}, id="strategic"),
    pytest.param("json", [{"op": "replace", "path": "/data/a", "value": "9"}], {"a": "9"}, id="json"),
])
async def test_patch_types(client: ApiClient, patch_type: str, patch: object, expected: dict) -> None:
    await client.create(CONFIGMAPS, configmap("p", data={"a": "1"}))
    patched = await client.patch(CONFIGMAPS, "p", patch, "default", patch_type=patch_type)  # type: ignore[arg-type]
    assert patched["data"] == expected


async def test_server_side_apply_with_field_managers_and_force(client: ApiClient) -> None:
    applied = await client.apply(CONFIGMAPS, configmap("ssa", data={"k": "mine"}))
    managers = {m["manager"]: m["operation"] for m in applied["metadata"]["managedFields"]}
    assert managers == {"client-tests": "Apply"}
    with pytest.raises(ApiError) as conflict:
        await client.apply(CONFIGMAPS, configmap("ssa", data={"k": "theirs"}), field_manager="other")
    assert conflict.value.code == 409
    forced = await client.apply(CONFIGMAPS, configmap("ssa", data={"k": "theirs"}), field_manager="other", force=True)
    assert forced["data"] == {"k": "theirs"}
    with pytest.raises(ValueError):
        await ApiClient("http://127.0.0.1:1").patch(CONFIGMAPS, "x", {}, "default", patch_type="apply")


async def test_update_status_changes_only_status(client: ApiClient) -> None:
    await client.create(PODS, pod("s"))
    current = await client.get(PODS, "s", "default")
    current["status"] = {"phase": "Running"}
    current["spec"]["activeDeadlineSeconds"] = 5
    updated = await client.update_status(PODS, current)
    assert updated["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in updated["spec"]


async def test_delete_with_preconditions_and_propagation(client: ApiClient) -> None:
    created = await client.create(CONFIGMAPS, configmap("d"))
    with pytest.raises(ApiError) as wrong_uid:
        await client.delete(CONFIGMAPS, "d", "default", preconditions={"uid": "not-the-uid"})
    assert wrong_uid.value.code == 409
    await client.delete(CONFIGMAPS, "d", "default", propagation_policy="Foreground",
                        preconditions={"uid": created["metadata"]["uid"]})
    # Foreground: the object stays with a finalizer until its dependents are gone
    # (nothing removes it here without a garbage collector).
    try:
        left = await client.get(CONFIGMAPS, "d", "default")
    except ApiError as exc:
        assert exc.is_not_found()
    else:
        assert "foregroundDeletion" in left["metadata"].get("finalizers", [])
        assert left["metadata"].get("deletionTimestamp")


async def test_dry_run_writes_nothing(client: ApiClient) -> None:
    result = await client.create(CONFIGMAPS, configmap("dry"), dry_run=True)
    assert result["metadata"]["name"] == "dry"
    with pytest.raises(ApiError):
        await client.get(CONFIGMAPS, "dry", "default")


async def test_scale_subresource(client: ApiClient) -> None:
    await client.create(DEPLOYMENTS, deployment("web", 1))
    scale = await client.get_scale(DEPLOYMENTS, "web", "default")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    scaled = await client.scale(DEPLOYMENTS, "web", 4, "default")
    assert scaled["spec"]["replicas"] == 4
    assert (await client.get(DEPLOYMENTS, "web", "default"))["spec"]["replicas"] == 4


async def test_bind_sets_node_name_once(client: ApiClient) -> None:
    created = await client.create(PODS, pod("b"))
    await client.bind("default", "b", "node-1", pod_uid=created["metadata"]["uid"])
    assert (await client.get(PODS, "b", "default"))["spec"]["nodeName"] == "node-1"
    with pytest.raises(ApiError) as again:
        await client.bind("default", "b", "node-2")
    assert again.value.code == 409


async def test_evict_posts_an_eviction(client: ApiClient) -> None:
    await client.create(PODS, pod("e"))
    try:
        await client.evict("default", "e")
    except ApiError as exc:
        assert exc.code == 405  # the server does not serve pods/eviction yet
        return
    try:  # served: the eviction deleted the pod (or started its graceful deletion)
        left = await client.get(PODS, "e", "default")
    except ApiError as exc:
        assert exc.is_not_found()
    else:
        assert left["metadata"].get("deletionTimestamp")


async def test_delete_collection_by_label(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, configmap("x1", labels={"batch": "1"}))
    await client.create(CONFIGMAPS, configmap("x2", labels={"batch": "1"}))
    await client.create(CONFIGMAPS, configmap("keep"))
    await client.delete_collection(CONFIGMAPS, "default", label_selector={"batch": "1"})
    names = [o["metadata"]["name"] for o in (await client.list(CONFIGMAPS, "default"))["items"]]
    assert "keep" in names and "x1" not in names and "x2" not in names


async def test_token_is_sent_as_bearer(client: ApiClient, apiserver) -> None:
    async with ApiClient(apiserver.url, token="abc") as with_token:
        assert with_token._headers(None)["Authorization"] == "Bearer abc"
        assert (await with_token.list(NAMESPACES))["items"]
