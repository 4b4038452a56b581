"""EventRecorder against the real API server: the Event's shape, count aggregation,
similar-message combining, and never blocking the caller."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from minikube_py.client import EVENTS, NODES, PODS, ApiClient, EventRecorder, FakeClock, object_reference
from minikube_py.client.events import COMBINED_PREFIX
from tests.minikube_py.client.support import pod


async def events_about(client: ApiClient, name: str, namespace: str = "default") -> list[dict]:
    items = (await client.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}"))["items"]
    return sorted(items, key=lambda e: e["metadata"]["name"])


@pytest.fixture
async def target(client: ApiClient) -> dict:
    return await client.create(PODS, pod("web-1"))


@pytest.fixture
async def recorder(client: ApiClient) -> EventRecorder:
    recorder = EventRecorder(client, "replicaset-controller", clock=FakeClock())
    yield recorder
    await recorder.close()


async def test_event_looks_like_client_gos(client: ApiClient, target: dict) -> None:
    clock = FakeClock()
    recorder = EventRecorder(client, "kubelet", host="node-1", clock=clock)
    recorder.event(target, "Normal", "Scheduled", "Successfully assigned default/web-1 to node-1",
                   field_path="spec.containers{c}")
    await recorder.close()
    [event] = await events_about(client, "web-1")
    assert re.fullmatch(r"web-1\.[0-9a-f]+", event["metadata"]["name"])
    assert int(event["metadata"]["name"].split(".")[1], 16) == 1735689600 * 10**9  # FakeClock's start
    assert event["metadata"]["namespace"] == "default"
    meta = target["metadata"]
    assert event["involvedObject"] == {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": meta["uid"],
                                       "apiVersion": "v1", "resourceVersion": meta["resourceVersion"],
                                       "fieldPath": "spec.containers{c}"}
    assert (event["type"], event["reason"], event["count"]) == ("Normal", "Scheduled", 1)
    assert event["source"] == {"component": "kubelet", "host": "node-1"}
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2025-01-01T00:00:00Z"
    assert (event["reportingComponent"], event["reportingInstance"]) == ("kubelet", "node-1")


async def test_repeated_event_increments_count(client: ApiClient, target: dict, recorder: EventRecorder) -> None:
    clock: FakeClock = recorder.clock  # type: ignore[assignment]
    for _ in range(3):
        recorder.event(target, "Warning", "BackOff", "Back-off restarting failed container")
        await recorder.flush()
        clock.advance(30)
    [event] = await events_about(client, "web-1")
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2025-01-01T00:00:00Z" and event["lastTimestamp"] == "2025-01-01T00:01:00Z"


async def test_different_messages_are_different_events(client: ApiClient, target: dict,
                                                       recorder: EventRecorder) -> None:
    recorder.event(target, "Normal", "Pulled", "image a pulled")
    recorder.event(target, "Normal", "Pulled", "image b pulled")
    recorder.event(target, "Warning", "Pulled", "image a pulled")
    await recorder.flush()
    events = await events_about(client, "web-1")
    assert len(events) == 3 and all(e["count"] == 1 for e in events)


async def test_after_ten_minutes_a_new_event_is_created(client: ApiClient, target: dict,
                                                        recorder: EventRecorder) -> None:
    clock: FakeClock = recorder.clock  # type: ignore[assignment]
    recorder.event(target, "Normal", "Killing", "Stopping container c")
    await recorder.flush()
    clock.advance(timedelta(minutes=10, seconds=1).total_seconds())
    recorder.event(target, "Normal", "Killing", "Stopping container c")
    await recorder.flush()
    assert [e["count"] for e in await events_about(client, "web-1")] == [1, 1]


async def test_similar_messages_are_combined(client: ApiClient, target: dict, recorder: EventRecorder) -> None:
    for i in range(13):
        recorder.event(target, "Warning", "FailedScheduling", f"0/{i} nodes are available")
    await recorder.flush()
    events = await events_about(client, "web-1")
    assert len(events) == 11  # ten distinct messages, then one combined Event
    [combined] = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert combined["count"] == 3 and combined["message"] == COMBINED_PREFIX + "0/12 nodes are available"


async def test_a_deleted_event_is_recreated_keeping_its_count(client: ApiClient, target: dict,
                                                              recorder: EventRecorder) -> None:
    recorder.event(target, "Normal", "Started", "Started container c")
    await recorder.flush()
    [event] = await events_about(client, "web-1")
    await client.delete(EVENTS, event["metadata"]["name"], "default")
    recorder.event(target, "Normal", "Started", "Started container c")
    await recorder.flush()
    [again] = await events_about(client, "web-1")
    assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2


async def test_cluster_scoped_objects_get_events_in_default(client: ApiClient, recorder: EventRecorder) -> None:
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    recorder.event(node, "Normal", "NodeReady", "Node n1 status is now: NodeReady")
    await recorder.flush()
    [event] = await events_about(client, "n1")
    assert "namespace" not in event["involvedObject"] and event["involvedObject"]["kind"] == "Node"


async def test_recording_never_blocks_and_drops_when_full(client: ApiClient, target: dict) -> None:
    recorder = EventRecorder(client, "c", max_queue=2, clock=FakeClock())
    for i in range(5):  # no await in between: the writer has not run yet
        recorder.event(target, "Normal", "R", f"m{i}")
    assert recorder.dropped == 3
    recorder.event(target, "Bogus", "R", "invalid type is dropped")
    await recorder.close()
    assert len(await events_about(client, "web-1")) == 2


def test_object_reference_from_an_object_or_a_reference() -> None:
    ref = object_reference(pod("p", "ns"))
    assert ref == {"kind": "Pod", "namespace": "ns", "name": "p", "apiVersion": "v1"}
    assert object_reference({"kind": "Node", "name": "n"}, "spec") == {"kind": "Node", "name": "n",
                                                                        "fieldPath": "spec"}
    with pytest.raises(ValueError):
        object_reference({"metadata": {}})
