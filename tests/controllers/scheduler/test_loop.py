"""The scheduling loop and its cache, against the real API server in-process.

Nodes are created directly through the API (capacity, allocatable, a Ready condition),
so no kubelet is needed: the scheduler only reads them. Each test runs its own
`Scheduler` on its own client and informers, and tears everything down. Waiting is
polling with short real sleeps; tests about time (backoff) use a FakeClock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from controllers.scheduler.cache import CacheFeeder, SchedulerCache
from controllers.scheduler.framework import ClusterEvent
from controllers.scheduler.loop import Scheduler
from minikube_py.client import (
    EVENTS,
    NODES,
    PODS,
    ApiClient,
    ApiError,
    Clock,
    FakeClock,
    SharedInformerFactory,
)
from tests.minikube_py.client import conftest as server_fixtures
from tests.minikube_py.client.conftest import InProcessServer

Obj = dict[str, Any]
NS = "default"
# The in-process API server and a client of it, shared with the client runtime's tests.
apiserver = server_fixtures.apiserver
client = server_fixtures.client


# -- builders and helpers (also used by test_process.py) ---------------------------------------------
def api_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
             taints: list[Obj] | None = None, unschedulable: bool = False) -> Obj:
    """A Node as a kubelet registers it: capacity = allocatable, Ready."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    spec: Obj = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": spec,
            "status": {"capacity": dict(resources), "allocatable": dict(resources),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def api_pod(name: str, *, cpu: str | None = "100m", scheduler_name: str | None = None,
            tolerations: list[Obj] | None = None, labels: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "nginx:1.27",
                                 **({"resources": {"requests": {"cpu": cpu}}} if cpu else {})}]}
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": spec}


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, message: str = "condition",
                   guard: Callable[[], None] | None = None) -> Any:
    """Poll `predicate` (sync or async) until truthy and return its value."""
    deadline = time.monotonic() + timeout
    while True:
        if guard is not None:
            guard()
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.02)


async def node_of(api: ApiClient, name: str) -> str | None:
    return (await api.get(PODS, name, NS))["spec"].get("nodeName")


async def events_for(api: ApiClient, name: str, reason: str | None = None) -> list[Obj]:
    items = (await api.list(EVENTS, NS, field_selector=f"involvedObject.name={name}"))["items"]
    return [e for e in items if reason is None or e["reason"] == reason]


def condition(pod: Obj, kind: str = "PodScheduled") -> Obj | None:
    return next((c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == kind), None)


@contextlib.asynccontextmanager
async def running_scheduler(url: str, *, clock: Clock | None = None,
                            scheduler_name: str = "default-scheduler") -> AsyncIterator[Scheduler]:
    """A Scheduler with its own client and informers, its loop running; all torn down."""
    async with ApiClient(url, field_manager="kube-scheduler") as api:
        factory = SharedInformerFactory(api, clock=clock)
        scheduler = Scheduler(api, factory, scheduler_name=scheduler_name, clock=clock)
        factory.start()
        try:
            assert await factory.wait_for_cache_sync(10)
            loop = asyncio.create_task(scheduler.run(), name="scheduler loop")
            scheduler.guard = lambda: _raise_if_crashed(loop)  # type: ignore[attr-defined]
            try:
                yield scheduler
            finally:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
        finally:
            await scheduler.close()
            await factory.shutdown()


def _raise_if_crashed(task: asyncio.Task[None]) -> None:
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise AssertionError("the scheduling loop crashed") from task.exception()


# -- the cache, alone -------------------------------------------------------------------------------
def _cached_pod(name: str, node: str, cpu: str = "1", phase: str = "Running") -> Obj:
    pod = api_pod(name, cpu=cpu)
    pod["spec"]["nodeName"] = node
    pod["status"] = {"phase": phase}
    return pod


def _requested_cpu(cache: SchedulerCache, node: str) -> int:
    info = cache.snapshot().get(node)
    assert info is not None
    return info.requested.milli_cpu


def test_assumed_pod_counts_until_forgotten() -> None:
    cache = SchedulerCache()
    cache.add_node(api_node("n1"))
    cache.assume_pod(api_pod("web", cpu="2"), "n1")
    assert cache.is_assumed("default/web") and _requested_cpu(cache, "n1") == 2000
    assert cache.forget_pod("default/web")
    assert _requested_cpu(cache, "n1") == 0 and cache.node_of("default/web") is None


def test_informer_confirms_assumed_pod_on_the_node_the_api_says() -> None:
    cache = SchedulerCache()
    cache.add_node(api_node("n1"))
    cache.add_node(api_node("n2"))
    cache.assume_pod(api_pod("web", cpu="2"), "n1")
    cache.add_pod(_cached_pod("web", "n2", cpu="2"))
    assert not cache.is_assumed("default/web")
    assert (_requested_cpu(cache, "n1"), _requested_cpu(cache, "n2")) == (0, 2000)
    assert not cache.forget_pod("default/web")  # confirmed pods are not forgotten


