"""`ProbeManager`: the probes of every running container on the node, and their results.

The pod worker tells the manager when a container attempt starts (`add`) and when it is
gone (`remove`, `remove_pod`); the manager runs one asyncio task per declared probe and
keeps the latest result per container and probe type, as the kubelet's prober manager
and results managers do. The pod worker reads the results when it computes status:

- `started(id)`: startupProbe succeeded (true at once without a startup probe);
- `ready(id)`: started, and readinessProbe succeeded (true at once without one). A
  container with a readiness probe starts not ready. Asking while it is not ready
  triggers an early readiness run, as the kubelet's status update does;
- `liveness_failed(id)` / `startup_failed(id)`: the container must be killed and
  restarted; `kill_reason(id)` says why, for the `Killing` event.

`on_change(pod_uid)` is called whenever a result flips, so the pod worker re-syncs
(status, or a restart). Counters of probe runs by result, the kubelet's
`prober_probe_total`, are kept for the node's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubelet.probes.prober import Prober, Target
from kubelet.probes.spec import FAILURE, LIVENESS, READINESS, STARTUP, SUCCESS, UNKNOWN, ProbeSpec, probes_of
from kubelet.probes.worker import ProbeWorker
from minikube_py.client.clock import Clock, RealClock

log = logging.getLogger("kubelet.probes")

# A new container's result before its probe has decided (the kubelet's initialValue).
INITIAL = {LIVENESS: SUCCESS, READINESS: FAILURE, STARTUP: UNKNOWN}
# prober_probe_total's result label.
_RESULT_LABEL = {SUCCESS: "successful", FAILURE: "failed"}
_PROBE_FIELDS = ("livenessProbe", "readinessProbe", "startupProbe")


@dataclass(frozen=True)
class KillReason:
    """Why the pod worker must kill a container (event `Killing`)."""

    probe: str  # LIVENESS or STARTUP
    container: str
    grace_period: int | None  # the probe's terminationGracePeriodSeconds, if set

    @property
    def message(self) -> str:
        return f"Container {self.container} failed {self.probe.lower()} probe"

    def event_message(self, *, restart: bool = True) -> str:
        """`Container app failed liveness probe, will be restarted`."""
        return f"{self.message}, will be restarted" if restart else self.message


@dataclass
class _Container:
    pod_uid: str
    name: str
    target: Target
    specs: dict[str, ProbeSpec]
    workers: dict[str, ProbeWorker]


class ProbeManager:
    def __init__(self, *, runtime: Any, recorder: Any, clock: Clock | None = None,
                 on_change: Callable[[str], Any] | None = None) -> None:
        self.clock = clock or RealClock()
        self.prober = Prober(runtime, recorder)
        self.on_change = on_change
        self._start = self.clock.monotonic()
        self._containers: dict[str, _Container] = {}
        self._results: dict[tuple[str, str], str] = {}
        self._stopping: set[asyncio.Task[Any]] = set()
        self._counts: Counter[tuple[str, ...]] = Counter()

    # -- lifecycle of containers ----------------------------------------------------------

    def add(self, pod: Mapping[str, Any], container_name: str, container_id: str,
            started_at: datetime | None, pod_ip: str | None) -> None:
        """Start probing a running container attempt. Idempotent for the same id (the pod
        object and IP are refreshed); a new id for the same container replaces the old."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        known = self._containers.get(container_id)
        if known is not None:
            known.target.pod = pod
            known.target.pod_ip = pod_ip or known.target.pod_ip
            return
        for other_id, other in list(self._containers.items()):
            if other.pod_uid == uid and other.name == container_name:
                self.remove(other_id)
        container, field_path = _find_container(pod, container_name)
        target = Target(pod, container, container_id, pod_ip or "", field_path)
        entry = _Container(uid, container_name, target, probes_of(container), {})
        self._containers[container_id] = entry
        started_at = started_at or self.clock.now()
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=UTC)  # the runtime's times are UTC
        uptime = self.clock.monotonic() - self._start
        for kind, spec in entry.specs.items():
            self._results[(container_id, kind)] = INITIAL[kind]
            worker = ProbeWorker(
                spec=spec, target=target, started_at=started_at, prober=self.prober, clock=self.clock,
                jitter=spec.period > uptime,  # right after the kubelet starts: spread first runs
                is_started=lambda cid=container_id: self.started(cid),
                set_result=lambda result, cid=container_id, k=kind: self._set(cid, k, result),
                count=lambda result, k=kind, t=target: self._count(k, t, result))
            entry.workers[kind] = worker
            worker.start()

    def update_pod(self, pod: Mapping[str, Any]) -> None:
        """A newer version of a pod (say with deletionTimestamp set) for its workers."""
        uid = (pod.get("metadata") or {}).get("uid")
        for entry in self._containers.values():
            if entry.pod_uid == uid:
                entry.target.pod = pod

    def remove(self, container_id: str) -> None:
        """Stop probing a container (it exited or was removed) and forget its results."""
        entry = self._containers.pop(container_id, None)
        for kind in INITIAL:
            self._results.pop((container_id, kind), None)
        if entry is None:
            return
        for worker in entry.workers.values():
            if worker.task is not None and not worker.task.done():
                worker.task.cancel()
                self._stopping.add(worker.task)
                worker.task.add_done_callback(self._stopping.discard)

    def remove_pod(self, uid: str) -> None:
        """Stop probing every container of a pod, and drop its probe counters."""
        for container_id in [cid for cid, e in self._containers.items() if e.pod_uid == uid]:
            self.remove(container_id)
        for key in [k for k in self._counts if k[4] == uid]:
            del self._counts[key]

    async def close(self) -> None:
        """Stop every worker and wait for them."""
        for container_id in list(self._containers):
            self.remove(container_id)
        tasks = list(self._stopping)
        if tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- results --------------------------------------------------------------------------

    def started(self, container_id: str) -> bool:
        entry = self._containers.get(container_id)
        if entry is None:
            return False
        return STARTUP not in entry.workers or self._results.get((container_id, STARTUP)) == SUCCESS

    def ready(self, container_id: str) -> bool:
        entry = self._containers.get(container_id)
        if entry is None or not self.started(container_id):
            return False
        worker = entry.workers.get(READINESS)
        if worker is None or self._results.get((container_id, READINESS)) == SUCCESS:
            return True
        worker.trigger()
        return False

    def liveness_failed(self, container_id: str) -> bool:
        return self._results.get((container_id, LIVENESS)) == FAILURE

    def startup_failed(self, container_id: str) -> bool:
        return self._results.get((container_id, STARTUP)) == FAILURE

    def kill_reason(self, container_id: str) -> KillReason | None:
        """Why the container must be restarted, if a liveness or startup probe says so."""
        entry = self._containers.get(container_id)
        if entry is None:
            return None
        for kind in (LIVENESS, STARTUP):
            if self._results.get((container_id, kind)) == FAILURE:
                return KillReason(kind, entry.name, entry.specs[kind].termination_grace_period)
        return None

    def probe_counts(self) -> dict[tuple[str, ...], int]:
        """prober_probe_total: (probe_type, result, namespace, pod, pod_uid, container) -> runs."""
        return dict(self._counts)

    def _set(self, container_id: str, kind: str, result: str) -> None:
        entry = self._containers.get(container_id)
        if entry is None:
            return
        previous = self._results.get((container_id, kind))
        self._results[(container_id, kind)] = result
        if previous != result and self.on_change is not None:
            try:
                outcome = self.on_change(entry.pod_uid)
                if inspect.isawaitable(outcome):
                    asyncio.ensure_future(outcome)
            except Exception:  # noqa: BLE001 - a broken listener must not stop probing
                log.exception("on_change for pod %s failed", entry.pod_uid)

    def _count(self, kind: str, target: Target, result: str) -> None:
        meta = target.pod.get("metadata") or {}
        self._counts[(kind, _RESULT_LABEL.get(result, "unknown"), str(meta.get("namespace") or ""),
                      str(meta.get("name") or ""), str(meta.get("uid") or ""),
                      str(target.container.get("name") or ""))] += 1


def _find_container(pod: Mapping[str, Any], name: str) -> tuple[Mapping[str, Any], str]:
    """The container spec and its event field path; init containers are probed only as
    sidecars (restartPolicy Always)."""
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or []:
        if container.get("name") == name:
            return container, f"spec.containers{{{name}}}"
    for container in spec.get("initContainers") or []:
        if container.get("name") == name:
            if container.get("restartPolicy") != "Always":
                container = {k: v for k, v in container.items() if k not in _PROBE_FIELDS}
            return container, f"spec.initContainers{{{name}}}"
    meta = pod.get("metadata") or {}
    raise ValueError(f"pod {meta.get('namespace')}/{meta.get('name')} has no container {name!r}")
