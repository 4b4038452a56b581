"""`kubectl get pods`: READY, STATUS, RESTARTS and the wide columns, as printPod derives them."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import printer_for
from tests.apiserver.tables.helpers import NOW, ago, by_name, meta


def running(name: str = "app", *, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(hours=1)}},
        **extra,
    }


def waiting(reason: str, name: str = "app", *, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
        **extra,
    }


def terminated(name: str = "app", *, exit_code: int = 0, reason: str = "", signal: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def last_terminated(minutes_ago: float) -> dict[str, Any]:
    return {"lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=minutes_ago)}}}


def pod(
    containers: int = 1,
    *,
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    reason: str = "",
    deleting: bool = False,
) -> dict[str, Any]:
    m = meta("web", age={"minutes": 30})
    if deleting:
        m["deletionTimestamp"] = ago(seconds=10)
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": statuses or [],
        "conditions": conditions or [],
    }
    if reason:
        status["reason"] = reason
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec, "status": status}


def cond(type_: str, status: str = "True", reason: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason}


SIDECAR = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
INIT = [{"name": "setup", "image": "busybox"}, {"name": "migrate", "image": "busybox"}]

CASES = [
    pytest.param(pod(statuses=[running()]), ("1/1", "Running", "0"), id="running-ready"),
    pytest.param(pod(phase="Pending"), ("0/1", "Pending", "0"), id="pending-no-statuses"),
    pytest.param(
        pod(phase="Pending", statuses=[waiting("ContainerCreating")]),
        ("0/1", "ContainerCreating", "0"),
        id="creating",
    ),
    pytest.param(
        pod(phase="Pending", statuses=[waiting("ErrImagePull")]),
        ("0/1", "ErrImagePull", "0"),
        id="image-pull",
    ),
    pytest.param(
        pod(statuses=[waiting("CrashLoopBackOff", restarts=5, **last_terminated(2))]),
        ("0/1", "CrashLoopBackOff", "5 (2m ago)"),
        id="crash-loop-with-last-restart",
    ),
    pytest.param(pod(statuses=[running(ready=False)]), ("0/1", "Running", "0"), id="running-not-ready"),
    pytest.param(
        pod(2, statuses=[running("c0"), running("c1", ready=False)]),
        ("1/2", "Running", "0"),
        id="one-of-two-ready",
    ),
    pytest.param(
        pod(phase="Succeeded", statuses=[terminated(reason="Completed")]),
        ("0/1", "Completed", "0"),
        id="completed",
    ),
    pytest.param(
        pod(phase="Failed", statuses=[terminated(exit_code=1, reason="Error")]),
        ("0/1", "Error", "0"),
        id="error",
    ),
    pytest.param(
        pod(phase="Failed", statuses=[terminated(exit_code=3)]), ("0/1", "ExitCode:3", "0"), id="exit-code"
    ),
    pytest.param(
        pod(phase="Failed", statuses=[terminated(exit_code=137, signal=9)]),
        ("0/1", "Signal:9", "0"),
        id="signal",
    ),
    pytest.param(
        pod(phase="Failed", statuses=[terminated(exit_code=137, reason="OOMKilled")]),
        ("0/1", "OOMKilled", "0"),
        id="oom",
    ),
    pytest.param(
        pod(2, statuses=[terminated("c0", reason="Error", exit_code=1), waiting("CrashLoopBackOff", "c1")]),
        ("0/2", "Error", "0"),
        id="first-container-reason-wins",
    ),
    pytest.param(
        pod(2, statuses=[terminated("c0", reason="Completed"), running("c1")], conditions=[cond("Ready")]),
        ("1/2", "Running", "0"),
        id="completed-but-one-running-and-ready",
    ),
    pytest.param(
        pod(
            2,
            statuses=[terminated("c0", reason="Completed"), running("c1")],
            conditions=[cond("Ready", "False")],
        ),
        ("1/2", "NotReady", "0"),
        id="completed-but-one-running-not-ready",
    ),
    pytest.param(pod(phase="Failed", reason="Evicted"), ("0/1", "Evicted", "0"), id="evicted-status-reason"),
    pytest.param(
        pod(phase="Pending", conditions=[cond("PodScheduled", "False", "SchedulingGated")]),
        ("0/1", "SchedulingGated", "0"),
        id="scheduling-gated",
    ),
    pytest.param(pod(statuses=[running()], deleting=True), ("1/1", "Terminating", "0"), id="terminating"),
    pytest.param(
        pod(phase="Succeeded", statuses=[terminated(reason="Completed")], deleting=True),
        ("0/1", "Completed", "0"),
        id="deleted-after-completion-keeps-status",
    ),
    pytest.param(
        pod(statuses=[running()], reason="NodeLost", deleting=True),
        ("1/1", "Unknown", "0"),
        id="node-lost-while-deleting",
    ),
    pytest.param(
        pod(
            phase="Pending",
            init=INIT,
            init_statuses=[waiting("PodInitializing", "setup"), waiting("", "migrate")],
        ),
        ("0/1", "Init:0/2", "0"),
        id="init-0-of-2",
    ),
    pytest.param(
        pod(phase="Pending", init=INIT, init_statuses=[terminated("setup"), running("migrate", ready=False)]),
        ("0/1", "Init:1/2", "0"),
        id="init-1-of-2",
    ),
    pytest.param(
        pod(
            phase="Pending",
            init=INIT,
            init_statuses=[waiting("CrashLoopBackOff", "setup", restarts=3, **last_terminated(1))],
            statuses=[waiting("PodInitializing", "c0")],
        ),
        ("0/1", "Init:CrashLoopBackOff", "3 (60s ago)"),
        id="init-crash-loop",
    ),
    pytest.param(
        pod(phase="Failed", init=INIT, init_statuses=[terminated("setup", exit_code=1, reason="Error")]),
        ("0/1", "Init:Error", "0"),
        id="init-error",
    ),
    pytest.param(
        pod(phase="Pending", init=INIT, init_statuses=[terminated("setup", exit_code=2)]),
        ("0/1", "Init:ExitCode:2", "0"),
        id="init-exit-code",
    ),
    pytest.param(
        pod(phase="Pending", init=INIT, init_statuses=[terminated("setup", exit_code=137, signal=9)]),
        ("0/1", "Init:Signal:9", "0"),
        id="init-signal",
    ),
    pytest.param(
        pod(
            init=[SIDECAR],
            init_statuses=[running("proxy", started=True)],
            statuses=[running("c0")],
            conditions=[cond("Initialized")],
        ),
        ("2/2", "Running", "0"),
        id="sidecar-counts-in-ready",
    ),
    pytest.param(
        pod(
            init=[SIDECAR],
            init_statuses=[running("proxy", restarts=2, started=True, **last_terminated(4))],
            statuses=[running("c0", restarts=1, **last_terminated(9))],
            conditions=[cond("Initialized")],
        ),
        ("2/2", "Running", "3 (4m ago)"),
        id="sidecar-restarts-add-up",
    ),
    pytest.param(
        pod(
            init=[{"name": "setup", "image": "busybox"}],
            init_statuses=[{**terminated("setup"), "restartCount": 4}],
            statuses=[running("c0", restarts=1)],
            conditions=[cond("Initialized")],
        ),
        ("1/1", "Running", "1"),
        id="finished-init-restarts-not-counted",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), CASES)
def test_pod_ready_status_restarts(obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    cells = printer_for("", "Pod").cells(obj, NOW)
    assert tuple(cells[1:4]) == expected
    assert cells[0] == "web" and cells[4] == "30m"


def test_pod_columns_match_kubernetes() -> None:
    assert by_name(printer_for("", "Pod").columns) == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]
    name = printer_for("", "Pod").columns[0]
    assert name["format"] == "name" and name["description"].startswith(
        "Name must be unique within a namespace."
    )


def test_pod_wide_cells() -> None:
    obj = pod(
        statuses=[running()],
        conditions=[cond("Ready"), cond("example.com/gate-a"), cond("example.com/gate-b", "False")],
    )
    obj["spec"]["nodeName"] = "node-1"
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/gate-a"},
        {"conditionType": "example.com/gate-b"},
    ]
    obj["status"]["podIPs"] = [{"ip": "10.244.0.7"}, {"ip": "fd00::7"}]
    obj["status"]["nominatedNodeName"] = "node-2"
    assert printer_for("", "Pod").cells(obj, NOW)[5:] == ["10.244.0.7", "node-1", "node-2", "1/2"]


def test_pod_wide_cells_default_to_none() -> None:
    assert printer_for("", "Pod").cells(pod(phase="Pending"), NOW)[5:] == ["<none>"] * 4


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        pytest.param(
            "Succeeded",
            [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "The pod has completed successfully.",
                }
            ],
            id="succeeded",
        ),
        pytest.param(
            "Failed",
            [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
            id="failed",
        ),
        pytest.param("Running", [], id="running"),
    ],
)
def test_pod_row_conditions_mark_finished_pods(phase: str, expected: list[dict[str, Any]]) -> None:
    assert printer_for("", "Pod").conditions(pod(phase=phase)) == expected
