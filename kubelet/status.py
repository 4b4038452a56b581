"""A pod's status as the process kubelet reports it, from what its pod worker knows.

Pure functions of the worker's records (one `ContainerRecord` per container of the
spec) and the time, shaped like the kubelet's status generator
(pkg/kubelet/kubelet_pods.go generateAPIPodStatus / getPhase, pkg/kubelet/status):

- a container's `state` is `running` (the current attempt runs), `waiting` (never
  started: ContainerCreating / PodInitializing, or blocked: ErrImagePull,
  ImagePullBackOff, CreateContainerConfigError, CrashLoopBackOff ...) or `terminated`
  (the current attempt exited and will not be restarted);
- `lastState` is the attempt before: the one that exited when a restart is pending or
  running; `restartCount` counts restarts;
- phase follows getPhase: Pending while init containers are not done or a container
  waits for its first start, Running while one runs (or restarts), and the terminal
  Succeeded/Failed by restartPolicy; a pod being deleted whose containers all stopped
  is Failed (or Succeeded if every one exited 0), as kubelets since 1.27 report;
- conditions come from the shared generator (`kubelet.fake.podstatus.conditions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubelet.fake.config import rfc3339
from kubelet.fake.podstatus import FAILED, RUNNING, SUCCEEDED, conditions
from kubelet.runtime.base import EXITED, ContainerState
from kubelet.runtime.base import RUNNING as STATE_RUNNING

Obj = dict[str, Any]
PENDING = "Pending"


@dataclass
class ContainerRecord:
    """What the worker knows of one container of the spec."""

    name: str
    init: bool = False
    sidecar: bool = False  # an init container with restartPolicy Always
    restart_count: int = 0
    current: ContainerState | None = None  # the newest attempt
    previous: ContainerState | None = None  # the attempt before it
    waiting: tuple[str, str] | None = None  # (reason, message) overriding the state
    image: str = ""  # normalised reference once resolved
    image_id: str = ""
    restart_pending: bool = False  # exited, will restart (back-off runs)
    ready: bool = False
    started: bool = False  # startup probe passed (or none)
    backoff_until: float | None = None  # monotonic time the next start may happen
    pull_failures: int = 0
    attempts_started: int = 0
    backoff_count: int = 0  # exits since the back-off was last reset
    backoff_delay: float = 0.0  # the delay armed at the last exit
    armed_for: str | None = None  # container id whose exit armed the back-off
    killing: str | None = None  # container id being stopped for a failed liveness probe

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.state == STATE_RUNNING

    @property
    def exited(self) -> bool:
        return self.current is not None and self.current.state == EXITED

    @property
    def succeeded(self) -> bool:
        return self.exited and self.current is not None and self.current.exit_code == 0


def _terminated(state: ContainerState) -> Obj:
    body: Obj = {"containerID": state.id, "exitCode": state.exit_code if state.exit_code is not None else 0,
                 "reason": state.reason or ("Completed" if state.exit_code == 0 else "Error")}
    if state.started_at is not None:
        body["startedAt"] = rfc3339(state.started_at)
    if state.finished_at is not None:
        body["finishedAt"] = rfc3339(state.finished_at)
    if state.message:
        body["message"] = state.message
    return {"terminated": body}


def container_status(spec_container: Obj, record: ContainerRecord, *, default_waiting: str) -> Obj:
    image = record.image or str(spec_container.get("image") or "")
    status: Obj = {"name": record.name, "image": image, "imageID": record.image_id, "restartCount": record.restart_count,
                   "ready": False, "started": False, "lastState": {}}
    current = record.current
    if current is not None:
        status["containerID"] = current.id
    if record.waiting is not None or (current is None):
        reason, message = record.waiting or (default_waiting, "")
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        status["state"] = {"waiting": waiting}
        if current is not None and current.state == EXITED:
            status["lastState"] = _terminated(current)
        elif record.previous is not None:
            status["lastState"] = _terminated(record.previous)
    elif current.state == STATE_RUNNING:
        status["state"] = {"running": {"startedAt": rfc3339(current.started_at) if current.started_at else None}}
        status["ready"] = record.ready
        status["started"] = record.started
        if record.previous is not None:
            status["lastState"] = _terminated(record.previous)
    else:
        status["state"] = _terminated(current)
        if record.init and not record.sidecar and current.exit_code == 0:
            status["ready"] = True  # a completed init container counts as ready
        if record.previous is not None:
            status["lastState"] = _terminated(record.previous)
    mounts = [{"name": m.get("name"), "mountPath": m.get("mountPath"),
               **({"readOnly": True, "recursiveReadOnly": "Disabled"} if m.get("readOnly") else {})}
              for m in spec_container.get("volumeMounts") or []]
    if mounts:
        status["volumeMounts"] = mounts
    return status


def phase(spec: Obj, records: dict[str, ContainerRecord], *, init_done: bool, init_failed: bool,
          deleting: bool) -> str:
    """getPhase over the app containers (plus the deletion rule)."""
    policy = spec.get("restartPolicy") or "Always"
    if init_failed:
        return FAILED
    apps = [records[c["name"]] for c in spec.get("containers") or [] if c["name"] in records]
    if not init_done:
        return PENDING
    running = waiting = stopped = succeeded = 0
    for record in apps:
        if record.running and record.waiting is None:
            running += 1
        elif record.exited:
            stopped += 1
            if record.succeeded:
                succeeded += 1
        elif record.waiting is not None and record.previous is not None:
            stopped += 1
        else:
            waiting += 1
    if deleting and running == 0 and waiting == 0 and stopped:
        return SUCCEEDED if succeeded == stopped else FAILED
    if waiting > 0:
        return PENDING
    if running > 0:
        return RUNNING
    if stopped > 0:
        if policy == "Always":
            return RUNNING
        if succeeded == stopped:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


@dataclass
class PodView:
    """Everything the status needs besides the records."""

    host_ip: str
    pod_ip: str | None
    sandbox_ready: bool
    started_at: datetime | None
    init_done: bool
    init_failed: bool = False
    deleting: bool = False
    uninitialized: list[str] = field(default_factory=list)
    pod_message: tuple[str, str] | None = None  # (reason, message) at pod level


def pod_status(pod: Obj, records: dict[str, ContainerRecord], view: PodView, now: datetime) -> Obj:
    spec = pod.get("spec") or {}
    inits = [container_status(c, records[c["name"]], default_waiting="PodInitializing")
             for c in spec.get("initContainers") or [] if c["name"] in records]
    app_waiting = "PodInitializing" if not view.init_done else "ContainerCreating"
    if not view.init_done and not spec.get("initContainers"):
        app_waiting = "ContainerCreating"
    apps = [container_status(c, records[c["name"]], default_waiting=app_waiting)
            for c in spec.get("containers") or [] if c["name"] in records]
    pod_phase = phase(spec, records, init_done=view.init_done, init_failed=view.init_failed, deleting=view.deleting)
    sidecars = [s for s, c in zip(inits, spec.get("initContainers") or [], strict=False)
                if c.get("restartPolicy") == "Always"]
    status: Obj = {
        "phase": pod_phase,
        "conditions": conditions(pod, pod_phase, sidecars + apps, now, sandbox_ready=view.sandbox_ready,
                                 uninitialized=view.uninitialized),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "containerStatuses": apps,
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    start = (pod.get("status") or {}).get("startTime")
    if start or view.started_at is not None:
        status["startTime"] = start or rfc3339(view.started_at)  # type: ignore[arg-type]
    if inits:
        status["initContainerStatuses"] = inits
    if view.pod_message is not None:
        status["reason"], status["message"] = view.pod_message
    qos = (pod.get("status") or {}).get("qosClass")
    if qos:
        status["qosClass"] = qos
    return status
