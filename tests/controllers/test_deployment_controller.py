"""The Deployment controller end to end: the real API server in process, the
controller-manager on the same loop, and a fake kubelet marking pods ready."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controllers.common import objects
from minikube_py.client import DEPLOYMENTS, PODS, REPLICASETS, FakeClock
from tests.controllers.manager.harness import (
    NS,
    ControlPlane,
    FakeKubelet,
    PodObserver,
    control_plane,
    controlled_by,
    deployment,
)

Obj = dict[str, Any]
SEED_STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


async def get_deployment(plane: ControlPlane, name: str = "web") -> Obj:
    return await plane.client.get(DEPLOYMENTS, name, NS)


async def replica_sets_of(plane: ControlPlane, name: str = "web") -> list[Obj]:
    return await controlled_by(plane.client, REPLICASETS, await get_deployment(plane, name))


async def pods_of(plane: ControlPlane, rs: Obj) -> list[Obj]:
    return await controlled_by(plane.client, PODS, rs)


def condition(d: Obj, cond_type: str) -> Obj | None:
    return next((c for c in objects.status(d).get("conditions") or [] if c["type"] == cond_type), None)


async def rolled_out(plane: ControlPlane, name: str = "web", generation: int | None = None) -> Obj | None:
    """The Deployment once `kubectl rollout status` would call it done, else None."""
    d = await get_deployment(plane, name)
    status, replicas = objects.status(d), objects.spec_replicas(d)
    if generation is not None and objects.generation(d) != generation:
        return None
    done = (status.get("observedGeneration", 0) >= objects.generation(d)
            and status.get("updatedReplicas", 0) == replicas == status.get("replicas", 0)
            and status.get("availableReplicas", 0) == replicas)
    return d if done else None


async def set_image(plane: ControlPlane, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    await plane.client.patch(DEPLOYMENTS, name, patch, NS, patch_type="strategic")


async def test_deployment_creates_replicaset_with_pod_template_hash_and_pods(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane:
        d = await plane.client.create(DEPLOYMENTS, deployment(replicas=3))
        [rs] = await plane.wait_for(lambda: replica_sets_of(plane), message="a ReplicaSet")
        template_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{template_hash}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": template_hash}
        assert rs["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        annotations = rs["metadata"]["annotations"]
        assert annotations["deployment.kubernetes.io/revision"] == "1"
        assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
        assert annotations["deployment.kubernetes.io/max-replicas"] == "4"  # 25% surge of 3, rounded up

        created = await plane.wait_for(lambda: _exactly(pods_of(plane, rs), 3), message="3 pods")
        for p in created:
            assert p["metadata"]["name"].startswith(f"web-{template_hash}-")
            assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": template_hash}
            [ref] = p["metadata"]["ownerReferences"]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                           "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        d = await plane.wait_for(lambda: _revision_written(plane), message="the revision annotation")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


async def _exactly(pods_coroutine: Any, count: int) -> list[Obj] | None:
    found = await pods_coroutine
    return found if len(found) == count else None


async def _none(pods_coroutine: Any) -> bool:
    return not await pods_coroutine


async def _revision_written(plane: ControlPlane) -> Obj | None:
    d = await get_deployment(plane)
    return d if objects.annotations(d).get("deployment.kubernetes.io/revision") else None


async def test_ready_pods_make_deployment_available(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client, auto=False) as kubelet:
        await plane.client.create(DEPLOYMENTS, deployment(replicas=3))
        [rs] = await plane.wait_for(lambda: replica_sets_of(plane), message="a ReplicaSet")
        created = await plane.wait_for(lambda: _exactly(pods_of(plane, rs), 3), message="3 pods")

        async def unavailable() -> Obj | None:
            d = await get_deployment(plane)
            cond = condition(d, "Available")
            return d if cond is not None and objects.status(d).get("replicas") == 3 else None
        d = await plane.wait_for(unavailable, message="status with 3 replicas")
        assert condition(d, "Available")["status"] == "False"
        assert condition(d, "Available")["reason"] == "MinimumReplicasUnavailable"
        assert objects.status(d).get("unavailableReplicas") == 3

        await kubelet.mark_ready(*(objects.name(p) for p in created))
        d = await plane.wait_for(lambda: rolled_out(plane), message="the rollout to complete")
        status = d["status"]
        assert {k: status.get(k) for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                           "availableReplicas", "unavailableReplicas")} == {
            "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3, "unavailableReplicas": None}
        available, progressing = condition(d, "Available"), condition(d, "Progressing")
        assert (available["status"], available["reason"], available["message"]) == (
            "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        assert (progressing["status"], progressing["reason"], progressing["message"]) == (
            "True", "NewReplicaSetAvailable", f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.')
        assert [c["type"] for c in status["conditions"]] == ["Available", "Progressing"]


async def test_rolling_update_keeps_availability_and_surge_bounds(tmp_path: Path) -> None:
    """The seed: 3 replicas, maxSurge 1, maxUnavailable 0. Every state the API server went
    through during v1 -> v2 has at least 3 available pods and at most 4 pods."""
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(DEPLOYMENTS, deployment(replicas=3, strategy=SEED_STRATEGY))
        await plane.wait_for(lambda: rolled_out(plane), message="v1 rolled out")
        [old_rs] = await replica_sets_of(plane)
        async with PodObserver(plane.client, "app=web") as observer:
            await set_image(plane, "nginx:2.0")
            d = await plane.wait_for(lambda: rolled_out(plane, generation=2), message="v2 rolled out")
            await plane.wait_for(lambda: _none(pods_of(plane, old_rs)), message="old pods gone")
        assert observer.states, "no pod changes observed"
        assert min(s.available for s in observer.states) >= 3
        assert max(s.total for s in observer.states) <= 4
        assert any(s.total == 4 for s in observer.states)  # the surge was used
        rss = {objects.name(rs): rs for rs in await replica_sets_of(plane)}
        old_rs = rss.pop(objects.name(old_rs))
        [new_rs] = rss.values()
        assert (old_rs["spec"]["replicas"], new_rs["spec"]["replicas"]) == (0, 3)
        assert new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        for p in await pods_of(plane, new_rs):
            assert p["spec"]["containers"][0]["image"] == "nginx:2.0"
        await _assert_rollout_events(plane, objects.name(old_rs), objects.name(new_rs))


async def _assert_rollout_events(plane: ControlPlane, old: str, new: str) -> None:
    scaling = await plane.wait_for(lambda: _at_least(plane.events("ScalingReplicaSet"), 7), message="events")
    messages = {e["message"] for e in scaling}
    assert f"Scaled up replica set {old} from 0 to 3" in messages
    assert f"Scaled up replica set {new} from 0 to 1" in messages
    assert f"Scaled down replica set {old} from 3 to 2" in messages
    assert f"Scaled down replica set {old} from 1 to 0" in messages
    for e in scaling:
        assert e["involvedObject"]["kind"] == "Deployment"
        assert e["source"] == {"component": "deployment-controller"}
    created = await plane.events("SuccessfulCreate", kind="ReplicaSet")
    deleted = await plane.events("SuccessfulDelete", kind="ReplicaSet")
    assert len([e for e in created if e["involvedObject"]["name"] == new]) == 3
    assert len([e for e in deleted if e["involvedObject"]["name"] == old]) == 3
    assert all(e["message"].startswith("Deleted pod: ") for e in deleted)
    assert all(e["source"] == {"component": "replicaset-controller"} for e in created + deleted)


async def _at_least(events_coroutine: Any, count: int) -> list[Obj] | None:
    events = await events_coroutine
    return events if len(events) >= count else None


async def test_scaling_resizes_the_replicaset(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(DEPLOYMENTS, deployment(replicas=3))
        await plane.wait_for(lambda: rolled_out(plane), message="rolled out")
        [rs] = await replica_sets_of(plane)
        name = objects.name(rs)
        for replicas in (5, 2):
            # The scale subresource, as `kubectl scale` uses it.
            scale = await plane.client.scale(DEPLOYMENTS, "web", replicas, NS)
            assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", replicas)
            await plane.wait_for(lambda n=replicas: _exactly(pods_of(plane, rs), n), message=f"{replicas} pods")
            d = await plane.wait_for(lambda n=replicas: _status_replicas(plane, n), message=f"status of {replicas}")
            assert d["status"]["availableReplicas"] == replicas
        messages = {e["message"] for e in await plane.events("ScalingReplicaSet")}
        assert {f"Scaled up replica set {name} from 3 to 5", f"Scaled down replica set {name} from 5 to 2"} <= messages
        assert [objects.name(r) for r in await replica_sets_of(plane)] == [name]
        deleted = await plane.events("SuccessfulDelete", kind="ReplicaSet")
        assert len(deleted) == 3


async def _status_replicas(plane: ControlPlane, replicas: int) -> Obj | None:
    d = await get_deployment(plane)
    status = objects.status(d)
    counts = {status.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")}
    return d if counts == {replicas} else None


async def test_pause_stops_the_rollout_and_resume_continues_it(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(DEPLOYMENTS, deployment(replicas=2))
        await plane.wait_for(lambda: rolled_out(plane), message="rolled out")
        await plane.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, NS)
        await set_image(plane, "nginx:2.0")

        async def paused_observed() -> Obj | None:
            d = await get_deployment(plane)
            cond = condition(d, "Progressing")
            observed = objects.status(d).get("observedGeneration") == objects.generation(d) == 3
            return d if observed and cond is not None and cond["reason"] == "DeploymentPaused" else None
        d = await plane.wait_for(paused_observed, message="the pause observed")
        assert condition(d, "Progressing")["status"] == "Unknown"
        assert condition(d, "Progressing")["message"] == "Deployment is paused"
        [rs] = await replica_sets_of(plane)  # no new ReplicaSet while paused
        assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"

        await plane.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": None}}, NS)
        await plane.wait_for(lambda: rolled_out(plane, generation=4), message="the rollout after resume")
        images = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r["spec"]["replicas"]
                  for r in await replica_sets_of(plane)}
        assert images == {"nginx:1.0": 0, "nginx:2.0": 2}


async def test_recreate_deletes_every_old_pod_before_creating_new_ones(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(DEPLOYMENTS, deployment(replicas=3, strategy={"type": "Recreate"}))
        await plane.wait_for(lambda: rolled_out(plane), message="v1 rolled out")
        async with PodObserver(plane.client, "app=web") as observer:
            await set_image(plane, "nginx:2.0")
            await plane.wait_for(lambda: rolled_out(plane, generation=2), message="v2 rolled out")
        assert all(len(s.images) <= 1 for s in observer.states), "old and new pods ran together"
        assert any(s.total == 0 for s in observer.states)
        assert max(s.total for s in observer.states) <= 3
        assert observer.states[-1].images == {"nginx:2.0"}


async def test_deleting_a_deployments_replicaset_recreates_it(tmp_path: Path) -> None:
    """Level-triggered: the ReplicaSet's delete event brings the Deployment back to it.
    (Its old pod stays behind with a dangling ownerReference: there is no garbage
    collector yet, and an orphan-propagation delete would wait for one.)"""
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await plane.client.create(DEPLOYMENTS, deployment(replicas=1))
        await plane.wait_for(lambda: rolled_out(plane), message="rolled out")
        [rs] = await replica_sets_of(plane)
        await plane.client.delete(REPLICASETS, objects.name(rs), NS, propagation_policy="Background")

        async def recreated() -> list[Obj] | None:
            found = await replica_sets_of(plane)
            return found if found and objects.uid(found[0]) != objects.uid(rs) else None
        [again] = await plane.wait_for(recreated, message="a new ReplicaSet")
        assert objects.name(again) == objects.name(rs)
        await plane.wait_for(lambda: _exactly(pods_of(plane, again), 1), message="its pod")
        await plane.wait_for(lambda: rolled_out(plane), message="available again")


async def test_progress_deadline_exceeded_on_an_injected_clock(tmp_path: Path) -> None:
    """No pod ever turns ready: once progressDeadlineSeconds pass on the manager's clock,
    the requeue the sync asked for finds Progressing False / ProgressDeadlineExceeded."""
    clock = FakeClock(datetime.now(UTC))
    async with control_plane(tmp_path, clock=clock) as plane:
        ticking = asyncio.create_task(_tick(clock))  # lets rate-limited retries run
        try:
            await plane.client.create(DEPLOYMENTS, deployment(replicas=2, progressDeadlineSeconds=30))

            await plane.wait_for(lambda: _status_replicas_created(plane, 2), message="2 pods created")

            async def timed_out() -> Obj | None:
                d = await get_deployment(plane)
                cond = condition(d, "Progressing")
                if cond is not None and cond["reason"] == "ProgressDeadlineExceeded":
                    return d
                clock.advance(31)  # past the deadline of the latest progress seen
                await asyncio.sleep(0.1)
                return None
            d = await plane.wait_for(timed_out, message="the deadline")
        finally:
            ticking.cancel()
        cond = condition(d, "Progressing")
        assert cond["status"] == "False"
        assert cond["message"] == f'ReplicaSet "{(await replica_sets_of(plane))[0]["metadata"]["name"]}" ' \
                                  "has timed out progressing."


async def _tick(clock: FakeClock) -> None:
    while True:
        await asyncio.sleep(0.002)
        clock.advance(0.01)


async def _status_replicas_created(plane: ControlPlane, replicas: int) -> bool:
    return objects.status(await get_deployment(plane)).get("replicas") == replicas
