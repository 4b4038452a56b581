"""The ReplicaSet controller end to end against the real API server in process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controllers.common import objects, ownership
from minikube_py.client import PODS, REPLICASETS, ApiClient, ApiError
from tests.controllers.manager.harness import (
    NS,
    ControlPlane,
    FakeKubelet,
    control_plane,
    controlled_by,
    pod,
    replica_set,
)

Obj = dict[str, Any]


async def get_rs(plane: ControlPlane, name: str = "rs") -> Obj:
    return await plane.client.get(REPLICASETS, name, NS)


async def owned_pods(plane: ControlPlane, name: str = "rs", count: int | None = None) -> list[Obj] | None:
    found = await controlled_by(plane.client, PODS, await get_rs(plane, name))
    return found if count is None or len(found) == count else None


async def all_pods(plane: ControlPlane) -> list[Obj]:
    return (await plane.client.list(PODS, NS))["items"]


async def status_is(plane: ControlPlane, **expected: int) -> Obj | None:
    rs = await get_rs(plane)
    status = objects.status(rs)
    return rs if all(status.get(k, 0) == v for k, v in expected.items()) else None


async def test_replicaset_creates_pods_with_controller_reference(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane:
        rs = await plane.client.create(REPLICASETS, replica_set(replicas=3))
        created = await plane.wait_for(lambda: owned_pods(plane, count=3), message="3 pods")
        for p in created:
            assert p["metadata"]["generateName"] == "rs-"
            assert p["metadata"]["labels"] == {"app": "rs"}
            assert p["metadata"]["ownerReferences"] == [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": rs["metadata"]["uid"],
                 "controller": True, "blockOwnerDeletion": True}]
        await plane.wait_for(lambda: status_is(plane, replicas=3, fullyLabeledReplicas=3, observedGeneration=1),
                             message="status")
        events = await plane.wait_for(lambda: _events(plane, "SuccessfulCreate", 3), message="events")
        assert {e["message"] for e in events} == {f"Created pod: {objects.name(p)}" for p in created}


async def _events(plane: ControlPlane, reason: str, count: int) -> list[Obj] | None:
    found = await plane.events(reason, kind="ReplicaSet")
    return found if len(found) >= count else None


async def test_deleted_pod_is_replaced(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(REPLICASETS, replica_set(replicas=2))
        first = await plane.wait_for(lambda: owned_pods(plane, count=2), message="2 pods")
        await plane.wait_for(lambda: status_is(plane, replicas=2, readyReplicas=2, availableReplicas=2),
                             message="2 ready")
        victim = objects.name(first[0])
        await plane.client.delete(PODS, victim, NS)

        async def replaced() -> list[Obj] | None:
            found = await owned_pods(plane, count=2)
            return found if found and victim not in {objects.name(p) for p in found} else None
        await plane.wait_for(replaced, message="a replacement pod")
        await plane.wait_for(lambda: status_is(plane, replicas=2, readyReplicas=2, availableReplicas=2),
                             message="2 ready again")


async def test_replicaset_adopts_a_matching_orphan_pod(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane:
        orphan = await plane.client.create(PODS, pod("orphan", labels={"app": "rs"}))
        stranger = await plane.client.create(PODS, pod("stranger", labels={"app": "other"}))
        rs = await plane.client.create(REPLICASETS, replica_set(replicas=2))
        owned = await plane.wait_for(lambda: owned_pods(plane, count=2), message="2 pods")
        assert objects.uid(orphan) in {objects.uid(p) for p in owned}  # adopted, so only one was created
        adopted = await plane.client.get(PODS, "orphan", NS)
        assert adopted["metadata"]["ownerReferences"] == [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": objects.uid(rs),
             "controller": True, "blockOwnerDeletion": True}]
        assert len(await all_pods(plane)) == 3
        assert "ownerReferences" not in (await plane.client.get(PODS, objects.name(stranger), NS))["metadata"]
        assert len(await plane.events("SuccessfulCreate", kind="ReplicaSet")) == 1


async def test_pod_that_stops_matching_is_released_and_replaced(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane:
        await plane.client.create(REPLICASETS, replica_set(replicas=1))
        [first] = await plane.wait_for(lambda: owned_pods(plane, count=1), message="1 pod")
        await plane.client.patch(PODS, objects.name(first), {"metadata": {"labels": {"app": "debug"}}}, NS)

        async def released() -> Obj | None:
            p = await plane.client.get(PODS, objects.name(first), NS)
            return p if ownership.controller_of(p) is None else None
        await plane.wait_for(released, message="the pod released")
        [replacement] = await plane.wait_for(lambda: owned_pods(plane, count=1), message="a replacement")
        assert objects.name(replacement) != objects.name(first)
        assert len(await all_pods(plane)) == 2


async def test_scale_down_deletes_pods_that_are_not_ready_first(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client, auto=False) as kubelet:
        await plane.client.create(REPLICASETS, replica_set(replicas=3))
        created = await plane.wait_for(lambda: owned_pods(plane, count=3), message="3 pods")
        ready = [objects.name(p) for p in created[:2]]
        await kubelet.mark_ready(*ready)
        await plane.wait_for(lambda: status_is(plane, replicas=3, readyReplicas=2), message="2 ready")
        await plane.client.scale(REPLICASETS, "rs", 2, NS)
        left = await plane.wait_for(lambda: owned_pods(plane, count=2), message="2 pods")
        assert sorted(objects.name(p) for p in left) == sorted(ready)
        [deleted] = await plane.wait_for(lambda: _events(plane, "SuccessfulDelete", 1), message="event")
        assert deleted["message"] == f"Deleted pod: {objects.name(created[2])}"


async def test_expectations_prevent_creating_too_many_pods(tmp_path: Path) -> None:
    """A burst of 20 creates: the informer lags behind, yet exactly 20 pods are created
    (expectations keep later syncs from acting on the stale cache)."""
    async with control_plane(tmp_path) as plane:
        await plane.client.create(REPLICASETS, replica_set(replicas=20))
        await plane.wait_for(lambda: owned_pods(plane, count=20), message="20 pods")
        await plane.wait_for(lambda: status_is(plane, replicas=20), message="status")
        # Poke it a few times: each sync must see that nothing is missing.
        for i in range(5):
            await plane.client.patch(REPLICASETS, "rs", {"metadata": {"labels": {"poke": str(i)}}}, NS)
        await asyncio.sleep(0.3)
        assert len(await all_pods(plane)) == 20

        async def creates_recorded() -> int | None:
            # More than 10 messages for one (object, reason) are folded into one Event.
            total = sum(e["count"] for e in await plane.events("SuccessfulCreate", kind="ReplicaSet"))
            return total if total >= 20 else None
        assert await plane.wait_for(creates_recorded, message="events") == 20


class FailingPodCreates(ApiClient):
    """A client whose pod creates fail after `allowed` of them succeeded (a quota, say)."""

    def __init__(self, *args: Any, allowed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = allowed

    async def create(self, resource: Any, obj: Obj, namespace: str | None = None, **kwargs: Any) -> Obj:
        if resource == PODS:
            if self.allowed <= 0:
                raise ApiError({"kind": "Status", "status": "Failure", "code": 403, "reason": "Forbidden",
                                "message": 'pods "rs-" is forbidden: exceeded quota: pods'})
            self.allowed -= 1
        return await super().create(resource, obj, namespace, **kwargs)


async def test_failed_creates_set_replica_failure_and_record_failed_create(tmp_path: Path) -> None:
    from controllers.manager import run_controller_manager

    async with control_plane(tmp_path, manager=False) as plane:
        async def run() -> None:
            async with FailingPodCreates(plane.url, field_manager="kube-controller-manager", allowed=3) as client:
                await run_controller_manager(client, leader_elect=False)

        plane.managers.append(asyncio.create_task(run(), name="failing manager"))
        await plane.client.create(REPLICASETS, replica_set(replicas=5))

        async def failure() -> Obj | None:
            rs = await get_rs(plane)
            conds = objects.status(rs).get("conditions") or []
            return rs if conds and objects.status(rs).get("replicas") == 3 else None
        rs = await plane.wait_for(failure, message="the ReplicaFailure condition")
        [cond] = rs["status"]["conditions"]
        assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
        assert cond["message"] == 'pods "rs-" is forbidden: exceeded quota: pods'
        failed = await plane.wait_for(lambda: _events(plane, "FailedCreate", 1), message="FailedCreate")
        assert failed[0]["type"] == "Warning"
        assert failed[0]["message"] == 'Error creating: pods "rs-" is forbidden: exceeded quota: pods'
        # Slow start: batches of 1 and 2 succeeded; the batch of 2 that followed failed.
        assert len(await owned_pods(plane) or []) == 3

        async def retried() -> bool:
            return any(e["count"] >= 4 for e in await plane.events("FailedCreate", kind="ReplicaSet"))
        await plane.wait_for(retried, message="retries with backoff")
        # Failing again keeps the condition (it does not flap off and on).
        [again] = (await get_rs(plane))["status"]["conditions"]
        assert again == cond