def test_pods_seen_before_their_node_appear_with_it() -> None:
    cache = SchedulerCache()
    cache.add_pod(_cached_pod("early", "late-node"))
    assert cache.snapshot().get("late-node") is None
    cache.add_node(api_node("late-node"))
    assert _requested_cpu(cache, "late-node") == 1000


def test_heartbeat_only_node_updates_are_not_cluster_events() -> None:
    cache = SchedulerCache()
    node = api_node("n1")
    cache.add_node(node)
    heartbeat = {**node, "status": {**node["status"], "conditions": [
        {**node["status"]["conditions"][0], "lastHeartbeatTime": "2025-01-01T00:00:10Z"}]}}
    assert cache.update_node(node, heartbeat) is False
    tainted = {**node, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert cache.update_node(heartbeat, tainted) is True
    assert cache.snapshot().get("n1").taints == [{"key": "k", "effect": "NoSchedule"}]  # type: ignore[union-attr]


def test_removed_node_keeps_its_pods_for_when_it_returns() -> None:
    cache = SchedulerCache()
    cache.add_node(api_node("n1"))
    cache.add_pod(_cached_pod("web", "n1"))
    cache.remove_node("n1")
    assert cache.snapshot().node_infos == []
    cache.add_node(api_node("n1"))
    assert _requested_cpu(cache, "n1") == 1000


def test_feeder_reports_scheduling_changes_of_assigned_pods_but_not_status_reports() -> None:
    cache, events = SchedulerCache(), []
    feeder = CacheFeeder(cache, events.append)
    feeder.node_added(api_node("n1"))
    pending = api_pod("web")
    bound = _cached_pod("web", "n1")
    feeder.pod_added(pending)  # unassigned: the loop's business, not the cache's
    cache.assume_pod(pending, "n1")
    feeder.pod_updated(pending, bound)  # the binding arrives: confirms, and is an Add
    ready = {**bound, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    feeder.pod_updated(bound, ready)  # a kubelet status report
    relabelled = {**ready, "metadata": {**ready["metadata"], "labels": {"app": "web"}}}
    feeder.pod_updated(ready, relabelled)
    feeder.pod_updated(relabelled, {**relabelled, "status": {"phase": "Succeeded"}})
    assert events == [ClusterEvent("Node", "Add"), ClusterEvent("Pod", "Add"), ClusterEvent("Pod", "Update"),
                      ClusterEvent("Pod", "Delete")]
    assert cache.stats() == {"nodes": 1, "pods": 0, "assumed": 0}


# -- the loop against the API server ------------------------------------------------------------------
async def test_pod_is_bound_to_the_node_with_room_and_gets_a_scheduled_event(
        apiserver: InProcessServer, client: ApiClient) -> None:
    await client.create(NODES, api_node("small", cpu="1"))
    await client.create(NODES, api_node("big", cpu="4"))
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, api_pod("web", cpu="2"))
        await wait_for(lambda: node_of(client, "web"), message="web bound", guard=scheduler.guard)
        [event] = await wait_for(lambda: events_for(client, "web", "Scheduled"), message="Scheduled event")
    pod = await client.get(PODS, "web", NS)
    assert pod["spec"]["nodeName"] == "big"
    assert condition(pod)["status"] == "True"  # type: ignore[index]
    assert (event["type"], event["message"]) == ("Normal", "Successfully assigned default/web to big")
    assert event["source"] == {"component": "default-scheduler"}
    assert event["reportingComponent"] == "default-scheduler"


async def test_pod_too_big_for_every_node_stays_pending_with_failed_scheduling(
        apiserver: InProcessServer, client: ApiClient) -> None:
    for name in ("n1", "n2"):
        await client.create(NODES, api_node(name, cpu="1"))
    expected = ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
                "2 No preemption victims found for incoming pod.")
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, api_pod("huge", cpu="3"))
        [event] = await wait_for(lambda: events_for(client, "huge", "FailedScheduling"), guard=scheduler.guard)

        async def unschedulable() -> Obj | None:
            found = condition(await client.get(PODS, "huge", NS))
            return found if found and found["status"] == "False" else None

        scheduled = await wait_for(unschedulable, message="PodScheduled=False")
        assert scheduler.queue.pending_pods()["unschedulable"] == ["default/huge"]
    assert event["type"] == "Warning" and event["message"] == expected
    assert (scheduled["reason"], scheduled["message"]) == ("Unschedulable", expected)
    pod = await client.get(PODS, "huge", NS)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")


