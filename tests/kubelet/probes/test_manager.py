"""ProbeManager end to end: real loopback servers and processes answer the probes, a
fake clock drives the periods. Thresholds, initial delay, startup gating, liveness
hold, events, on_change, jitter, triggers, removal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web

from kubelet.probes import ProbeManager
from minikube_py.client.clock import FakeClock
from tests.kubelet.probes.conftest import eventually, free_port, pod

CID = "process://" + "a" * 64


@dataclass
class Health:
    """A /healthz whose answer the test sets, counting requests."""

    status: int = 200
    hits: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(status=self.status, text="body")


@pytest.fixture
async def health(serve) -> Health:
    state = Health()
    app = web.Application()
    app.router.add_get("/{tail:.*}", state.handle)
    state.port = await serve(app)
    return state


@pytest.fixture
async def manager(runtime, recorder) -> AsyncIterator[tuple[ProbeManager, FakeClock, list[str]]]:
    clock = FakeClock()
    changes: list[str] = []
    mgr = ProbeManager(runtime=runtime, recorder=recorder, clock=clock, on_change=changes.append)
    clock.advance(3600)  # the kubelet has been up for a while: no start-up jitter
    try:
        yield mgr, clock, changes
    finally:
        await mgr.close()


def container(**probes) -> dict:
    return {"name": "app", "image": "podinfo", "ports": [{"name": "http", "containerPort": 0}], **probes}


def http_probe(port: int, **extra) -> dict:
    return {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10, **extra}


async def tick(clock: FakeClock, seconds: float = 10, sleepers: int = 1) -> None:
    """Let the workers finish their run and sleep, then move time on."""
    await clock.wait_for_sleepers(sleepers)
    clock.advance(seconds)


async def test_readiness_starts_false_then_follows_the_probe(manager, health, recorder):
    mgr, clock, changes = manager
    mgr.add(pod(container(readinessProbe=http_probe(health.port))), "app", CID, clock.now(), "127.0.0.1")
    assert mgr.started(CID) and not mgr.liveness_failed(CID)
    await eventually(lambda: mgr.ready(CID), what="ready after the first success")
    assert changes == ["uid-1"]
    health.status = 500
    for failures in (1, 2):  # failureThreshold 3: two failures leave it ready
        await tick(clock)
        await eventually(lambda n=failures: len(recorder.events) == n, what=f"failure {failures}")
        assert mgr.ready(CID)
    await tick(clock)
    await eventually(lambda: len(recorder.events) == 3, what="failure 3")
    assert not mgr.ready(CID)
    assert changes == ["uid-1", "uid-1"]
    assert recorder.messages() == ["Readiness probe failed: HTTP probe failed with statuscode: 500"] * 3
    event = recorder.events[0]
    assert (event.type, event.reason, event.field_path) == ("Warning", "Unhealthy", "spec.containers{app}")
    assert event.obj["kind"] == "Pod" and event.obj["metadata"]["uid"] == "uid-1"


async def test_no_probes_means_started_and_ready_at_once(manager):
    mgr, clock, changes = manager
    mgr.add(pod(container()), "app", CID, clock.now(), "127.0.0.1")
    assert mgr.started(CID) and mgr.ready(CID) and not mgr.liveness_failed(CID)
    assert mgr.kill_reason(CID) is None and changes == []
    assert not mgr.ready("process://unknown") and not mgr.started("process://unknown")


async def test_liveness_failure_threshold_then_hold(manager, recorder):
    mgr, clock, changes = manager
    port = free_port()
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 5, "failureThreshold": 2,
             "terminationGracePeriodSeconds": 7}
    mgr.add(pod(container(livenessProbe=probe)), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: len(recorder.events) == 1)
    assert not mgr.liveness_failed(CID)
    await tick(clock, 5)
    await eventually(lambda: mgr.liveness_failed(CID), what="liveness failed")
    assert changes == ["uid-1"]
    reason = mgr.kill_reason(CID)
    assert reason is not None and reason.grace_period == 7
    assert reason.event_message() == "Container app failed liveness probe, will be restarted"
    assert reason.event_message(restart=False) == "Container app failed liveness probe"
    assert recorder.messages() == [f"Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"] * 2
    for _ in range(3):  # on hold until the container is replaced
        await tick(clock, 5)
    assert len(recorder.events) == 2
    mgr.add(pod(container(livenessProbe=probe)), "app", CID[:-1] + "b", clock.now(), "127.0.0.1")
    assert not mgr.liveness_failed(CID) and mgr.kill_reason(CID) is None  # the old one is forgotten
    await eventually(lambda: len(recorder.events) == 3, what="the new container probed")


async def test_initial_delay_counts_from_container_start(manager, health):
    mgr, clock, _ = manager
    probe = http_probe(health.port, initialDelaySeconds=15)
    mgr.add(pod(container(livenessProbe=probe)), "app", CID, clock.now(), "127.0.0.1")
    await tick(clock)   # t=10: still within the delay
    await tick(clock)   # t=20: first run
    await eventually(lambda: len(health.hits) == 1)
    await clock.wait_for_sleepers(1)
    assert len(health.hits) == 1


async def test_initial_delay_uses_the_containers_start_time(manager, health):
    mgr, clock, _ = manager
    probe = http_probe(health.port, initialDelaySeconds=30)
    started_long_ago = clock.now() - timedelta(seconds=60)  # a re-adopted container
    mgr.add(pod(container(livenessProbe=probe)), "app", CID, started_long_ago, "127.0.0.1")
    await eventually(lambda: len(health.hits) == 1)


async def test_startup_probe_gates_liveness_and_readiness(manager, health, recorder, tmp_path):
    mgr, clock, changes = manager
    marker = tmp_path / "started"
    env = [{"name": "MARKER", "value": str(marker)}]
    spec = container(env=env, startupProbe={"exec": {"command": ["cat", "$(MARKER)"]}, "periodSeconds": 10,
                                            "failureThreshold": 30},
                     livenessProbe=http_probe(health.port), readinessProbe=http_probe(health.port))
    mgr.add(pod(spec), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: len(recorder.events) == 1)
    assert recorder.messages()[0] == f"Startup probe failed: cat: {marker}: No such file or directory\n"
    assert not mgr.started(CID) and not mgr.ready(CID)
    await tick(clock, sleepers=3)
    await eventually(lambda: len(recorder.events) == 2)
    assert health.hits == []  # liveness and readiness wait for startup
    marker.write_text("yes")
    await tick(clock, sleepers=3)
    await eventually(lambda: mgr.started(CID), what="started")
    assert changes == ["uid-1"]
    await tick(clock, sleepers=3)
    await eventually(lambda: mgr.ready(CID) and len(health.hits) >= 2, what="ready once started")


async def test_startup_failure_asks_for_a_restart(manager, runtime):
    mgr, clock, _ = manager
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}
    mgr.add(pod(container(startupProbe=probe)), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: len(runtime.calls) == 1)
    await tick(clock, 1)
    await eventually(lambda: mgr.startup_failed(CID))
    reason = mgr.kill_reason(CID)
    assert reason is not None and reason.event_message() == "Container app failed startup probe, will be restarted"


async def test_success_threshold_needs_consecutive_successes(manager, health):
    mgr, clock, _ = manager
    mgr.add(pod(container(readinessProbe=http_probe(health.port, successThreshold=2))), "app", CID,
            clock.now(), "127.0.0.1")
    await eventually(lambda: len(health.hits) == 1)
    await clock.wait_for_sleepers(1)
    assert not mgr.ready(CID)
    # ready() while not ready triggers an early run, as the kubelet's status update does.
    await eventually(lambda: mgr.ready(CID), what="ready after the second success")
    assert len(health.hits) == 2


async def test_an_errored_probe_is_reported_and_thrown_away(manager, recorder):
    mgr, clock, _ = manager
    probe = {"httpGet": {"path": "/", "port": "metrics"}, "periodSeconds": 10, "failureThreshold": 1}
    mgr.add(pod(container(livenessProbe=probe)), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: len(recorder.events) == 1)
    for _ in range(2):
        await tick(clock)
    await eventually(lambda: len(recorder.events) == 3)
    assert recorder.messages() == ['Liveness probe errored and resulted in unknown state: '
                                   'strconv.Atoi: parsing "metrics": invalid syntax'] * 3
    assert not mgr.liveness_failed(CID)
    assert mgr.probe_counts() == {}


async def test_named_port_and_probe_counts(manager, health):
    mgr, clock, _ = manager
    spec = container(readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}})
    spec["ports"][0]["containerPort"] = health.port
    mgr.add(pod(spec), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: health.hits)
    await clock.wait_for_sleepers(1)
    assert mgr.ready(CID) and health.hits == ["/readyz"]
    assert mgr.probe_counts() == {("Readiness", "successful", "default", "web", "uid-1", "app"): 1}
    mgr.remove_pod("uid-1")
    assert mgr.probe_counts() == {}


async def test_first_run_is_jittered_right_after_the_kubelet_starts(runtime, recorder, health):
    clock = FakeClock()
    mgr = ProbeManager(runtime=runtime, recorder=recorder, clock=clock, on_change=None)
    try:
        mgr.add(pod(container(readinessProbe=http_probe(health.port))), "app", CID, clock.now(), "127.0.0.1")
        await clock.wait_for_sleepers(1)
        wait = clock.next_wakeup()
        assert wait is not None and 0 <= wait < 10
        assert health.hits == []
        clock.advance(10)
        await eventually(lambda: len(health.hits) == 1)
    finally:
        await mgr.close()


async def test_remove_stops_the_workers_and_forgets_results(manager, health):
    mgr, clock, _ = manager
    mgr.add(pod(container(readinessProbe=http_probe(health.port))), "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: mgr.ready(CID))
    mgr.remove(CID)
    assert not mgr.ready(CID) and not mgr.started(CID)
    await asyncio.sleep(0.05)
    hits = len(health.hits)
    assert clock.sleepers == 0
    clock.advance(100)
    await asyncio.sleep(0.05)
    assert len(health.hits) == hits
    mgr.add(pod(container(readinessProbe=http_probe(health.port))), "app", CID, clock.now(), "127.0.0.1")
    mgr.remove_pod("uid-1")
    assert not mgr.started(CID)


async def test_a_terminating_pod_is_never_restarted_by_liveness(manager, health):
    mgr, clock, _ = manager
    health.status = 500
    spec = pod(container(livenessProbe=http_probe(health.port, failureThreshold=2)))
    mgr.add(spec, "app", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: len(health.hits) == 1)
    deleting = {**spec, "metadata": {**spec["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    mgr.update_pod(deleting)
    await tick(clock)
    await asyncio.sleep(0.05)
    assert clock.sleepers == 0  # the worker stopped
    clock.advance(100)
    await asyncio.sleep(0.05)
    assert len(health.hits) == 1 and not mgr.liveness_failed(CID)


async def test_sidecar_events_name_the_init_container(manager, recorder):
    mgr, clock, _ = manager
    sidecar = {"name": "proxy", "restartPolicy": "Always",
               "readinessProbe": {"tcpSocket": {"port": free_port()}}}
    mgr.add(pod(container(), initContainers=[sidecar]), "proxy", CID, clock.now(), "127.0.0.1")
    await eventually(lambda: recorder.events)
    assert recorder.events[0].field_path == "spec.initContainers{proxy}"
    with pytest.raises(ValueError, match="has no container 'nope'"):
        mgr.add(pod(container()), "nope", "process://x", clock.now(), "127.0.0.1")


async def test_real_clock_readiness_then_liveness_with_one_second_periods(runtime, recorder, health):
    changes: list[str] = []
    mgr = ProbeManager(runtime=runtime, recorder=recorder, on_change=changes.append)  # RealClock
    spec = container(readinessProbe=http_probe(health.port, periodSeconds=1, failureThreshold=1),
                     livenessProbe=http_probe(health.port, periodSeconds=1, failureThreshold=2))
    try:
        mgr.add(pod(spec), "app", CID, None, "127.0.0.1")
        await eventually(lambda: mgr.ready(CID), timeout=5, what="ready")
        health.status = 503
        await eventually(lambda: mgr.liveness_failed(CID) and not mgr.ready(CID), timeout=8, what="failed")
        assert "Liveness probe failed: HTTP probe failed with statuscode: 503" in recorder.messages()
        assert changes.count("uid-1") >= 3  # ready, liveness failed, unready
    finally:
        await mgr.close()
