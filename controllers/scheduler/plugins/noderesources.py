"""NodeResourcesFit (filter + LeastAllocated score) and NodeResourcesBalancedAllocation.

Filter: the pod's requests (see resources.py) must fit in allocatable minus what the
node's pods already request, resource by resource; every pod also takes one of the
node's allocatable `pods`. Reasons are Kubernetes' own: "Too many pods",
"Insufficient cpu", "Insufficient memory", "Insufficient ephemeral-storage",
"Insufficient <extended resource>". They are Unschedulable, not Unresolvable: in 1.32
preemption may still free the room.

LeastAllocated (weight 1): per resource ((allocatable - requested) * 100 / allocatable)
in integer arithmetic, averaged by resource weights (cpu 1, memory 1), where requested
includes the 100m / 200Mi defaults for containers that request nothing.

BalancedAllocation (weight 1): 100 * (1 - std) of the requested/allocatable fractions
(capped at 1), using real requests; with two resources std is |f1 - f2| / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controllers.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.nodeinfo import NodeInfo
from controllers.scheduler.plugins.helper import ASSIGNED_POD_DELETE, NODE_CHANGES
from controllers.scheduler.resources import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    NON_MISSING_DEFAULTS,
    Resource,
    is_extended_resource_name,
    is_scalar_resource_name,
    pod_requests,
    pod_resource,
)

DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))


@dataclass(frozen=True)
class InsufficientResource:
    """One resource the node lacks for the pod."""

    resource: str
    reason: str
    requested: int
    used: int
    capacity: int


def fits_request(request: Resource, node: NodeInfo,
                 ignored: frozenset[str] = frozenset()) -> list[InsufficientResource]:
    """fitsRequest: everything the node lacks, in Kubernetes' order (pods, cpu, memory,
    ephemeral-storage, then extended resources)."""
    out: list[InsufficientResource] = []
    allowed = node.allocatable.allowed_pod_number
    if len(node.pods) + 1 > allowed:
        out.append(InsufficientResource("pods", "Too many pods", 1, len(node.pods), allowed))
    if request.is_zero():
        return out
    for name in (CPU, MEMORY, EPHEMERAL_STORAGE):
        wanted = request.get(name)
        free = node.allocatable.get(name) - node.requested.get(name)
        if wanted > 0 and wanted > free:
            out.append(InsufficientResource(name, f"Insufficient {name}", wanted,
                                            node.requested.get(name), node.allocatable.get(name)))
    for name in sorted(request.scalar):
        wanted = request.scalar[name]
        if wanted == 0 or (is_extended_resource_name(name) and name in ignored):
            continue
        if wanted > node.allocatable.get(name) - node.requested.get(name):
            out.append(InsufficientResource(name, f"Insufficient {name}", wanted,
                                            node.requested.get(name), node.allocatable.get(name)))
    return out


def fits_quickly(request: Resource, node: NodeInfo) -> bool:
    """True when `request` certainly fits (a room for one more pod, enough cpu, memory and
    ephemeral storage, no extended resources); False means "ask fits_request"."""
    allocatable, requested = node.allocatable, node.requested
    return (len(node.pods) < allocatable.allowed_pod_number and not request.scalar
            and request.milli_cpu <= allocatable.milli_cpu - requested.milli_cpu
            and request.memory <= allocatable.memory - requested.memory
            and request.ephemeral_storage <= allocatable.ephemeral_storage - requested.ephemeral_storage)


def _pod_requests(state: CycleState, pod: Pod, resources: Sequence[tuple[str, int]], *,
                  with_defaults: bool) -> list[int]:
    """The pod's request of each scored resource, cpu and memory from the cycle's PodInfo."""
    info = state.pod_info(pod)
    known = ({CPU: info.non_zero_cpu, MEMORY: info.non_zero_memory} if with_defaults
             else {CPU: info.resource.milli_cpu, MEMORY: info.resource.memory})
    return [known[name] if name in known else _pod_request(pod, name, with_defaults=with_defaults)
            for name, _ in resources]


def _pod_request(pod: Pod, name: str, *, with_defaults: bool) -> int:
    """calculatePodResourceRequest for one resource."""
    requests = pod_requests(pod, non_missing=NON_MISSING_DEFAULTS if with_defaults else None)
    quantity = requests.get(name)
    if quantity is None:
        return 0
    return quantity.milli_value() if name == CPU else quantity.int_value()


def _allocatable_and_requested(node: NodeInfo, name: str, pod_request: int, *,
                               use_requested: bool) -> tuple[int, int]:
    """calculateResourceAllocatableRequest: (0, 0) means "do not score this resource"."""
    if pod_request == 0 and is_scalar_resource_name(name):
        return 0, 0
    requested = node.requested if use_requested else node.non_zero_requested
    if name in (CPU, MEMORY):
        return node.allocatable.get(name), requested.get(name) + pod_request
    if name == EPHEMERAL_STORAGE:
        return node.allocatable.ephemeral_storage, node.requested.ephemeral_storage + pod_request
    if name in node.allocatable.scalar:
        return node.allocatable.scalar[name], node.requested.get(name) + pod_request
    return 0, 0


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def _least_allocated_cpu_memory(node: NodeInfo, cpu: int, memory: int) -> int:
    """The LeastAllocated score for the default resources (cpu and memory, weight 1 each):
    the general loop in NodeResourcesFit.score, unrolled for the hot path."""
    allocatable, requested = node.allocatable, node.non_zero_requested
    total = weights = 0
    if allocatable.milli_cpu:
        total += least_requested_score(requested.milli_cpu + cpu, allocatable.milli_cpu)
        weights += 1
    if allocatable.memory:
        total += least_requested_score(requested.memory + memory, allocatable.memory)
        weights += 1
    return total // weights if weights else 0


class NodeResourcesFit:
    """Filter on requests vs allocatable; score with the LeastAllocated strategy."""

    name = "NodeResourcesFit"
    events = (ASSIGNED_POD_DELETE, *NODE_CHANGES)
    state_key = "PreFilterNodeResourcesFit"
    score_key = "PreScoreNodeResourcesFit"

    def __init__(self, resources: Sequence[tuple[str, int]] = DEFAULT_RESOURCES,
                 ignored_resources: frozenset[str] = frozenset()) -> None:
        self.resources = tuple(resources)
        self.ignored_resources = ignored_resources

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        state.write(self.state_key, state.pod_info(pod).resource)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        try:
            request = state.read(self.state_key)
        except KeyError:
            request = pod_resource(pod)
        if fits_quickly(request, node):
            return SUCCESS
        missing = fits_request(request, node, self.ignored_resources)
        if missing:
            return Status.unschedulable(*(m.reason for m in missing))
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        state.write(self.score_key, _pod_requests(state, pod, self.resources, with_defaults=True))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        try:
            requests = state.read(self.score_key)
        except KeyError:
            requests = _pod_requests(state, pod, self.resources, with_defaults=True)
        if self.resources is DEFAULT_RESOURCES:
            return _least_allocated_cpu_memory(node, requests[0], requests[1])
        return self._least_allocated(node, requests)

    def score_nodes(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node (one state read, no per-node dispatch)."""
        requests = state.read(self.score_key)
        if self.resources is DEFAULT_RESOURCES:
            cpu, memory = requests
            return [_least_allocated_cpu_memory(node, cpu, memory) for node in nodes]
        return [self._least_allocated(node, requests) for node in nodes]

    def _least_allocated(self, node: NodeInfo, requests: list[int]) -> int:
        total = weights = 0
        for (name, weight), pod_request in zip(self.resources, requests, strict=True):
            allocatable, requested = _allocatable_and_requested(node, name, pod_request, use_requested=False)
            if allocatable == 0:
                continue
            total += least_requested_score(requested, allocatable) * weight
            weights += weight
        return total // weights if weights else 0