async def test_adding_a_bigger_node_schedules_the_pending_pod_without_waiting(
        apiserver: InProcessServer, client: ApiClient) -> None:
    clock = FakeClock()
    await client.create(NODES, api_node("small", cpu="1"))
    async with running_scheduler(apiserver.url, clock=clock) as scheduler:
        await client.create(PODS, api_pod("huge", cpu="3"))
        await wait_for(lambda: scheduler.stats.unschedulable == 1, guard=scheduler.guard)
        clock.advance(2)  # past its backoff, far from the 5-minute flush: only an event can move it
        await asyncio.sleep(0.2)
        assert scheduler.queue.pending_pods()["unschedulable"] == ["default/huge"]
        await client.create(NODES, api_node("big", cpu="8"))
        await wait_for(lambda: node_of(client, "huge"), message="huge bound", guard=scheduler.guard)
    assert await node_of(client, "huge") == "big"
    assert scheduler.stats.cycles == 2


async def test_deleting_a_bound_pod_or_untainting_a_node_schedules_pending_pods(
        apiserver: InProcessServer, client: ApiClient) -> None:
    clock = FakeClock()
    await client.create(NODES, api_node("n1", cpu="2"))
    await client.create(NODES, api_node("n2", cpu="2", taints=[{"key": "maintenance", "effect": "NoSchedule"}]))
    async with running_scheduler(apiserver.url, clock=clock) as scheduler:
        await client.create(PODS, api_pod("first", cpu="2"))
        await wait_for(lambda: node_of(client, "first"), guard=scheduler.guard)
        for name in ("second", "third"):
            await client.create(PODS, api_pod(name, cpu="2"))
        await wait_for(lambda: scheduler.stats.unschedulable == 2, guard=scheduler.guard)
        clock.advance(2)  # backoff over; only a cluster event can move them now
        await client.delete(PODS, "first", NS, grace_period_seconds=0)  # Pod/Delete
        await wait_for(lambda: scheduler.stats.bound == 2, guard=scheduler.guard)
        await wait_for(lambda: scheduler.stats.unschedulable == 3, guard=scheduler.guard)  # third, again
        clock.advance(5)  # its second backoff (2 s) is over too
        await asyncio.sleep(0.1)
        assert scheduler.queue.pending_pods()["unschedulable"] == ["default/third"]
        await client.patch(NODES, "n2", {"spec": {"taints": None}})  # Node/Update
        await wait_for(lambda: scheduler.stats.bound == 3, guard=scheduler.guard)
    placed = {name: await node_of(client, name) for name in ("second", "third")}
    assert sorted(placed.values()) == ["n1", "n2"]


async def test_tainted_nodes_are_avoided_unless_tolerated(apiserver: InProcessServer,
                                                          client: ApiClient) -> None:
    gpu_taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    await client.create(NODES, api_node("gpu", cpu="16", taints=gpu_taint))
    await client.create(NODES, api_node("plain", cpu="2"))
    toleration = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    async with running_scheduler(apiserver.url) as scheduler:
        for i in range(4):
            await client.create(PODS, api_pod(f"web-{i}", cpu="100m"))
        await client.create(PODS, api_pod("big", cpu="4"))
        await client.create(PODS, api_pod("trainer", cpu="4", tolerations=toleration))
        for name in ("web-0", "web-1", "web-2", "web-3", "trainer"):
            await wait_for(lambda n=name: node_of(client, n), message=f"{name} bound", guard=scheduler.guard)
        [event] = await wait_for(lambda: events_for(client, "big", "FailedScheduling"))
    assert {await node_of(client, f"web-{i}") for i in range(4)} == {"plain"}
    assert await node_of(client, "trainer") == "gpu"
    assert event["message"].startswith(
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}.")


async def test_pods_for_other_schedulers_are_left_alone(apiserver: InProcessServer,
                                                        client: ApiClient) -> None:
    await client.create(NODES, api_node("n1"))
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, api_pod("theirs", scheduler_name="my-scheduler"))
        await client.create(PODS, api_pod("ours"))
        await wait_for(lambda: node_of(client, "ours"), guard=scheduler.guard)
        await scheduler.wait_for_bindings()
        assert len(scheduler.queue) == 0 and scheduler.stats.cycles == 1
        theirs = await client.get(PODS, "theirs", NS)
        assert not theirs["spec"].get("nodeName") and condition(theirs) is None
        assert await events_for(client, "theirs") == []
        async with running_scheduler(apiserver.url, scheduler_name="my-scheduler"):
            [event] = await wait_for(lambda: events_for(client, "theirs", "Scheduled"))
    assert event["source"] == {"component": "my-scheduler"}


