"""Node lifecycle and taint eviction against the real API server, on a FakeClock: a node
whose kubelet stops goes Unknown after the grace period, is tainted, its pods turn
NotReady and are evicted as their tolerations say; when it comes back the taints go."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controllers.common import objects
from controllers.nodelifecycle.config import NodeLifecycleConfig
from controllers.nodelifecycle.controller import NodeLifecycleController
from controllers.nodelifecycle.tainteviction import TaintEvictionController
from minikube_py.client import (
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    ApiClient,
    ApiError,
    EventRecorder,
    FakeClock,
    SharedInformerFactory,
    micro_time,
)
from tests.controllers.manager.harness import api_server, wait_for

Obj = dict[str, Any]
GRACE = 40.0


def node_obj(name: str, clock: FakeClock) -> Obj:
    stamp = objects.format_time(clock.now())
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
                                       "lastTransitionTime": stamp}]}}


def lease_obj(name: str, clock: FakeClock) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_time(clock.now())}}


def pod_obj(name: str, node: str, tolerations: list[Obj] | None = None) -> Obj:
    spec: Obj = {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def unreachable_for(seconds: int | None) -> list[Obj]:
    toleration: Obj = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return [toleration]


@contextlib.asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[ApiClient, FakeClock]]:
    clock = FakeClock()
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        with contextlib.suppress(ApiError):
            await client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        factory = SharedInformerFactory(client, clock=clock)
        lifecycle = NodeLifecycleController(client, factory, EventRecorder(client, "node-controller", clock=clock),
                                            clock=clock, config=NodeLifecycleConfig(node_monitor_grace_period=GRACE))
        eviction = TaintEvictionController(client, factory, EventRecorder(client, "taint-eviction-controller",
                                                                          clock=clock), clock=clock)
        factory.start()
        tasks = [asyncio.create_task(lifecycle.run()), asyncio.create_task(eviction.run())]
        try:
            yield client, clock
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.shutdown()


async def advance(clock: FakeClock, seconds: float, step: float = 1.0, client: ApiClient | None = None) -> None:
    """Move the fake clock in steps, letting the controllers run between them; with
    `client`, the kubelet of node "alive" renews its Lease at every step."""
    while seconds > 0:
        clock.advance(min(step, seconds))
        seconds -= step
        if client is not None:
            await client.patch(LEASES, "alive", {"spec": {"renewTime": micro_time(clock.now())}}, "kube-node-lease")
        await asyncio.sleep(0.01)


async def add_node(client: ApiClient, clock: FakeClock, name: str) -> None:
    await client.create(NODES, node_obj(name, clock))
    await client.create(LEASES, lease_obj(name, clock), "kube-node-lease")


async def ready(client: ApiClient, name: str) -> None:
    pod = await client.get(PODS, name, "default")
    stamp = objects.format_time(objects.creation_time(pod))
    await client.patch(PODS, name, {"status": {"phase": "Running", "podIP": "10.1.0.5", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}}, "default", subresource="status")


def condition(obj: Obj, cond_type: str) -> Obj:
    return next(c for c in objects.status(obj).get("conditions") or [] if c["type"] == cond_type)


async def test_dead_node_goes_unknown_tainted_pods_not_ready_and_evicted(tmp_path: Path) -> None:
    async with running(tmp_path) as (client, clock):
        await add_node(client, clock, "alive")
        await add_node(client, clock, "dead")
        for name, tolerations in (("quick", unreachable_for(10)), ("default", None), ("forever", unreachable_for(None))):
            await client.create(PODS, pod_obj(name, "dead", tolerations), "default")
            await ready(client, name)
        events = lambda: client.list(EVENTS, "default")  # noqa: E731
        await wait_for(lambda: _reasons(events, "RegisteredNode"), message="RegisteredNode")
        await advance(clock, GRACE - 5, client=client)
        assert condition(await client.get(NODES, "dead"), "Ready")["status"] == "True"

        await advance(clock, 7, client=client)
        node = await wait_for(lambda: _node_if(client, lambda n: condition(n, "Ready")["status"] == "Unknown"),
                              message="node Unknown")
        assert condition(node, "Ready")["reason"] == "NodeStatusUnknown"
        assert condition(node, "Ready")["message"] == "Kubelet stopped posting node status."
        node = await wait_for(lambda: _node_if(client, lambda n: len(n["spec"].get("taints") or []) == 2),
                              message="taints")
        assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
            ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
        assert any(e["message"] == "Node dead status is now: NodeNotReady" for e in await _reasons(events, "NodeNotReady"))
        pod = await client.get(PODS, "quick", "default")
        assert condition(pod, "Ready")["status"] == "False"
        pod_events = await wait_for(lambda: _reasons(events, "NodeNotReady", "Node is not ready"), message="pod event")
        assert {e["involvedObject"]["name"] for e in pod_events} == {"quick", "default", "forever"}
        assert {e["type"] for e in pod_events} == {"Warning"}

        await advance(clock, 11, client=client)
        quick = await wait_for(lambda: _pod_if(client, "quick", objects.being_deleted), message="quick evicted")
        disruption = condition(quick, "DisruptionTarget")
        assert (disruption["reason"], disruption["message"]) == (
            "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
        assert any(e["message"] == "Marking for deletion Pod default/quick"
                   for e in await _reasons(events, "TaintManagerEviction"))
        assert not objects.being_deleted(await client.get(PODS, "default", "default"))

        # The kubelet comes back: a new heartbeat and lease renewal.
        node = await client.get(NODES, "dead")
        stamp = objects.format_time(clock.now())
        node["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                         "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]
        await client.update_status(NODES, node)
        await wait_for(lambda: _node_if(client, lambda n: not n["spec"].get("taints")), message="taints removed")
        cancelled = await wait_for(lambda: _reasons(events, "TaintManagerEviction", "Cancelling"), message="cancel")
        assert cancelled[0]["message"] == "Cancelling deletion of Pod default/default"
        await advance(clock, 300, step=10, client=client)
        await asyncio.sleep(0.2)
        for name in ("default", "forever"):
            assert not objects.being_deleted(await client.get(PODS, name, "default"))


async def test_all_nodes_unreachable_is_master_disruption_no_eviction(tmp_path: Path) -> None:
    async with running(tmp_path) as (client, clock):
        await add_node(client, clock, "dead")
        await client.create(PODS, pod_obj("stays", "dead", unreachable_for(1)), "default")
        await wait_for(lambda: _reasons(lambda: client.list(EVENTS, "default"), "RegisteredNode"),
                       message="RegisteredNode")
        await advance(clock, GRACE + 2)
        node = await wait_for(lambda: _node_if(client, lambda n: (n.get("spec") or {}).get("taints")),
                              message="taint")
        assert condition(node, "Ready")["status"] == "Unknown"
        await advance(clock, 10)
        await asyncio.sleep(0.2)
        node = await client.get(NODES, "dead")
        assert [(t["key"], t["effect"]) for t in node["spec"]["taints"]] == [
            ("node.kubernetes.io/unreachable", "NoSchedule")]
        assert not objects.being_deleted(await client.get(PODS, "stays", "default"))


async def test_untolerated_taint_evicts_at_once(tmp_path: Path) -> None:
    async with running(tmp_path) as (client, clock):
        node = node_obj("n1", clock)
        node["spec"] = {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}
        await client.create(NODES, node)
        await client.create(PODS, pod_obj("victim", "n1"), "default")
        await client.create(PODS, pod_obj("tolerant", "n1", [{"key": "maintenance", "operator": "Exists"}]),
                            "default")
        await wait_for(lambda: _pod_if(client, "victim", objects.being_deleted), message="victim evicted")
        await asyncio.sleep(0.1)
        assert not objects.being_deleted(await client.get(PODS, "tolerant", "default"))


async def _reasons(events: Any, reason: str, prefix: str = "") -> list[Obj]:
    return [e for e in (await events())["items"] if e["reason"] == reason and e["message"].startswith(prefix)]


async def _node_if(client: ApiClient, check: Any) -> Obj | None:
    node = await client.get(NODES, "dead")
    return node if check(node) else None


async def _pod_if(client: ApiClient, name: str, check: Any) -> Obj | None:
    pod = await client.get(PODS, name, "default")
    return pod if check(pod) else None


pytestmark = pytest.mark.asyncio if hasattr(pytest.mark, "asyncio") else []
