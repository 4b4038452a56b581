"""Fake nodes, node half: registration, Lease heartbeats, status reports, restarts.

Against the real API server in-process; timers on a FakeClock (its time starts at
2025-01-01T00:00:00Z), so heartbeats are driven by `clock.advance`, never by sleeping.
"""

from __future__ import annotations

from minikube_py.client import EVENTS, LEASES, NODES, ApiClient, FakeClock
from tests.kubelet.support import eventually, running_fake_nodes

T0 = "2025-01-01T00:00:00Z"


async def test_registers_nodes_like_a_kubelet(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1", "fake-2"], clock=clock, architecture="amd64"):
        node = await client.get(NODES, "fake-1")
        other = await client.get(NODES, "fake-2")
    assert node["metadata"]["labels"] == {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "fake-1", "kubernetes.io/os": "linux", "mkp.dev/fake-node": "true"}
    assert node["metadata"]["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"] == "true"
    assert {node["spec"]["podCIDR"], other["spec"]["podCIDR"]} == {"10.244.0.0/24", "10.244.1.0/24"}
    assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]
    status = node["status"]
    assert status["capacity"] == {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "100Gi", "hugepages-1Gi": "0",
                                  "hugepages-2Mi": "0", "pods": "110"}
    assert status["allocatable"] == {**status["capacity"], "memory": "32668Mi", "ephemeral-storage": "96636764160"}
    internal = [a["address"] for a in status["addresses"] if a["type"] == "InternalIP"]
    assert internal[0].startswith("127.1.0.") and {"address": "fake-1", "type": "Hostname"} in status["addresses"]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"], info["operatingSystem"], info["architecture"]) \
        == ("v1.32.4", "fake://mkp", "linux", "amd64")
    assert info["machineID"] and info["systemUUID"] and info["bootID"] and info["osImage"]
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    assert {(c["lastHeartbeatTime"], c["lastTransitionTime"]) for c in status["conditions"]} == {(T0, T0)}
    assert any(m["manager"] == "kubelet" for m in node["metadata"]["managedFields"])


async def test_capacity_is_configurable(client: ApiClient, clock: FakeClock) -> None:
    capacity = {"cpu": "2", "memory": "4Gi", "pods": "20"}
    async with running_fake_nodes(client, ["small"], clock=clock, capacity=capacity):
        node = await client.get(NODES, "small")
    assert node["status"]["capacity"]["cpu"] == "2" and node["status"]["capacity"]["pods"] == "20"
    assert node["status"]["allocatable"]["memory"] == "3996Mi"


async def test_lease_is_created_and_renewed_every_heartbeat(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock, heartbeat=10):
        node = await client.get(NODES, "fake-1")
        lease = await eventually(lambda: _lease(client, "fake-1"))
        assert lease["spec"] == {"holderIdentity": "fake-1", "leaseDurationSeconds": 40,
                                 "renewTime": "2025-01-01T00:00:00.000000Z"}
        assert lease["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Node", "name": "fake-1", "uid": node["metadata"]["uid"]}]
        for second in (10.5, 21.0, 31.5):  # past each (jittered) renewal
            clock.advance(10.5)
            renewed = await eventually(lambda s=second: _lease_renewed_at(client, s))
            assert renewed["spec"]["holderIdentity"] == "fake-1"


async def test_heartbeats_do_not_rewrite_node_status_until_a_report_is_due(client: ApiClient,
                                                                           clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock, heartbeat=10, status_report_frequency=60):
        before = await client.get(NODES, "fake-1")
        for _ in range(2):  # 21 s: leases renew, the node object stays as it is
            clock.advance(10.5)
            await eventually(lambda: _lease_renewed_at(client, clock.monotonic()))
        assert (await client.get(NODES, "fake-1"))["metadata"]["resourceVersion"] \
            == before["metadata"]["resourceVersion"]
        clock.advance(63.0 - clock.monotonic())  # past the report (at most 60 s after start)
        node = await eventually(lambda: _node_heartbeat_after(client, "fake-1", T0))
    ready = _condition(node, "Ready")
    assert ready["lastTransitionTime"] == T0 and ready["lastHeartbeatTime"] > T0


