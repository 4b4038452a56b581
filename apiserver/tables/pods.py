"""The Pod printer: READY, STATUS, RESTARTS as `kubectl get pods` shows them.

A port of Kubernetes' `printPod`, whose STATUS is not a field but a derivation, in this
order: the phase (or `status.reason`); SchedulingGated from the PodScheduled condition;
"Init:<reason>", "Init:ExitCode:N", "Init:Signal:N" or "Init:i/n" while init
containers run (sidecars, i.e. restartable init containers, count as started once
`started` is true); then the waiting/terminated reason of the *first* regular container
that has one (the list is walked backwards, so the first one wins), "Completed" turned
back into Running/NotReady while a container still runs; finally "Terminating" or, for
a node-lost pod, "Unknown", once a deletionTimestamp is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apiserver.tables.cells import NONE, condition_true, get, items, meta
from apiserver.tables.duration import parse_time, since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column

NODE_LOST = "NodeLost"  # node.NodeUnreachablePodReason


@dataclass
class _PodState:
    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    last_sidecar_restart: datetime | None = None
    initializing: bool = False
    sidecars: set[str] = field(default_factory=set)


def _later(current: datetime | None, status: dict[str, Any]) -> datetime | None:
    """The later of `current` and the container's last termination time."""
    finished = get(status, "lastState", "terminated")
    if not isinstance(finished, dict):
        return current
    t = parse_time(finished.get("finishedAt"))
    if t is None:
        return current
    return t if current is None or current < t else current


def _init_reason(status: dict[str, Any], index: int, count: int) -> str | None:
    """The STATUS an init container imposes, or None if it let the pod move on."""
    terminated = get(status, "state", "terminated")
    waiting = get(status, "state", "waiting")
    if isinstance(terminated, dict) and terminated.get("exitCode", 0) == 0:
        return None
    if isinstance(terminated, dict):
        if terminated.get("reason"):
            return "Init:" + terminated["reason"]
        if terminated.get("signal", 0):
            return f"Init:Signal:{terminated['signal']}"
        return f"Init:ExitCode:{terminated.get('exitCode', 0)}"
    if isinstance(waiting, dict) and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + waiting["reason"]
    return f"Init:{index}/{count}"


def _walk_init_containers(pod: dict[str, Any], st: _PodState) -> None:
    count = len(items(pod, "spec", "initContainers"))
    for i, status in enumerate(items(pod, "status", "initContainerStatuses")):
        st.restarts += status.get("restartCount", 0)
        st.last_restart = _later(st.last_restart, status)
        sidecar = status.get("name") in st.sidecars
        if sidecar:
            st.sidecar_restarts += status.get("restartCount", 0)
            st.last_sidecar_restart = _later(st.last_sidecar_restart, status)
        terminated = get(status, "state", "terminated")
        if isinstance(terminated, dict) and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and status.get("started") is True:
            st.ready += 1 if status.get("ready") else 0
            continue
        st.reason = _init_reason(status, i, count) or st.reason
        st.initializing = True
        break


def _container_reason(status: dict[str, Any]) -> str | None:
    waiting = get(status, "state", "waiting")
    terminated = get(status, "state", "terminated")
    if isinstance(waiting, dict) and waiting.get("reason"):
        return waiting["reason"]
    if isinstance(terminated, dict):
        if terminated.get("reason"):
            return terminated["reason"]
        if terminated.get("signal", 0):
            return f"Signal:{terminated['signal']}"
        return f"ExitCode:{terminated.get('exitCode', 0)}"
    return None


def _walk_containers(pod: dict[str, Any], st: _PodState) -> None:
    st.restarts, st.last_restart = st.sidecar_restarts, st.last_sidecar_restart
    has_running = False
    for status in reversed(items(pod, "status", "containerStatuses")):
        st.restarts += status.get("restartCount", 0)
        st.last_restart = _later(st.last_restart, status)
        reason = _container_reason(status)
        if reason is not None:
            st.reason = reason
        elif status.get("ready") and isinstance(get(status, "state", "running"), dict):
            has_running = True
            st.ready += 1
    if st.reason == "Completed" and has_running:
        ready = condition_true(items(pod, "status", "conditions"), "Ready")
        st.reason = "Running" if ready else "NotReady"


def pod_state(pod: dict[str, Any]) -> _PodState:
    """READY counts, STATUS reason and restarts of a pod, as printPod derives them."""
    phase = get(pod, "status", "phase", default="")
    st = _PodState(reason=get(pod, "status", "reason") or phase)
    conditions = items(pod, "status", "conditions")
    for c in conditions:
        if isinstance(c, dict) and c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            st.reason = "SchedulingGated"
    st.total = len(items(pod, "spec", "containers"))
    for c in items(pod, "spec", "initContainers"):
        if isinstance(c, dict) and c.get("restartPolicy") == "Always":
            st.sidecars.add(c.get("name", ""))
            st.total += 1
    _walk_init_containers(pod, st)
    if not st.initializing or condition_true(conditions, "Initialized"):
        _walk_containers(pod, st)
    if meta(pod).get("deletionTimestamp"):
        if get(pod, "status", "reason") == NODE_LOST:
            st.reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            st.reason = "Terminating"
    return st


def _readiness_gates(pod: dict[str, Any]) -> str:
    gates = items(pod, "spec", "readinessGates")
    if not gates:
        return NONE
    conditions = [c for c in items(pod, "status", "conditions") if isinstance(c, dict)]
    true_count = 0
    for gate in gates:
        for c in conditions:
            if c.get("type") == gate.get("conditionType"):
                true_count += c.get("status") == "True"
                break
    return f"{true_count}/{len(gates)}"


def _pod_ip(pod: dict[str, Any]) -> str:
    # v1 -> internal conversion: status.podIP is authoritative, else podIPs[0]
    return get(pod, "status", "podIP") or get(pod, "status", "podIPs", 0, "ip") or NONE


def _pod_cells(pod: dict[str, Any], now: datetime) -> list[Any]:
    st = pod_state(pod)
    restarts = str(st.restarts)
    if st.restarts != 0 and st.last_restart is not None:
        restarts = f"{st.restarts} ({since(st.last_restart.isoformat(), now)} ago)"
    m = meta(pod)
    return [
        m.get("name", ""),
        f"{st.ready}/{st.total}",
        st.reason,
        restarts,
        since(m.get("creationTimestamp"), now),
        _pod_ip(pod),
        get(pod, "spec", "nodeName") or NONE,
        get(pod, "status", "nominatedNodeName") or NONE,
        _readiness_gates(pod),
    ]


def _pod_conditions(pod: dict[str, Any]) -> list[dict[str, Any]]:
    phase = get(pod, "status", "phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


def pod_printer() -> Printer:
    columns = [
        name_column(),
        column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "string", "The aggregate status of the containers in this pod."),
        column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted.",
        ),
        age_column(),
        column("IP", "string", doc("core.v1.PodStatus", "podIP"), priority=1),
        column("Node", "string", doc("core.v1.PodSpec", "nodeName"), priority=1),
        column("Nominated Node", "string", doc("core.v1.PodStatus", "nominatedNodeName"), priority=1),
        column("Readiness Gates", "string", doc("core.v1.PodSpec", "readinessGates"), priority=1),
    ]
    return Printer(columns, _pod_cells, conditions=_pod_conditions)
