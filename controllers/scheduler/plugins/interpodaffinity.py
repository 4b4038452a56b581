"""InterPodAffinity: pods placed relative to other pods, per topology domain.

A domain is a (topologyKey, value) pair taken from node labels, so
`topologyKey: kubernetes.io/hostname` means "the same node" and
`topology.kubernetes.io/zone` "the same zone". PreFilter counts, over all assigned pods:
- for each required affinity term of the incoming pod, the domains holding pods that
  match *all* its terms (affinityCounts);
- for each required anti-affinity term, the domains holding pods that match it;
- the domains holding existing pods whose required anti-affinity matches the incoming pod.

Filter, in this order (the first failure is the reason):
- "node(s) didn't match pod affinity rules" (UnschedulableAndUnresolvable) if the node
  lacks a term's topology label or a term's domain has no matching pod. Exception: when
  no pod in the cluster matches at all and the pod matches its own terms, it may go
  anywhere that has the labels, so the first replica of a self-affine set can start.
- "node(s) didn't match pod anti-affinity rules" (Unschedulable) if a domain of the node
  holds a pod matching an anti-affinity term.
- "node(s) didn't satisfy existing pods anti-affinity rules" (Unschedulable) if the node
  is in a domain where an existing pod's anti-affinity forbids the incoming pod.

Score (weight 2): preferred terms of the incoming pod (+weight / -weight for
anti-affinity) and of existing pods towards it, plus existing pods' required affinity
terms (hardPodAffinityWeight 1), summed per domain, then min-max normalized to 0..100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controllers.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.nodeinfo import AffinityTerm, NodeInfo, PodInfo
from controllers.scheduler.plugins.helper import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NAMESPACE_ADD,
    NAMESPACE_UPDATE,
    NODE_CHANGES,
)

ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

Pair = tuple[str, str]
NsLabels = Mapping[str, str] | None


@dataclass
class _FilterState:
    pod: PodInfo
    affinity_counts: Counter[Pair]
    anti_affinity_counts: Counter[Pair]
    existing_anti_affinity_counts: Counter[Pair]


def _all_match(terms: Iterable[AffinityTerm], pod: PodInfo, ns_labels: NsLabels) -> bool:
    terms = list(terms)
    return bool(terms) and all(t.matches(pod, ns_labels) for t in terms)


class InterPodAffinity:
    """Required pod (anti-)affinity as a filter, preferred as a score."""

    name = "InterPodAffinity"
    events = (ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE, ASSIGNED_POD_DELETE, NAMESPACE_ADD, NAMESPACE_UPDATE,
              *NODE_CHANGES)
    state_key = "PreFilterInterPodAffinity"
    score_key = "PreScoreInterPodAffinity"

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        snapshot = state.snapshot
        incoming = state.pod_info(pod)
        own_ns = snapshot.namespace_labels(incoming.namespace) or {}
        existing: Counter[Pair] = Counter()
        for node in snapshot.have_pods_with_required_anti_affinity():
            for other in node.pods_with_required_anti_affinity:
                for term in other.required_anti_affinity_terms:
                    value = node.labels.get(term.topology_key)
                    if value is not None and term.matches(incoming, own_ns):
                        existing[(term.topology_key, value)] += 1
        if not existing and not incoming.required_affinity_terms and not incoming.required_anti_affinity_terms:
            return None, Status.skip()
        affinity: Counter[Pair] = Counter()
        anti: Counter[Pair] = Counter()
        for node in snapshot.node_infos:
            for other in node.pods:
                ns_labels = snapshot.namespace_labels(other.namespace)
                if _all_match(incoming.required_affinity_terms, other, ns_labels):
                    _count_domains(affinity, incoming.required_affinity_terms, node)
                for term in incoming.required_anti_affinity_terms:
                    if term.matches(other, ns_labels):
                        _count_domains(anti, [term], node)
        state.write(self.state_key, _FilterState(incoming, affinity, anti, existing))
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        s: _FilterState = state.read(self.state_key)
        if not _satisfies_affinity(s, node, state):
            return Status.unresolvable(ERR_REASON_AFFINITY)
        for term in s.pod.required_anti_affinity_terms:
            value = node.labels.get(term.topology_key)
            if value is not None and s.anti_affinity_counts[(term.topology_key, value)] > 0:
                return Status.unschedulable(ERR_REASON_ANTI_AFFINITY)
        if any(s.existing_anti_affinity_counts[pair] > 0 for pair in node.labels.items()):
            return Status.unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY)
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        snapshot = state.snapshot
        incoming = state.pod_info(pod)
        own_ns = snapshot.namespace_labels(incoming.namespace) or {}
        has_preferred = bool(incoming.preferred_affinity_terms or incoming.preferred_anti_affinity_terms)
        scores: Counter[Pair] = Counter()
        for node in snapshot.node_infos if has_preferred else snapshot.have_pods_with_affinity():
            if not node.labels:
                continue
            for other in node.pods if has_preferred else node.pods_with_affinity:
                _process_existing_pod(scores, incoming, other, node, own_ns, snapshot.namespace_labels(other.namespace))
        if not scores:
            return Status.skip()
        state.write(self.score_key, scores)
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        scores: Counter[Pair] = state.read(self.score_key)
        return sum(scores[pair] for pair in node.labels.items() if pair in scores)

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> None:
        if not scores:
            return
        low, high = min(scores.values()), max(scores.values())
        for name, score in scores.items():
            scores[name] = int(MAX_NODE_SCORE * ((score - low) / (high - low))) if high > low else 0


def _count_domains(counts: Counter[Pair], terms: Iterable[AffinityTerm], node: NodeInfo, by: int = 1) -> None:
    for term in terms:
        value = node.labels.get(term.topology_key)
        if value is not None:
            counts[(term.topology_key, value)] += by


def _satisfies_affinity(s: _FilterState, node: NodeInfo, state: CycleState) -> bool:
    """satisfyPodAffinity, including the first-pod-of-a-self-affine-group exception."""
    pods_exist = True
    for term in s.pod.required_affinity_terms:
        value = node.labels.get(term.topology_key)
        if value is None:
            return False
        if s.affinity_counts[(term.topology_key, value)] <= 0:
            pods_exist = False
    if pods_exist:
        return True
    own_ns = state.snapshot.namespace_labels(s.pod.namespace)
    return not s.affinity_counts and _all_match(s.pod.required_affinity_terms, s.pod, own_ns)


def _process_existing_pod(scores: Counter[Pair], incoming: PodInfo, other: PodInfo, node: NodeInfo,
                          own_ns: NsLabels, other_ns: NsLabels) -> None:
    """processExistingPod: every term linking `incoming` and `other` adds its weight to
    the domain of `other`'s node."""
    def add(terms: Iterable[AffinityTerm], target: PodInfo, ns_labels: NsLabels, sign: int,
            weight: int | None = None) -> None:
        for term in terms:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(target, ns_labels):
                scores[(term.topology_key, value)] += sign * (term.weight if weight is None else weight)

    add(incoming.preferred_affinity_terms, other, other_ns, 1)
    add(incoming.preferred_anti_affinity_terms, other, other_ns, -1)
    if HARD_POD_AFFINITY_WEIGHT > 0:
        add(other.required_affinity_terms, incoming, own_ns, 1, HARD_POD_AFFINITY_WEIGHT)
    add(other.preferred_affinity_terms, incoming, own_ns, 1)
    add(other.preferred_anti_affinity_terms, incoming, own_ns, -1)
