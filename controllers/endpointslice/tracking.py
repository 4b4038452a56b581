"""Shared by the EndpointSlice and Endpoints controllers: which Services a pod event
concerns, and the `endpoints.kubernetes.io/last-change-trigger-time` bookkeeping.

The trigger time (Kubernetes' TriggerTimeTracker) is the earliest change not yet
published for a Service: the Ready condition's lastTransitionTime of every pod that is
new or changed since the last sync, and the Service's creationTimestamp on its first
sync. A sync that saw no such change has none, and an object written then carries no
annotation (as Kubernetes: it only ever stamps the change being published).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import objects, pods
from controllers.endpointslice.podendpoints import selects
from minikube_py.client import DeletedFinalStateUnknown, Lister, WorkQueue, key_of

Obj = dict[str, Any]


def services_selecting(services: Lister, *pod_objs: Obj | DeletedFinalStateUnknown) -> set[str]:
    """Keys of the Services (with selectors) that select any of `pod_objs` (old and new)."""
    keys: set[str] = set()
    for obj in pod_objs:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for service in services.list(objects.namespace(pod) or None):
            if selects(service, pod):
                keys.add(key_of(service))
    return keys


def enqueue_all(queue: WorkQueue[str], keys: Iterable[str]) -> None:
    for key in keys:
        queue.add(key)


def pod_trigger_time(pod: Obj) -> datetime | None:
    """getPodTriggerTime: when the pod's Ready condition last changed (None without one)."""
    condition = pods.ready_condition(pod)
    return objects.parse_time((condition or {}).get("lastTransitionTime"))


@dataclass
class _Seen:
    service_time: datetime | None
    pod_times: dict[str, datetime | None] = field(default_factory=dict)


class TriggerTimeTracker:
    """ComputeEndpointLastChangeTriggerTime, per Service key (see the module docstring)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def compute(self, key: str, service: Obj, pod_objs: Iterable[Obj]) -> datetime | None:
        previous = self._seen.get(key)
        service_time = objects.parse_time(objects.metadata(service).get("creationTimestamp"))
        current = _Seen(service_time, {objects.key(p): pod_trigger_time(p) for p in pod_objs})
        changed: list[datetime | None] = []
        if previous is None or previous.service_time != service_time:
            changed.append(service_time)
        for pod_key, stamp in current.pod_times.items():
            if previous is None or pod_key not in previous.pod_times or previous.pod_times[pod_key] != stamp:
                changed.append(stamp)
        self._seen[key] = current
        times = [t for t in changed if t is not None]
        return min(times) if times else None

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)
