"""Pod resource requests, summed exactly as the scheduler sums them.

k8s.io/component-helpers/resource.PodRequests decides what a pod "requests":
- regular containers run together, so their requests add up;
- init containers run one at a time, so each only raises the floor: the pod needs
  max(sum of containers, each init container);
- restartable init containers (sidecars, `restartPolicy: Always`) keep running, so they
  add to the sum *and* to the floor every later init container sees;
- spec.overhead (RuntimeClass) is added on top.

Sums are kept as exact `Quantity`s and converted once, as Go's `Resource.Add` does:
cpu in millicores (`MilliValue`), everything else in whole units (`Value`, rounded up).

Scoring uses a second view: a container that sets no cpu or memory request counts as
100m cpu and 200Mi memory (`DefaultMilliCPURequest`, `DefaultMemoryRequest`), so that
many best-effort pods do not all land on one node. A request explicitly set to zero
stays zero.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minikube_py.api.quantity import Quantity, parse_quantity

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
NON_MISSING_DEFAULTS: dict[str, Quantity] = {
    CPU: parse_quantity(f"{DEFAULT_MILLI_CPU_REQUEST}m"),
    MEMORY: parse_quantity(DEFAULT_MEMORY_REQUEST),
}

ResourceList = dict[str, Quantity]


def is_extended_resource_name(name: str) -> bool:
    """v1helper.IsExtendedResourceName: domain-prefixed, not kubernetes.io, not requests.*."""
    if "/" not in name or "kubernetes.io/" in name:
        return False
    return not name.startswith("requests.")


def is_scalar_resource_name(name: str) -> bool:
    """schedutil.IsScalarResourceName: extended, hugepages-*, or attachable-volumes-*."""
    return (is_extended_resource_name(name) or name.startswith("hugepages-")
            or name.startswith("attachable-volumes-"))


def _requests_of(container: Mapping[str, Any]) -> ResourceList:
    raw = ((container.get("resources") or {}).get("requests")) or {}
    return {name: parse_quantity(value) for name, value in raw.items()}


def _add(into: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, value in other.items():
        into[name] = into[name] + value if name in into else value


def _max(into: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, value in other.items():
        if name not in into or value > into[name]:
            into[name] = value


def _with_defaults(requests: ResourceList, defaults: Mapping[str, Quantity] | None) -> ResourceList:
    """applyNonMissing: fill in requests the container leaves unset (not zero ones)."""
    if not defaults:
        return requests
    filled = dict(requests)
    for name, value in defaults.items():
        filled.setdefault(name, value)
    return filled


def pod_requests(pod: Mapping[str, Any], *, non_missing: Mapping[str, Quantity] | None = None) -> ResourceList:
    """resource.PodRequests(pod, opts): the pod's effective requests (see module doc)."""
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for container in spec.get("containers") or []:
        _add(total, _with_defaults(_requests_of(container), non_missing))
    sidecars: ResourceList = {}
    init_floor: ResourceList = {}
    for container in spec.get("initContainers") or []:
        requests = _with_defaults(_requests_of(container), non_missing)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            running = dict(sidecars)
        else:
            running = dict(requests)
            _add(running, sidecars)
        _max(init_floor, running)
    _max(total, init_floor)
    overhead = spec.get("overhead") or {}
    _add(total, {name: parse_quantity(value) for name, value in overhead.items()})
    return total


@dataclass
class Resource:
    """framework.Resource: cpu in millicores, other resources in whole units."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pod_number: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, resources: Mapping[str, Any] | None) -> Resource:
        """NewResource(ResourceList); values may be strings, numbers or Quantities."""
        result = cls()
        for name, value in (resources or {}).items():
            result.add_quantity(name, parse_quantity(value))
        return result

    def add_quantity(self, name: str, quantity: Quantity) -> None:
        if name == CPU:
            self.milli_cpu += quantity.milli_value()
        elif name == MEMORY:
            self.memory += quantity.int_value()
        elif name == PODS:
            self.allowed_pod_number += quantity.int_value()
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage += quantity.int_value()
        elif is_scalar_resource_name(name):
            self.scalar[name] = self.scalar.get(name, 0) + quantity.int_value()

    def add(self, other: Resource, sign: int = 1) -> None:
        """Add (sign=1) or subtract (sign=-1) another Resource in place."""
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        self.allowed_pod_number += sign * other.allowed_pod_number
        for name, value in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + sign * value

    def clone(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage,
                        self.allowed_pod_number, dict(self.scalar))

    def get(self, name: str) -> int:
        """The amount of one resource by its Kubernetes name (cpu in millicores)."""
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pod_number
        return self.scalar.get(name, 0)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage
                    or any(self.scalar.values()))


def pod_resource(pod: Mapping[str, Any]) -> Resource:
    """computePodResourceRequest: the request NodeResourcesFit checks and NodeInfo sums."""
    result = Resource()
    for name, quantity in pod_requests(pod).items():
        result.add_quantity(name, quantity)
    return result


def _requests_key(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    """Everything of a pod spec its requests depend on, as a hashable key."""
    def requests(container: Mapping[str, Any]) -> tuple[Any, ...]:
        raw = (container.get("resources") or {}).get("requests") or {}
        return tuple(sorted(raw.items()))

    return (tuple(requests(c) for c in spec.get("containers") or []),
            tuple((requests(c), c.get("restartPolicy")) for c in spec.get("initContainers") or []),
            tuple(sorted((spec.get("overhead") or {}).items())))


@functools.lru_cache(maxsize=1024)
def _summary_by_key(key: tuple[Any, ...]) -> tuple[Resource, int, int]:
    containers, init_containers, overhead = key
    spec = {"containers": [{"resources": {"requests": dict(r)}} for r in containers],
            "initContainers": [{"resources": {"requests": dict(r)}, "restartPolicy": policy}
                               for r, policy in init_containers],
            "overhead": dict(overhead)}
    pod = {"spec": spec}
    return (pod_resource(pod), *pod_non_zero_requests(pod))


def pod_request_summary(pod: Mapping[str, Any]) -> tuple[Resource, int, int]:
    """(pod_resource, non-zero milli cpu, non-zero memory), memoized by the requests the
    spec states: the replicas of one workload share them, and parsing quantities is the
    costly part of taking a pod into the scheduler's cache."""
    spec = pod.get("spec") or {}
    try:
        resource, cpu, memory = _summary_by_key(_requests_key(spec))
    except TypeError:   # an unhashable value: the API server would have rejected it
        return (pod_resource(pod), *pod_non_zero_requests(pod))
    return resource.clone(), cpu, memory


def pod_non_zero_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(milli cpu, memory bytes) with the scoring defaults for unset container requests."""
    requests = pod_requests(pod, non_missing=NON_MISSING_DEFAULTS)
    cpu = requests.get(CPU)
    memory = requests.get(MEMORY)
    return (cpu.milli_value() if cpu is not None else 0,
            memory.int_value() if memory is not None else 0)