async def test_ready_is_restored_when_someone_marks_the_node_unknown(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock):
        clock.advance(5)
        unknown = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                   "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": T0,
                   "lastTransitionTime": "2025-01-01T00:00:05Z"}
        await client.patch(NODES, "fake-1", {"status": {"conditions": [unknown]}}, patch_type="strategic",
                           subresource="status", field_manager="node-controller")

        async def ready_again() -> dict | None:
            ready = _condition(await client.get(NODES, "fake-1"), "Ready")
            return ready if ready["status"] == "True" else None

        ready = await eventually(ready_again)
    assert ready["reason"] == "KubeletReady"
    assert ready["lastTransitionTime"] == ready["lastHeartbeatTime"] == "2025-01-01T00:00:05Z"


async def test_restart_adopts_existing_nodes(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1", "fake-2"], clock=clock):
        first = {n: await client.get(NODES, n) for n in ("fake-1", "fake-2")}
    await client.patch(NODES, "fake-2", {"metadata": {"labels": {"kubernetes.io/os": None}}})
    async with running_fake_nodes(client, ["fake-2", "fake-1", "fake-3"], clock=clock):
        again = {n: await client.get(NODES, n) for n in ("fake-1", "fake-2", "fake-3")}
    for name in ("fake-1", "fake-2"):
        assert again[name]["metadata"]["uid"] == first[name]["metadata"]["uid"]
        assert again[name]["spec"]["podCIDR"] == first[name]["spec"]["podCIDR"]
        assert again[name]["status"]["addresses"] == first[name]["status"]["addresses"]
    assert again["fake-2"]["metadata"]["labels"]["kubernetes.io/os"] == "linux"  # default labels restored
    cidrs = {n["spec"]["podCIDR"] for n in again.values()}
    assert len(cidrs) == 3 and "10.244.2.0/24" in cidrs


async def test_a_deleted_node_is_not_registered_again(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1", "fake-2"], clock=clock) as fake:
        await client.delete(NODES, "fake-1")
        await eventually(lambda: _deleted(fake, "fake-1"))
        clock.advance(70)  # heartbeats and reports come and go
        await eventually(lambda: _lease_renewed_at(client, 70.0, "fake-2"))
        nodes = (await client.list(NODES))["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["fake-2"]


# -- helpers ------------------------------------------------------------------------------


async def _lease(client: ApiClient, name: str) -> dict | None:
    try:
        return await client.get(LEASES, name, "kube-node-lease")
    except Exception:  # noqa: BLE001 - not there yet
        return None


async def _lease_renewed_at(client: ApiClient, second: float, name: str = "fake-1") -> dict | None:
    """The Lease, once its renewTime is T0 + `second` or later."""
    lease = await _lease(client, name)
    if lease is None:
        return None
    renew = lease["spec"]["renewTime"]
    seconds = int(renew[17:19]) + 60 * int(renew[14:16]) + float(renew[19:-1] or 0)
    return lease if seconds >= second else None


async def _node_heartbeat_after(client: ApiClient, name: str, stamp: str) -> dict | None:
    node = await client.get(NODES, name)
    return node if _condition(node, "Ready")["lastHeartbeatTime"] > stamp else None


async def _deleted(fake, name: str) -> bool:  # type: ignore[no-untyped-def]
    return fake.nodes.handles[name].deleted


def _condition(node: dict, ctype: str) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == ctype)


async def test_node_events_tell_the_kubelets_story(client: ApiClient, clock: FakeClock) -> None:
    async with running_fake_nodes(client, ["fake-1"], clock=clock) as fake:
        await fake.nodes.handles["fake-1"].recorder.flush()  # type: ignore[union-attr]
        first = await _node_events(client, "fake-1")
        await client.patch(NODES, "fake-1", {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
                           patch_type="strategic", subresource="status", field_manager="node-controller")
        await eventually(lambda: _ready_events(client, 2))
    assert first == [
        ("Starting", "Starting kubelet."),
        ("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods"),
        ("NodeHasSufficientMemory", "Node fake-1 status is now: NodeHasSufficientMemory"),
        ("NodeHasNoDiskPressure", "Node fake-1 status is now: NodeHasNoDiskPressure"),
        ("NodeHasSufficientPID", "Node fake-1 status is now: NodeHasSufficientPID"),
        ("NodeReady", "Node fake-1 status is now: NodeReady"),
    ]


async def _node_events(client: ApiClient, name: str) -> list[tuple[str, str]]:
    items = (await client.list(EVENTS, "default", field_selector=f"involvedObject.name={name}"))["items"]
    assert all(e["involvedObject"] == {"kind": "Node", "name": name, "uid": name} for e in items)
    assert all(e["source"] == {"component": "kubelet", "host": name} for e in items)
    return [(e["reason"], e["message"]) for e in sorted(items, key=lambda e: e["metadata"]["name"])]


async def _ready_events(client: ApiClient, count: int) -> bool:
    """NodeReady recorded `count` times (the recorder folds repeats into one Event's count)."""
    items = (await client.list(EVENTS, "default", field_selector="reason=NodeReady"))["items"]
    return sum(e.get("count", 1) for e in items) >= count


async def test_lease_renewal_survives_conflicts_and_failed_calls(client: ApiClient, clock: FakeClock,
                                                                 monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    async with running_fake_nodes(client, ["fake-1"], clock=clock, heartbeat=10):
        lease = await eventually(lambda: _lease(client, "fake-1"))
        lease["metadata"]["labels"] = {"touched": "yes"}  # someone else writes: our copy is stale now
        await client.update(LEASES, lease)
        real_update, failures = client.update, [1]

        async def flaky_update(*args, **kwargs):  # type: ignore[no-untyped-def]
            if failures:
                failures.pop()
                raise aiohttp.ClientConnectionError("connection reset")
            return await real_update(*args, **kwargs)

        monkeypatch.setattr(client, "update", flaky_update)
        clock.advance(10.5)  # renewal due: the call fails, the retry comes 0.2 s later
        await eventually(lambda: _no_failures_left(failures))
        clock.advance(0.25)
        renewed = await eventually(lambda: _lease_renewed_at(client, 10.5))
    assert renewed["metadata"]["labels"] == {"touched": "yes"}


async def _no_failures_left(failures: list[int]) -> bool:
    return not failures


async def test_cordon_and_uncordon_are_told_as_kubelet_events(client: ApiClient, clock: FakeClock) -> None:
    """kubectl cordon / uncordon: the kubelet records NodeNotSchedulable, then NodeSchedulable."""

    async def reasons() -> list[str] | None:
        items = (await client.list(EVENTS, "default", field_selector="involvedObject.name=fake-1"))["items"]
        found = [e["reason"] for e in items if e["reason"].endswith("Schedulable")]
        return found if len(found) == 2 else None

    async with running_fake_nodes(client, ["fake-1"], clock=clock) as fake:
        await client.patch(NODES, "fake-1", {"spec": {"unschedulable": True}}, field_manager="kubectl-cordon")
        await eventually(lambda: _flushed_with(fake, lambda: _has_reason(client, "NodeNotSchedulable")))
        await client.patch(NODES, "fake-1", {"spec": {"unschedulable": None}}, field_manager="kubectl-cordon")
        found = await eventually(lambda: _flushed_with(fake, reasons))
    assert sorted(found) == ["NodeNotSchedulable", "NodeSchedulable"]
    items = (await client.list(EVENTS, "default", field_selector="reason=NodeNotSchedulable"))["items"]
    assert items[0]["message"] == "Node fake-1 status is now: NodeNotSchedulable"


async def _has_reason(client: ApiClient, reason: str) -> bool:
    return bool((await client.list(EVENTS, "default", field_selector=f"reason={reason}"))["items"])


async def _flushed_with(fake, check):  # type: ignore[no-untyped-def]
    await fake.nodes.handles["fake-1"].recorder.flush()
    return await check()
