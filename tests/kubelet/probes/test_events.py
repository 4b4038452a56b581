"""Probe failures reach the API server as Events the way a kubelet writes them: the
real EventRecorder folds the repeats of one failure into a single Event with a count."""

from __future__ import annotations

from kubelet.probes import ProbeManager
from minikube_py.client import ApiClient, FakeClock
from minikube_py.client.events import EventRecorder
from minikube_py.client.resources import EVENTS, PODS
from tests.kubelet.probes.conftest import eventually, free_port, pod


async def test_repeated_liveness_failures_become_one_counted_event(client: ApiClient, runtime) -> None:
    clock = FakeClock()
    manifest = pod({"name": "app", "image": "busybox"})
    del manifest["metadata"]["uid"], manifest["metadata"]["resourceVersion"]
    created = await client.create(PODS, manifest, "default")
    recorder = EventRecorder(client, "kubelet", "node-1", clock=clock)
    manager = ProbeManager(runtime=runtime, recorder=recorder, clock=clock, on_change=None)
    clock.advance(3600)  # the kubelet has been up for a while: no start-up jitter
    port = free_port()
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 10, "failureThreshold": 5}
    spec = {**created, "spec": {**created["spec"], "containers": [{**created["spec"]["containers"][0],
                                                                    "livenessProbe": probe}]}}
    try:
        manager.add(spec, "app", "process://" + "c" * 64, clock.now(), "127.0.0.1")
        for _ in range(2):
            await clock.wait_for_sleepers(1)
            clock.advance(10)
        await clock.wait_for_sleepers(1)
        await eventually(lambda: manager.probe_counts().get(
            ("Liveness", "failed", "default", "web", created["metadata"]["uid"], "app")) == 3)
        await recorder.flush()
    finally:
        await manager.close()
        await recorder.close()
    events = (await client.list(EVENTS, "default"))["items"]
    assert len(events) == 1
    event = events[0]
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "Unhealthy", 3)
    assert event["message"] == f"Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"
    involved = event["involvedObject"]
    assert (involved["kind"], involved["name"], involved["uid"], involved["fieldPath"]) == (
        "Pod", "web", created["metadata"]["uid"], "spec.containers{app}")
    assert event["source"] == {"component": "kubelet", "host": "node-1"}
