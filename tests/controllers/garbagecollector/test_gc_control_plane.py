"""The garbage collector against the real API server: background, foreground and
orphan deletion, dangling references, a recreated owner, CRD owners, invalid references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minikube_py.client import (
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Informer,
    Resource,
)
from minikube_py.client.resources import CLUSTERROLES
from tests.controllers.manager.harness import NS, ControlPlane, control_plane, deployment

Obj = dict[str, Any]
CONTROLLERS = ["deployment", "replicaset", "garbagecollector"]


def configmap(name: str, *owners: Obj, namespace: str = NS, block: bool = False) -> Obj:
    refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], **({"blockOwnerDeletion": True} if block else {})} for o in owners]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": refs}, "data": {"k": "v"}}


async def names(plane: ControlPlane, resource: Resource) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await plane.client.list(resource, NS))["items"])


async def exists(plane: ControlPlane, resource: Resource, name: str) -> bool:
    return name in await names(plane, resource)


async def deployment_with_pods(plane: ControlPlane, replicas: int = 2) -> Obj:
    d = await plane.client.create(DEPLOYMENTS, deployment(replicas=replicas))
    await plane.wait_for(lambda: _count(plane, PODS, replicas), message=f"{replicas} pods")
    return d


async def _count(plane: ControlPlane, resource: Resource, n: int) -> bool:
    return len(await names(plane, resource)) == n


async def test_background_deletion_removes_replicasets_and_pods(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await deployment_with_pods(plane)
        await plane.client.delete(DEPLOYMENTS, "web", NS)
        await plane.wait_for(lambda: _count(plane, REPLICASETS, 0), message="no ReplicaSets")
        await plane.wait_for(lambda: _count(plane, PODS, 0), message="no pods")


async def test_orphan_deletion_strips_owner_references_and_keeps_dependents(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await deployment_with_pods(plane)
        await plane.client.delete(DEPLOYMENTS, "web", NS, propagation_policy="Orphan")
        await plane.wait_for(lambda: _count(plane, DEPLOYMENTS, 0), message="the Deployment gone")
        [rs] = (await plane.client.list(REPLICASETS, NS))["items"]
        assert "ownerReferences" not in rs["metadata"]
        pods = (await plane.client.list(PODS, NS))["items"]
        assert len(pods) == 2
        assert all(p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"] for p in pods)


async def test_foreground_deletion_keeps_owner_until_blocking_dependents_are_gone(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await deployment_with_pods(plane)
        # A blocking dependent with its own finalizer holds the Deployment back.
        d = await plane.client.get(DEPLOYMENTS, "web", NS)
        held = configmap("held", d, block=True)
        held["metadata"]["finalizers"] = ["example.com/hold"]
        await plane.client.create(CONFIGMAPS, held)
        seen: list[list[str]] = []
        watcher = Informer(plane.client, REPLICASETS, namespace=NS)
        watcher.add_event_handler(on_update=lambda old, new: seen.append(new["metadata"].get("finalizers") or []))
        watcher.start()
        await watcher.wait_synced()
        await plane.client.delete(DEPLOYMENTS, "web", NS, propagation_policy="Foreground")
        await plane.wait_for(lambda: _count(plane, PODS, 0), message="pods gone first")
        await plane.wait_for(lambda: not watcher.store.items(), message="ReplicaSets gone")
        await watcher.stop()
        # The ReplicaSet has dependents of its own, so it too was deleted in the foreground.
        assert ["foregroundDeletion"] in seen
        d = await plane.client.get(DEPLOYMENTS, "web", NS)
        assert d["metadata"]["deletionTimestamp"] and d["metadata"]["finalizers"] == ["foregroundDeletion"]
        cm = await plane.client.get(CONFIGMAPS, "held", NS)
        assert cm["metadata"]["deletionTimestamp"]
        await plane.client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, NS)
        await plane.wait_for(lambda: _count(plane, DEPLOYMENTS, 0), message="the Deployment gone last")


async def test_dangling_reference_is_removed_when_another_owner_remains(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        a = await plane.client.create(CONFIGMAPS, configmap("owner-a"))
        b = await plane.client.create(CONFIGMAPS, configmap("owner-b"))
        await plane.client.create(CONFIGMAPS, configmap("child", a, b))
        await plane.client.delete(CONFIGMAPS, "owner-a", NS)

        async def only_b() -> bool:
            refs = (await plane.client.get(CONFIGMAPS, "child", NS))["metadata"].get("ownerReferences") or []
            return [r["name"] for r in refs] == ["owner-b"]

        await plane.wait_for(only_b, message="only owner-b referenced")
        await plane.client.delete(CONFIGMAPS, "owner-b", NS)
        await plane.wait_for(lambda: _gone(plane, "child"), message="child collected")


async def collector_running(plane: ControlPlane) -> None:
    """Wait until the collector works: a probe ConfigMap with a missing owner is collected."""
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "0000"}}
    await plane.client.create(CONFIGMAPS, configmap("probe", ghost))
    await plane.wait_for(lambda: _gone(plane, "probe"), message="probe collected")


async def _gone(plane: ControlPlane, name: str) -> bool:
    return not await exists(plane, CONFIGMAPS, name)


async def test_recreated_owner_with_same_name_does_not_keep_dependent(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["garbagecollector"]) as plane:
        old = await plane.client.create(CONFIGMAPS, configmap("owner"))
        await plane.client.delete(CONFIGMAPS, "owner", NS)
        await plane.client.create(CONFIGMAPS, configmap("owner"))  # same name, new uid
        await plane.client.create(CONFIGMAPS, configmap("child", old))
        await plane.wait_for(lambda: _gone(plane, "child"), message="child of the old uid collected")
        assert await exists(plane, CONFIGMAPS, "owner")


async def test_configmap_owned_by_custom_resource_is_collected(tmp_path: Path) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    widgets = Resource("example.com", "v1", "widgets", True, "Widget")
    async with control_plane(tmp_path, controllers=["garbagecollector"]) as plane:
        await collector_running(plane)  # so the CRD is new to it: found by re-discovery
        await plane.client.create(CUSTOMRESOURCEDEFINITIONS, crd)
        w = await plane.wait_for(lambda: _create_quietly(plane, widgets, {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": NS}}),
            message="the CRD served")
        await plane.client.create(CONFIGMAPS, configmap("widget-config", w))
        await plane.client.delete(widgets, "w", NS)
        await plane.wait_for(lambda: _gone(plane, "widget-config"), timeout=20, message="CR-owned ConfigMap collected")


async def _create_quietly(plane: ControlPlane, resource: Resource, obj: Obj) -> Obj | None:
    try:
        return await plane.client.create(resource, obj)
    except Exception:  # noqa: BLE001 - not served yet
        return None


async def test_owner_in_another_namespace_is_reported_and_dependent_collected(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["garbagecollector"]) as plane:
        owner = await plane.client.create(CONFIGMAPS, configmap("owner", namespace="kube-public"))
        # The probe is collected only after the collector has seen every earlier
        # ConfigMap event, the owner's included.
        await collector_running(plane)
        child = await plane.client.create(CONFIGMAPS, configmap("child", owner))
        await plane.wait_for(lambda: _gone(plane, "child"), message="child collected")
        assert await plane.client.get(CONFIGMAPS, "owner", "kube-public")
        [event] = await plane.wait_for(lambda: plane.events("OwnerRefInvalidNamespace"), message="the Warning")
        assert event["type"] == "Warning"
        assert event["involvedObject"]["uid"] == child["metadata"]["uid"]
        uid = owner["metadata"]["uid"]
        assert event["message"] == (f"ownerRef [v1/ConfigMap, namespace: default, name: owner, uid: {uid}] "
                                    'does not exist in namespace "default"')


async def test_cluster_scoped_dependent_of_namespaced_owner_is_reported_and_kept(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["garbagecollector"]) as plane:
        owner = await plane.client.create(CONFIGMAPS, configmap("owner"))
        await collector_running(plane)
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "dependent", "ownerReferences": configmap("x", owner)["metadata"]["ownerReferences"]},
                "rules": []}
        await plane.client.create(CLUSTERROLES, role)
        [event] = await plane.wait_for(lambda: plane.events("OwnerRefInvalidNamespace"), message="the Warning")
        uid = owner["metadata"]["uid"]
        assert event["involvedObject"]["kind"] == "ClusterRole"
        assert event["message"] == f'ownerRef [v1/ConfigMap, namespace: , name: owner, uid: {uid}] does not exist in namespace ""'
        await plane.client.delete(CONFIGMAPS, "owner", NS)
        await collector_running(plane)
        assert await plane.client.get(CLUSTERROLES, "dependent")


async def test_owner_of_unknown_kind_keeps_its_dependent(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["garbagecollector"]) as plane:
        unknown = {"apiVersion": "example.com/v1", "kind": "Nope", "metadata": {"name": "n", "uid": "u-n"}}
        await plane.client.create(CONFIGMAPS, configmap("child", unknown))
        await collector_running(plane)
        assert await exists(plane, CONFIGMAPS, "child")