def balanced_resource_score(requested: Sequence[int], allocatable: Sequence[int]) -> int:
    """balancedResourceScorer: 100 * (1 - standard deviation of the usage fractions)."""
    fractions = [min(req / alloc, 1.0) for req, alloc in zip(requested, allocatable, strict=True) if alloc]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def _balanced_cpu_memory(node: NodeInfo, cpu: int, memory: int) -> int:
    """balanced_resource_score for cpu and memory, unrolled for the hot path."""
    allocatable, requested = node.allocatable, node.requested
    fractions = [min((requested.milli_cpu + cpu) / allocatable.milli_cpu, 1.0)] if allocatable.milli_cpu else []
    if allocatable.memory:
        fractions.append(min((requested.memory + memory) / allocatable.memory, 1.0))
    std = abs((fractions[0] - fractions[1]) / 2) if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class NodeResourcesBalancedAllocation:
    """Favours nodes whose cpu and memory usage stay in proportion after placing the pod."""

    name = "NodeResourcesBalancedAllocation"
    events = (ASSIGNED_POD_DELETE, *NODE_CHANGES)
    score_key = "PreScoreNodeResourcesBalancedAllocation"

    def __init__(self, resources: Sequence[tuple[str, int]] = DEFAULT_RESOURCES) -> None:
        self.resources = tuple(resources)

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        state.write(self.score_key, _pod_requests(state, pod, self.resources, with_defaults=False))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        try:
            requests = state.read(self.score_key)
        except KeyError:
            requests = _pod_requests(state, pod, self.resources, with_defaults=False)
        if self.resources is DEFAULT_RESOURCES:
            return _balanced_cpu_memory(node, requests[0], requests[1])
        return self._balanced(node, requests)

    def score_nodes(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node (one state read, no per-node dispatch)."""
        requests = state.read(self.score_key)
        if self.resources is DEFAULT_RESOURCES:
            cpu, memory = requests
            return [_balanced_cpu_memory(node, cpu, memory) for node in nodes]
        return [self._balanced(node, requests) for node in nodes]

    def _balanced(self, node: NodeInfo, requests: list[int]) -> int:
        allocs, reqs = [], []
        for (name, _), pod_request in zip(self.resources, requests, strict=True):
            allocatable, requested = _allocatable_and_requested(node, name, pod_request, use_requested=True)
            allocs.append(allocatable)
            reqs.append(requested if allocatable else 0)
        return balanced_resource_score(reqs, allocs)
