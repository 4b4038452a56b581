"""The status a fake node writes for a pod, as a pure function of (pod, plan, time).

A pod's life on a fake node, decided once from its spec when it starts (`PodPlan`):

- it starts at once: phase Running, hostIP/podIP, startTime, init containers
  terminated Completed, containers running;
- each container is ready at start, or, with a readinessProbe, once its
  initialDelaySeconds have passed;
- pods that run to completion (restartPolicy Never or OnFailure, or owned by a Job)
  finish `run_seconds` after start (annotation mkp.dev/fake-run-seconds overrides) with
  exit code 0 -> Succeeded, or the code in mkp.dev/fake-exit-code -> Failed (reason
  Error) — except that with restartPolicy OnFailure a failing container is restarted
  in place as the kubelet does (first restart at once, then after a back-off of 10 s
  doubling to 5 min, state waiting CrashLoopBackOff meanwhile, restartCount and
  lastState kept), so the pod stays Running; other pods run until deleted, unless
  mkp.dev/fake-exit-code is non-zero: then their containers fail after `run_seconds`
  and are restarted the same way (the CrashLoopBackOff of a restartPolicy Always pod).

Conditions follow the kubelet's status generator (pkg/kubelet/status/generate.go):
conditions owned by others first and kept, then PodReadyToStartContainers, Initialized,
Ready, ContainersReady, PodScheduled, with the kubelet's reasons (ContainersNotReady,
ReadinessGatesNotReady, PodCompleted, PodFailed) and messages; lastTransitionTime only
moves when a condition's status does.

`state_key` reduces a status to what matters for deciding whether to write, so a
reconcile compares "what should be" with "what is" without timestamps getting in the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubelet.fake import containers
from kubelet.fake.config import EXIT_CODE_ANNOTATION, RUN_SECONDS_ANNOTATION, rfc3339

Obj = dict[str, Any]
RUNNING, SUCCEEDED, FAILED = "Running", "Succeeded", "Failed"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 300.0  # the kubelet's container restart back-off (seconds)
TERMINAL = (SUCCEEDED, FAILED)
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
KILLED_EXIT_CODE = 143  # 128 + SIGTERM: how a fake container ends when its pod is deleted


@dataclass(frozen=True)
class Attempt:
    """One run of a restarting pod's containers (restartPolicy OnFailure or Always, failing)."""

    index: int  # 0 for the first run: also the container's restartCount while it runs
    start: datetime
    end: datetime
    next_start: datetime  # when the kubelet's back-off lets the next run start
    previous: tuple[datetime, datetime] | None  # the run before (for lastState)


def restart_backoff(restarts: int) -> float:
    """Seconds the kubelet waits before restart number `restarts + 1`: the first restart
    is immediate, then 10 s doubling up to 5 minutes (CrashLoopBackOff)."""
    return 0.0 if restarts == 0 else min(BACKOFF_BASE * 2 ** (restarts - 1), BACKOFF_MAX)


@dataclass(frozen=True)
class PodPlan:
    """When things happen to one pod: start, readiness per container, and the end."""

    started: datetime
    ready_at: dict[str, datetime]  # regular containers and sidecars
    finish_at: datetime | None  # None: runs until deleted (or restarts forever)
    exit_code: int = 0
    run_seconds: float = 0.0
    restarts: bool = False  # OnFailure/Always with a failing exit code: containers restart in place

    def ready(self, now: datetime) -> dict[str, bool]:
        if self.restarts:
            attempt = self.attempt(now)
            running = attempt.start <= now < attempt.end
            offset = attempt.start - self.started
            return {name: running and now >= at + offset for name, at in self.ready_at.items()}
        return {name: now >= at for name, at in self.ready_at.items()}

    def finished(self, now: datetime) -> bool:
        return self.finish_at is not None and now >= self.finish_at

    def attempt(self, now: datetime) -> Attempt:
        """The run that `now` falls in (or the back-off after it)."""
        start, previous, index = self.started, None, 0
        run = timedelta(seconds=self.run_seconds)
        while True:
            end = start + run
            next_start = end + timedelta(seconds=restart_backoff(index))
            if now < next_start:
                return Attempt(index, start, end, next_start, previous)
            start, previous, index = next_start, (start, end), index + 1

    def next_due(self, now: datetime) -> float | None:
        """Seconds until the next planned change (None if nothing is planned)."""
        times = [t for t in (*self.ready_at.values(), self.finish_at) if t is not None and t > now]
        if self.restarts:
            attempt = self.attempt(now)
            offset = attempt.start - self.started
            times = [t + offset for t in self.ready_at.values() if t + offset > now]
            times += [t for t in (attempt.end, attempt.next_start) if t > now]
        return (min(times) - now).total_seconds() if times else None


def _annotation(pod: Obj, name: str) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(name)