async def test_gated_pod_waits_until_its_scheduling_gates_are_removed(apiserver: InProcessServer,
                                                                      client: ApiClient) -> None:
    await client.create(NODES, api_node("n1"))
    gated = api_pod("gated")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/quota"}]
    async with running_scheduler(apiserver.url) as scheduler:
        await client.create(PODS, gated)
        await client.create(PODS, api_pod("free"))
        await wait_for(lambda: node_of(client, "free"), guard=scheduler.guard)
        assert await node_of(client, "gated") is None and len(scheduler.queue) == 0
        await client.patch(PODS, "gated", {"spec": {"schedulingGates": None}}, NS)
        assert await wait_for(lambda: node_of(client, "gated"), guard=scheduler.guard) == "n1"
    assert scheduler.stats.cycles == 2


async def test_deleted_or_externally_bound_pods_leave_the_queue(apiserver: InProcessServer,
                                                                client: ApiClient) -> None:
    await client.create(NODES, api_node("n1", cpu="1"))
    async with running_scheduler(apiserver.url) as scheduler:
        for name in ("gone", "elsewhere"):
            await client.create(PODS, api_pod(name, cpu="2"))
        await wait_for(lambda: scheduler.stats.unschedulable == 2, guard=scheduler.guard)
        await client.delete(PODS, "gone", NS, grace_period_seconds=0)
        await client.bind(NS, "elsewhere", "n1")  # another actor binds it (kubectl, a test)
        await wait_for(lambda: len(scheduler.queue) == 0, message="queue empty")
        await wait_for(lambda: scheduler.cache.node_of("default/elsewhere") == "n1", message="cache has it")


async def test_failed_binding_forgets_the_assumed_pod_and_retries(apiserver: InProcessServer,
                                                                  client: ApiClient) -> None:
    clock = FakeClock()
    await client.create(NODES, api_node("n1"))
    async with running_scheduler(apiserver.url, clock=clock) as scheduler:
        real_bind, calls = scheduler.client.bind, []

        async def flaky_bind(namespace: str, name: str, node: str, **kwargs: Any) -> Obj:
            calls.append(node)
            if len(calls) == 1:
                assert scheduler.cache.is_assumed(f"{namespace}/{name}")
                raise ApiError({"kind": "Status", "code": 500, "reason": "InternalError",
                                "message": "etcdserver: request timed out"})
            return await real_bind(namespace, name, node, **kwargs)

        scheduler.client.bind = flaky_bind  # type: ignore[method-assign]
        await client.create(PODS, api_pod("web"))
        [failed] = await wait_for(lambda: events_for(client, "web", "FailedScheduling"), guard=scheduler.guard)
        assert scheduler.cache.node_of("default/web") is None  # forgotten
        assert scheduler.queue.pending_pods()["backoff"] == ["default/web"]
        clock.advance(1)  # the first backoff
        await wait_for(lambda: node_of(client, "web"), message="bound after backoff")
        [scheduled] = await wait_for(lambda: events_for(client, "web", "Scheduled"))
    assert failed["message"] == "etcdserver: request timed out"
    assert calls == ["n1", "n1"] and scheduler.stats.errors == 1
    assert scheduled["message"] == "Successfully assigned default/web to n1"


async def test_hundred_pods_spread_over_ten_nodes(apiserver: InProcessServer,
                                                  client: ApiClient) -> None:
    for i in range(10):
        await client.create(NODES, api_node(f"node-{i}", cpu="4", memory="16Gi"))
    await asyncio.gather(*(client.create(PODS, api_pod(f"p-{i:03}", cpu="200m")) for i in range(100)))

    async def placements() -> dict[str, int] | None:
        counts: dict[str, int] = {}
        for pod in (await client.list(PODS, NS))["items"]:
            if not pod["spec"].get("nodeName"):
                return None
            counts[pod["spec"]["nodeName"]] = counts.get(pod["spec"]["nodeName"], 0) + 1
        return counts

    started = time.perf_counter()
    async with running_scheduler(apiserver.url) as scheduler:
        counts = await wait_for(placements, timeout=20, message="all 100 bound", guard=scheduler.guard)
        elapsed = time.perf_counter() - started
        await wait_for(lambda: scheduler.stats.bound == 100)
    print(f"\n100 pods on 10 nodes: {elapsed:.2f}s, {100 / elapsed:.0f} pods/s (informer sync included)")
    assert scheduler.stats.cycles == 100 and scheduler.stats.unschedulable == 0
    assert sorted(counts) == [f"node-{i}" for i in range(10)]
    assert max(counts.values()) - min(counts.values()) <= 2, counts
    assert elapsed < 10
