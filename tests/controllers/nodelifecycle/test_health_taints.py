"""Node health, the taints it implies, and tolerations: the pure parts of node lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.nodelifecycle import health, taints
from controllers.nodelifecycle.config import NodeLifecycleConfig, parse_duration

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def node(ready: str | None = "True", heartbeat: str = "2026-01-01T00:00:00Z", **spec: Any) -> Obj:
    conditions = [{"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat,
                   "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "KubeletHasSufficientMemory"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat,
                           "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "KubeletReady"})
    return {"metadata": {"name": "n1", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec,
            "status": {"conditions": conditions}}


def lease(renew: str) -> Obj:
    return {"spec": {"holderIdentity": "n1", "renewTime": renew}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_probe_time_is_when_the_controller_saw_a_heartbeat_or_lease_renewal() -> None:
    record = health.observe(node(), lease("2026-01-01T00:00:00.000000Z"), None, at(5))
    assert record.probe_time == at(5)
    same = health.observe(node(), lease("2026-01-01T00:00:00.000000Z"), record, at(30))
    assert same.probe_time == at(5)
    renewed = health.observe(node(), lease("2026-01-01T00:00:10.000000Z"), same, at(31))
    assert renewed.probe_time == at(31)
    beat = health.observe(node(heartbeat="2026-01-01T00:05:00Z"), lease("2026-01-01T00:00:10.000000Z"),
                          renewed, at(40))
    assert beat.probe_time == at(40)


def test_grace_period_then_unknown_conditions_with_kubernetes_reasons() -> None:
    n = node()
    record = health.observe(n, None, None, at(0))
    assert not health.expired(record, n, at(50), 50, 60)
    assert health.expired(record, n, at(50.5), 50, 60)
    status = health.unknown_status(n, at(51))
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"] == {
        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
        "lastTransitionTime": "2026-01-01T00:00:51Z"}
    assert by_type["MemoryPressure"]["status"] == "Unknown"
    for never in ("DiskPressure", "PIDPressure"):
        assert by_type[never]["reason"] == "NodeStatusNeverUpdated"
        assert by_type[never]["message"] == "Kubelet never posted node status."
    assert "NetworkUnavailable" not in by_type


def test_a_node_that_never_posted_ready_gets_the_startup_grace_from_its_creation() -> None:
    n = node(ready=None)
    record = health.observe(n, None, None, at(30))
    assert record.probe_time == T0
    assert not health.expired(record, n, at(60), 50, 60) and health.expired(record, n, at(61), 50, 60)
    ready = next(c for c in health.unknown_status(n, at(61))["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusNeverUpdated")


@pytest.mark.parametrize(("ready", "unschedulable", "expected"), [
    pytest.param("True", False, set(), id="healthy"),
    pytest.param("False", False, {("node.kubernetes.io/not-ready", "NoSchedule"),
                                  ("node.kubernetes.io/not-ready", "NoExecute")}, id="not-ready"),
    pytest.param("Unknown", True, {("node.kubernetes.io/unreachable", "NoSchedule"),
                                   ("node.kubernetes.io/unreachable", "NoExecute"),
                                   ("node.kubernetes.io/unschedulable", "NoSchedule")}, id="unreachable-cordoned"),
])
def test_taints_follow_conditions(ready: str, unschedulable: bool, expected: set[tuple[str, str]]) -> None:
    n = node(ready, unschedulable=unschedulable)
    n["spec"]["taints"] = [{"key": "user", "effect": "NoExecute"}, {"key": "node.kubernetes.io/unreachable",
                                                                    "effect": "NoExecute", "timeAdded": "old"}]
    wanted = taints.desired_taints(n, at(0))
    assert {(t["key"], t["effect"]) for t in wanted} == expected | {("user", "NoExecute")}
    for t in wanted:
        if t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute":
            assert t["timeAdded"] == "old"
        if t["key"] == "node.kubernetes.io/not-ready" and t["effect"] == "NoExecute":
            assert t["timeAdded"] == "2026-01-01T00:00:00Z"


def test_a_node_without_ready_condition_gets_no_taint_yet() -> None:
    assert taints.desired_taints(node(ready=None), at(0)) == []


def test_memory_pressure_taint() -> None:
    n = node()
    n["status"]["conditions"][0]["status"] = "True"
    assert taints.no_schedule_taints(n) == [{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(("tolerations", "expected"), [
    pytest.param([], None, id="untolerated"),
    pytest.param([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                   "tolerationSeconds": 300},
                  {"operator": "Exists", "tolerationSeconds": 20}], 20.0, id="shortest-wins"),
    pytest.param([{"operator": "Exists"}], "forever", id="forever"),
    pytest.param([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"}], None,
                 id="wrong-effect"),
    pytest.param([{"key": "node.kubernetes.io/unreachable", "value": "x", "effect": "NoExecute"}], None,
                 id="equal-needs-value"),
])
def test_tolerations(tolerations: list[Obj], expected: Any) -> None:
    used = taints.matching_tolerations([UNREACHABLE], tolerations)
    if expected is None:
        assert used is None
    else:
        assert used is not None
        seconds = taints.min_toleration_seconds(used)
        assert (seconds if seconds is not None else "forever") == expected


def test_durations_and_config_defaults() -> None:
    assert parse_duration("50s") == 50 and parse_duration("1m30s") == 90 and parse_duration("2") == 2
    assert parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
    assert NodeLifecycleConfig() == NodeLifecycleConfig(50.0, 60.0, 5.0)
    assert NodeLifecycleConfig.from_options({"node_monitor_grace_period": 8}).node_monitor_grace_period == 8.0
