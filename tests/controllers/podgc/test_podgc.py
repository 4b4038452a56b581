"""Pod GC: the threshold ordering as pure code; orphaned pods (40 s quarantine on a fake
clock, DisruptionTarget/DeletionByPodGC, force delete) and unscheduled terminating pods
against the real API server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controllers.podgc.controller import PodGCController, terminated_to_delete
from minikube_py.client import NODES, PODS, ApiClient, EventRecorder, FakeClock, SharedInformerFactory
from tests.controllers.manager.harness import NS, api_server, wait_for

Obj = dict[str, Any]


def _pod(name: str, created: str, phase: str, reason: str | None = None) -> Obj:
    status: Obj = {"phase": phase, **({"reason": reason} if reason else {})}
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_terminated_pods_over_threshold_evicted_first_then_oldest() -> None:
    pods = [_pod("new", "2025-01-03T00:00:00Z", "Succeeded"), _pod("old", "2025-01-01T00:00:00Z", "Failed"),
            _pod("evicted", "2025-01-05T00:00:00Z", "Failed", "Evicted"),
            _pod("running", "2024-01-01T00:00:00Z", "Running")]
    assert [p["metadata"]["name"] for p in terminated_to_delete(pods, 1)] == ["evicted", "old"]
    assert terminated_to_delete(pods, 3) == []
    assert terminated_to_delete(pods, 0) == []  # 0 disables


def node(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def pod(name: str, node_name: str | None = None, finalizers: list[str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node_name:
        spec["nodeName"] = node_name
    meta: Obj = {"name": name, "namespace": NS}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


@contextlib.asynccontextmanager
async def podgc(tmp_path: Path, **kwargs: Any) -> AsyncIterator[tuple[ApiClient, PodGCController, FakeClock]]:
    clock = FakeClock()
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "pod-garbage-collector-controller")
        gc = PodGCController(client, factory, recorder, clock=clock, **kwargs)
        factory.start()
        await factory.wait_for_cache_sync()
        try:
            yield client, gc, clock
        finally:
            await factory.shutdown()
            await recorder.close()


async def names(client: ApiClient) -> list[str]:
    return sorted(p["metadata"]["name"] for p in (await client.list(PODS, NS))["items"])


async def test_pods_on_a_deleted_node_are_failed_with_disruption_target_after_quarantine(tmp_path: Path) -> None:
    async with podgc(tmp_path) as (client, gc, clock):
        await client.create(NODES, node("gone"))
        await client.create(NODES, node("here"))
        # A finalizer keeps the orphan visible after the delete, to read its last status.
        await client.create(PODS, pod("orphan", "gone", finalizers=["example.com/keep"]))
        await client.create(PODS, pod("fine", "here"))
        await client.delete(NODES, "gone")
        await wait_for(lambda: gc.nodes.lister.get("gone") is None and len(gc.pods.lister.list()) == 2,
                       message="caches")
        await gc.gc()
        clock.advance(39)
        await gc.gc()
        assert (await client.get(PODS, "orphan", NS))["metadata"].get("deletionTimestamp") is None
        clock.advance(1)
        await gc.gc()
        orphan = await client.get(PODS, "orphan", NS)
        assert orphan["metadata"]["deletionTimestamp"]
        assert orphan["status"]["phase"] == "Failed"
        [cond] = [c for c in orphan["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert (cond["status"], cond["reason"], cond["message"]) == ("True", "DeletionByPodGC",
                                                                     "PodGC: node no longer exists")
        assert (await client.get(PODS, "fine", NS))["metadata"].get("deletionTimestamp") is None


async def test_node_back_within_quarantine_keeps_its_pods(tmp_path: Path) -> None:
    async with podgc(tmp_path) as (client, gc, clock):
        await client.create(PODS, pod("p", "late"))  # bound to a node not yet registered
        await wait_for(lambda: len(gc.pods.lister.list()) == 1, message="cache")
        await gc.gc()
        await client.create(NODES, node("late"))
        clock.advance(41)
        await gc.gc()  # the cache may not have the node yet: the live GET finds it
        assert await names(client) == ["p"]


async def test_terminating_unscheduled_pod_is_force_deleted(tmp_path: Path) -> None:
    async with podgc(tmp_path) as (client, gc, clock):
        await client.create(PODS, pod("pending", finalizers=["example.com/keep"]))
        await client.delete(PODS, "pending", NS)
        await wait_for(lambda: any(p["metadata"].get("deletionTimestamp") for p in gc.pods.lister.list()),
                       message="cache")
        await gc.gc()
        p = await client.get(PODS, "pending", NS)
        assert p["status"]["phase"] == "Failed"
        assert not any(c["type"] == "DisruptionTarget" for c in p["status"].get("conditions") or [])


async def test_terminated_pods_over_the_threshold_are_deleted(tmp_path: Path) -> None:
    async with podgc(tmp_path, terminated_pod_gc_threshold=1) as (client, gc, clock):
        for name in ("a", "b", "c"):
            await client.create(PODS, pod(name, "n1"))
            await client.patch(PODS, name, {"status": {"phase": "Succeeded"}}, NS, subresource="status")
        await client.create(NODES, node("n1"))
        await wait_for(lambda: sum(1 for p in gc.pods.lister.list() if p["status"].get("phase") == "Succeeded") == 3
                       and gc.nodes.lister.get("n1"), message="cache")
        await gc.gc()
        assert await names(client) == ["c"]
