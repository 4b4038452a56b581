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
        state.write(self.state_key, pod_resource(pod))
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        try:
            request = state.read(self.state_key)
        except KeyError:
            request = pod_resource(pod)
        missing = fits_request(request, node, self.ignored_resources)
        if missing:
            return Status.unschedulable(*(m.reason for m in missing))
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        state.write(self.score_key, [_pod_request(pod, name, with_defaults=True) for name, _ in self.resources])
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        try:
            requests = state.read(self.score_key)
        except KeyError:
            requests = [_pod_request(pod, name, with_defaults=True) for name, _ in self.resources]
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


class NodeResourcesBalancedAllocation:
    """Favours nodes whose cpu and memory usage stay in proportion after placing the pod."""

    name = "NodeResourcesBalancedAllocation"
    events = (ASSIGNED_POD_DELETE, *NODE_CHANGES)
    score_key = "PreScoreNodeResourcesBalancedAllocation"

    def __init__(self, resources: Sequence[tuple[str, int]] = DEFAULT_RESOURCES) -> None:
        self.resources = tuple(resources)

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        state.write(self.score_key, [_pod_request(pod, name, with_defaults=False) for name, _ in self.resources])
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        try:
            requests = state.read(self.score_key)
        except KeyError:
            requests = [_pod_request(pod, name, with_defaults=False) for name, _ in self.resources]
        allocs, reqs = [], []
        for (name, _), pod_request in zip(self.resources, requests, strict=True):
            allocatable, requested = _allocatable_and_requested(node, name, pod_request, use_requested=True)
            allocs.append(allocatable)
            reqs.append(requested if allocatable else 0)
        return balanced_resource_score(reqs, allocs)
