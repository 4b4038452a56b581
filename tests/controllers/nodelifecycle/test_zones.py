"""Zone disruption states and the per-zone NoExecute tainting rate."""

from __future__ import annotations

import math

import pytest

from controllers.nodelifecycle.zones import (
    FULL,
    NORMAL,
    PARTIAL,
    DisruptionConfig,
    TaintRateLimiter,
    ZoneTracker,
    zone_of,
    zone_state,
)
from minikube_py.client import FakeClock


def node(name: str, ready: str = "True", zone: str | None = None) -> dict:
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


@pytest.mark.parametrize(("ready", "total", "state"), [
    pytest.param(0, 1, FULL, id="lone-node-down"),
    pytest.param(3, 3, NORMAL, id="healthy"),
    pytest.param(1, 3, NORMAL, id="two-down-is-not-enough"),
    pytest.param(2, 5, PARTIAL, id="three-of-five-down"),
    pytest.param(7, 10, NORMAL, id="below-threshold"),
])
def test_zone_state(ready: int, total: int, state: str) -> None:
    assert zone_state(ready, total, 0.55) == state


def test_tracker_follows_nodes_and_detects_master_disruption() -> None:
    tracker = ZoneTracker()
    tracker.set(node("a", zone="z1"))
    tracker.set(node("b", "Unknown", zone="z2"))
    zones = tracker.zones(0.55)
    assert zones.states == {zone_of(node("a", zone="z1")): NORMAL, zone_of(node("b", zone="z2")): FULL}
    assert not zones.master_disruption()
    tracker.set(node("a", "Unknown", zone="z1"))
    assert tracker.zones(0.55).master_disruption()
    tracker.remove("a")
    tracker.remove("b")
    assert not tracker.zones(0.55).master_disruption()
    tracker.set({"metadata": {"name": "new"}, "status": {}})
    assert tracker.zones(0.55).states == {}


def test_partial_disruption_rate_depends_on_cluster_size() -> None:
    tracker = ZoneTracker()
    for i in range(5):
        tracker.set(node(f"n{i}", "Unknown" if i < 3 else "True"))
    zones = tracker.zones(0.55)
    config = DisruptionConfig()
    assert zones.rate("", config) == 0.0
    assert zones.rate("", DisruptionConfig(large_cluster_size_threshold=4)) == config.secondary_node_eviction_rate


def test_rate_limiter_is_a_token_bucket_per_zone() -> None:
    clock = FakeClock()
    limiter = TaintRateLimiter(clock)
    assert limiter.try_accept("z", 0.1) == 0.0
    assert limiter.try_accept("other", 0.1) == 0.0
    assert limiter.try_accept("z", 0.1) == pytest.approx(10.0)
    clock.advance(10)
    assert limiter.try_accept("z", 0.1) == 0.0
    assert limiter.try_accept("z", 0.0) == math.inf