def runs_to_completion(pod: Obj) -> bool:
    """Job pods and pods whose restartPolicy lets them end."""
    if (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure"):
        return True
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Job" and str(r.get("apiVersion", "")).startswith("batch/") for r in refs)


def run_seconds(pod: Obj, default: float) -> float:
    value = _annotation(pod, RUN_SECONDS_ANNOTATION)
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


def exit_code(pod: Obj) -> int:
    value = _annotation(pod, EXIT_CODE_ANNOTATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _readiness_delay(container: Obj) -> float:
    probe = container.get("readinessProbe")
    return float(probe.get("initialDelaySeconds") or 0) if isinstance(probe, dict) else 0.0


def plan(pod: Obj, started: datetime, *, default_run_seconds: float) -> PodPlan:
    spec = pod.get("spec") or {}
    probed = [c for c in spec.get("initContainers") or [] if containers.is_sidecar(c)]
    probed += list(spec.get("containers") or [])
    ready_at = {c["name"]: started + timedelta(seconds=_readiness_delay(c)) for c in probed}
    finish_at = None
    seconds = run_seconds(pod, default_run_seconds)
    code = exit_code(pod)
    # A failing container of an OnFailure or Always pod is restarted in place (CrashLoopBackOff);
    # Always pods without an exit code run until deleted.
    restarts = code != 0 and spec.get("restartPolicy", "Always") in ("OnFailure", "Always")
    if runs_to_completion(pod) and not restarts:
        finish_at = started + timedelta(seconds=seconds)
    return PodPlan(started, ready_at, finish_at, code, seconds, restarts)


# -- conditions ---------------------------------------------------------------------------


def _condition(ctype: str, status: str, reason: str | None = None, message: str | None = None) -> Obj:
    condition: Obj = {"type": ctype, "status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _go_list(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"  # Go's %s of a []string


def _containers_ready(phase: str, statuses: list[Obj]) -> Obj:
    if phase == SUCCEEDED:
        return _condition("ContainersReady", "False", "PodCompleted")
    if phase == FAILED:
        return _condition("ContainersReady", "False", "PodFailed")
    unready = [s["name"] for s in statuses if not s.get("ready")]
    if unready:
        return _condition("ContainersReady", "False", "ContainersNotReady",
                          f"containers with unready status: {_go_list(unready)}")
    return _condition("ContainersReady", "True")


def _pod_ready(spec: Obj, others: list[Obj], containers_ready: Obj) -> Obj:
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    by_type = {c.get("type"): c for c in others}
    problems = []
    for gate in spec.get("readinessGates") or []:
        ctype = gate.get("conditionType")
        found = by_type.get(ctype)
        if found is None:
            problems.append(f'corresponding condition of pod readiness gate "{ctype}" does not exist.')
        elif found.get("status") != "True":
            problems.append(f'the status of pod readiness gate "{ctype}" is not "True", but {found.get("status")}')
    if problems:
        return _condition("Ready", "False", "ReadinessGatesNotReady", ", ".join(problems))
    return _condition("Ready", "True")


def conditions(pod: Obj, phase: str, statuses: list[Obj], now: datetime, *, sandbox_ready: bool | None = None,
               uninitialized: list[str] | None = None) -> list[Obj]:
    """Others' conditions (kept), then the kubelet's five, with transition times.
    `sandbox_ready` (default: not terminal) and `uninitialized` (init containers not
    done yet; default none) are what the process kubelet knows and a fake node assumes."""
    previous = (pod.get("status") or {}).get("conditions") or []
    others = [c for c in previous if c.get("type") not in KUBELET_CONDITIONS]
    containers_ready = _containers_ready(phase, statuses)
    if sandbox_ready is None:
        sandbox_ready = phase not in TERMINAL
    if uninitialized:
        initialized = _condition("Initialized", "False", "ContainersNotInitialized",
                                 f"containers with incomplete status: {_go_list(uninitialized)}")
    else:
        initialized = _condition("Initialized", "True", "PodCompleted" if phase == SUCCEEDED else None)
    ours = [
        _condition("PodReadyToStartContainers", "True" if sandbox_ready else "False"),
        initialized,
        _pod_ready(pod.get("spec") or {}, others, containers_ready),
        containers_ready,
        _condition("PodScheduled", "True"),
    ]
    before = {c.get("type"): c for c in previous}
    stamp = rfc3339(now)
    for condition in ours:
        old = before.get(condition["type"]) or {}
        same = old.get("status") == condition["status"] and old.get("lastTransitionTime")
        condition["lastTransitionTime"] = old["lastTransitionTime"] if same else stamp
    return others + ours


# -- the status ---------------------------------------------------------------------------


def desired_status(pod: Obj, pod_plan: PodPlan, now: datetime, *, host_ip: str, pod_ip: str,
                   allow_finish: bool = True, killed: bool = False) -> Obj:
    """The status the pod should have at `now`. `allow_finish=False` keeps a finished
    pod Running (its first write always shows it running); `killed` ends every
    container as a deletion does."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    uid = str(meta.get("uid") or "")
    finished: datetime | None = None
    code = pod_plan.exit_code
    if killed:
        finished, code = now, KILLED_EXIT_CODE
    elif allow_finish and pod_plan.finished(now):
        finished = pod_plan.finish_at
    ready = pod_plan.ready(now)
    if pod_plan.restarts and not killed:
        apps = _restarting_statuses(pod, pod_plan, now, ready)
    else:
        apps = containers.app_statuses(uid, spec, pod_plan.started, ready=ready, finished=finished, exit_code=code)
    inits = containers.init_statuses(uid, spec, pod_plan.started, ready=ready, finished=finished,
                                     exit_code=KILLED_EXIT_CODE if killed else 0)
    phase = RUNNING if finished is None else SUCCEEDED if code == 0 else FAILED
    sidecars = [s for s, c in zip(inits, spec.get("initContainers") or [], strict=False) if containers.is_sidecar(c)]
    status: Obj = {
        "phase": phase,
        "conditions": conditions(pod, phase, sidecars + apps, now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": (pod.get("status") or {}).get("startTime") or rfc3339(pod_plan.started),
        "containerStatuses": apps,
    }
    if inits:
        status["initContainerStatuses"] = inits
    return status


def _restarting_statuses(pod: Obj, pod_plan: PodPlan, now: datetime, ready: dict[str, bool]) -> list[Obj]:
    """Containers of an OnFailure or Always pod whose runs fail: each run ends with the exit code,
    the kubelet restarts it in place after its back-off (state waiting CrashLoopBackOff
    meanwhile), restartCount counts the restarts and lastState shows the run before."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    uid = str(meta.get("uid") or "")
    attempt = pod_plan.attempt(now)
    code = pod_plan.exit_code
    result = []
    for container in spec.get("containers") or []:
        name = container["name"]
        if now < attempt.end:
            status = containers.running(uid, container, attempt.start, ready=ready.get(name, False))
            last = attempt.previous
            restarts = attempt.index
        else:
            status = containers.terminated(uid, container, attempt.start, attempt.end, code)
            last = (attempt.start, attempt.end)
            restarts = attempt.index
            if attempt.next_start > attempt.end:  # the back-off: waiting, not terminated
                backoff = int(round((attempt.next_start - attempt.end).total_seconds()))
                status["state"] = {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {go_duration(backoff)} restarting failed container={name} "
                               f"pod={meta.get('name')}_{meta.get('namespace')}({uid})"}}
        status["restartCount"] = restarts
        if last is not None:
            previous = containers.terminated(uid, container, last[0], last[1], code)["state"]
            status["lastState"] = previous
        result.append(status)
    return result


def go_duration(seconds: int) -> str:
    """Go's time.Duration String() for whole seconds: 10s, 1m20s, 5m0s."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def _container_key(statuses: list[Obj] | None) -> tuple[Any, ...]:
    keys = []
    for s in statuses or []:
        state = s.get("state") or {}
        kind = next(iter(state), "")
        keys.append((s.get("name"), bool(s.get("ready")), kind, (state.get("terminated") or {}).get("exitCode"),
                     s.get("restartCount", 0), tuple(sorted((state.get("waiting") or {}).items()))))
    return tuple(keys)


def state_key(status: Obj | None) -> tuple[Any, ...]:
    """What a status says, without timestamps: equal keys mean no write is needed."""
    status = status or {}
    conds = tuple((c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
                  if c.get("type") in KUBELET_CONDITIONS)
    return (status.get("phase"), status.get("hostIP"), status.get("podIP"),
            _container_key(status.get("containerStatuses")), _container_key(status.get("initContainerStatuses")),
            tuple(sorted(conds, key=lambda c: str(c[0]))))


def is_started(pod: Obj) -> bool:
    """Has a node already started this pod (it has a startTime and a podIP)?"""
    status = pod.get("status") or {}
    return bool(status.get("startTime") and status.get("podIP"))


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


def status_patch(pod: Obj, desired: Obj) -> Obj:
    """The strategic merge patch for pods/<name>/status. Like the kubelet's, it carries
    the pod's uid (so it cannot land on a namesake created meanwhile) and the order of
    the conditions."""
    order = [{"type": c["type"]} for c in desired["conditions"]]
    # Conditions merge by type: a reason or message that no longer applies must be
    # deleted explicitly (null), or the old one would stay beside the new status.
    conds = [{"reason": None, "message": None, **c} if c["type"] in KUBELET_CONDITIONS else c
             for c in desired["conditions"]]
    uid = (pod.get("metadata") or {}).get("uid")
    return {"metadata": {"uid": uid},
            "status": {"$setElementOrder/conditions": order, **desired, "conditions": conds}}
