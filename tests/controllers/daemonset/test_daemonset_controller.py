"""The DaemonSet controller end to end in process: the real API server, the
controller-manager on the test loop, Node objects written through the API, and a fake
kubelet marking pods ready (no scheduler: daemon pods count by their pinned node)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controllers.common import objects
from controllers.common.hashing import compute_hash
from minikube_py.client import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from tests.controllers.manager.harness import (
    NS,
    ControlPlane,
    FakeKubelet,
    PodObserver,
    control_plane,
    controlled_by,
)

Obj = dict[str, Any]


def node_body(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels)}}


def ds_body(name: str = "agent", *, image: str = "busybox:1.36", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "agent", "image": image}]}}, **spec}}


async def add_nodes(plane: ControlPlane, *names: str) -> None:
    for name in names:
        await plane.client.create(NODES, node_body(name))


async def daemon_pods(plane: ControlPlane, name: str = "agent") -> list[Obj]:
    ds = await plane.client.get(DAEMONSETS, name, NS)
    return [p for p in await controlled_by(plane.client, PODS, ds) if not objects.being_deleted(p)]


def pinned_node(pod: Obj) -> str:
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return terms["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]


async def status_when(plane: ControlPlane, name: str = "agent", **expected: int) -> Obj:
    async def check() -> Obj | None:
        ds = await plane.client.get(DAEMONSETS, name, NS)
        status = objects.status(ds)
        done = all(int(status.get(k) or 0) == v for k, v in expected.items())
        return ds if done and status.get("observedGeneration") == objects.generation(ds) else None
    return await plane.wait_for(check, message=f"DaemonSet status {expected}")


async def test_one_pod_per_node_with_revision_labels_and_events(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await add_nodes(plane, "n1", "n2")
        await plane.client.create(DAEMONSETS, ds_body())
        ds = await status_when(plane, desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                               updatedNumberScheduled=2, numberAvailable=2, numberUnavailable=0)
        pods = await daemon_pods(plane)
        assert sorted(pinned_node(p) for p in pods) == ["n1", "n2"]
        [revision] = await controlled_by(plane.client, CONTROLLERREVISIONS, ds)
        hash_value = compute_hash(ds["spec"]["template"])
        assert revision["metadata"]["name"] == f"agent-{hash_value}" and revision["revision"] == 1
        assert revision["data"]["spec"]["template"]["$patch"] == "replace"
        for pod in pods:
            assert pod["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_value,
                                                 "pod-template-generation": "1"}
            assert pod["metadata"]["name"].startswith("agent-")
        created = {e["message"] for e in await plane.events("SuccessfulCreate", kind="DaemonSet")}
        assert created == {f"Created pod: {objects.name(p)}" for p in pods}

        await add_nodes(plane, "n3")
        await status_when(plane, desiredNumberScheduled=3, currentNumberScheduled=3, numberAvailable=3)
        await plane.client.delete(NODES, "n3")
        await status_when(plane, desiredNumberScheduled=2, numberAvailable=2)

        async def two_pods() -> list[Obj] | None:
            pods = await daemon_pods(plane)
            return pods if len(pods) == 2 else None
        # n3's pod was never bound (no scheduler here): the controller deletes it itself
        pods = await plane.wait_for(two_pods, message="the pod of the removed node deleted")
        assert sorted(pinned_node(p) for p in pods) == ["n1", "n2"]


async def test_hash_collision_bumps_collision_count(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane:
        await add_nodes(plane, "n1")
        ds = await plane.client.create(DAEMONSETS, ds_body())
        # A revision squatting on the name the DaemonSet's template hashes to, other data.
        squatter = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": f"agent-{compute_hash(ds['spec']['template'])}", "namespace": NS,
                                 "labels": {"app": "other"}},
                    "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1}
        await plane.client.create(CONTROLLERREVISIONS, squatter)
        plane.start_manager()
        ds = await status_when(plane, desiredNumberScheduled=1, currentNumberScheduled=1)
        assert objects.status(ds)["collisionCount"] == 1
        [revision] = await controlled_by(plane.client, CONTROLLERREVISIONS, ds)
        assert revision["metadata"]["name"] == f"agent-{compute_hash(ds['spec']['template'], 1)}"
        [pod] = await daemon_pods(plane)
        assert pod["metadata"]["labels"]["controller-revision-hash"] == compute_hash(ds["spec"]["template"], 1)


async def test_rolling_update_replaces_every_pod_and_prunes_history(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await add_nodes(plane, "n1", "n2", "n3")
        await plane.client.create(DAEMONSETS, ds_body(revisionHistoryLimit=0))
        await status_when(plane, numberAvailable=3, updatedNumberScheduled=3)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "busybox:1.37"}]}}}}
        await plane.client.patch(DAEMONSETS, "agent", patch, NS, patch_type="strategic")
        ds = await status_when(plane, desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3)

        async def only_new() -> list[Obj] | None:
            pods = await daemon_pods(plane)
            images = {p["spec"]["containers"][0]["image"] for p in pods}
            return pods if len(pods) == 3 and images == {"busybox:1.37"} else None
        pods = await plane.wait_for(only_new, message="three pods of the new template")
        assert sorted(pinned_node(p) for p in pods) == ["n1", "n2", "n3"]

        async def pruned() -> list[Obj] | None:
            revisions = await controlled_by(plane.client, CONTROLLERREVISIONS, ds)
            return revisions if len(revisions) == 1 else None
        [revision] = await plane.wait_for(pruned, message="the old revision deleted (revisionHistoryLimit 0)")
        assert revision["revision"] == 2
        deleted = await plane.events("SuccessfulDelete", kind="DaemonSet")
        assert len(deleted) == 3


async def test_failed_pod_is_replaced_with_failed_daemon_pod_event(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await add_nodes(plane, "n1")
        await plane.client.create(DAEMONSETS, ds_body())
        await status_when(plane, numberAvailable=1)
        [pod] = await daemon_pods(plane)
        failed = {"status": {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}]}}
        await plane.client.patch(PODS, objects.name(pod), failed, NS, subresource="status")

        async def replaced() -> list[Obj] | None:
            pods = await daemon_pods(plane)
            return pods if len(pods) == 1 and objects.name(pods[0]) != objects.name(pod) else None
        [new] = await plane.wait_for(replaced, message="a new pod instead of the failed one")
        assert pinned_node(new) == "n1"
        [event] = await plane.events("FailedDaemonPod", kind="DaemonSet")
        assert event["type"] == "Warning"
        assert event["message"] == f"Found failed daemon pod {NS}/{objects.name(pod)} on node n1, will try to kill it"
        await status_when(plane, numberAvailable=1, currentNumberScheduled=1)


async def test_max_surge_rollout_never_drops_below_all_nodes_available(tmp_path: Path) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    async with control_plane(tmp_path) as plane, FakeKubelet(plane.client):
        await add_nodes(plane, "n1", "n2", "n3")
        await plane.client.create(DAEMONSETS, ds_body(updateStrategy=strategy))
        await status_when(plane, numberAvailable=3, updatedNumberScheduled=3)
        async with PodObserver(plane.client, "app=agent") as observer:
            start = len(observer.states)
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "busybox:1.37"}]}}}}
            await plane.client.patch(DAEMONSETS, "agent", patch, NS, patch_type="strategic")
            await status_when(plane, desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3)

            async def only_new() -> bool:
                pods = await daemon_pods(plane)
                return len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.37"}
            await plane.wait_for(only_new, message="three pods of the new template")
        during = observer.states[start:]
        assert during and all(state.available >= 3 for state in during), during
        assert max(state.total for state in during) == 4  # one node surged at a time
