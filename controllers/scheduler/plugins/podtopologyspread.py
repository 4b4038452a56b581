"""PodTopologySpread: keep matching pods evenly spread across topology domains.

For a constraint (maxSkew, topologyKey, labelSelector) the skew of placing the pod in a
domain is: matching pods already there + 1 if the pod matches its own selector - the
smallest count over all eligible domains (0 when fewer than minDomains domains exist).
Eligible domains come from nodes that carry every constraint's topology key and pass
the inclusion policies (nodeAffinityPolicy Honor: the pod's nodeSelector/affinity;
nodeTaintsPolicy Ignore by default). Terminating pods and other namespaces never count.

- `DoNotSchedule` constraints filter: skew > maxSkew is "node(s) didn't match pod
  topology spread constraints" (Unschedulable); a node without the key gets the same
  reason plus " (missing required label)" (UnschedulableAndUnresolvable).
- `ScheduleAnyway` constraints score (weight 2): fewer matching pods in the node's domain
  scores higher. Pods with no constraints get the cluster defaults (hostname maxSkew 3,
  zone maxSkew 5) over the pods selected by their Services, ReplicaSet, StatefulSet or
  ReplicationController — which is why a Deployment's replicas spread across nodes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controllers.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.matching import (
    Selector,
    find_untolerated_taint,
    label_selector,
    merged,
    required_node_affinity_matches,
    selector_from_set,
)
from controllers.scheduler.nodeinfo import NodeInfo, PodInfo, Snapshot, meta, pod_labels, pod_namespace
from controllers.scheduler.plugins.helper import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_DELETE,
    NODE_UPDATE,
    pod_spec,
    tolerations_of,
)

ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
LABEL_HOSTNAME = "kubernetes.io/hostname"
SYSTEM_DEFAULT_CONSTRAINTS: tuple[Mapping[str, Any], ...] = (
    {"maxSkew": 3, "topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway"},
    {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
)
_OWNER_KINDS = {("v1", "ReplicationController"): "replication_controllers",
                ("apps/v1", "ReplicaSet"): "replica_sets", ("apps/v1", "StatefulSet"): "stateful_sets"}
Pair = tuple[str, str]


@dataclass(frozen=True)
class Constraint:
    """A topologySpreadConstraint, with defaults applied and its selector parsed."""

    max_skew: int
    topology_key: str
    selector: Selector
    min_domains: int = 1
    node_affinity_policy: str = "Honor"
    node_taints_policy: str = "Ignore"

    def includes_every_node(self, pod: PodInfo) -> bool:
        """No node is left out by the inclusion policies: the pod has no node selector or
        required node affinity to honour, and taints are ignored (the defaults)."""
        return ((self.node_affinity_policy != "Honor" or not pod.has_required_node_affinity)
                and self.node_taints_policy != "Honor")

    def count_key(self, namespace: str) -> str:
        """The memo key of count_matching for this selector in `namespace`, built once
        per cycle (a string hashes once; the Selector would hash its requirements on every
        lookup)."""
        return f"{namespace}\x00{self.selector!r}"

    def includes(self, pod: Pod, node: NodeInfo) -> bool:
        """matchNodeInclusionPolicies."""
        if self.node_affinity_policy == "Honor" and not required_node_affinity_matches(pod, node.node):
            return False
        return not (self.node_taints_policy == "Honor"
                    and find_untolerated_taint(node.taints, tolerations_of(pod)) is not None)


def filter_constraints(constraints: Iterable[Mapping[str, Any]], pod_labels: Mapping[str, str],
                       action: str) -> list[Constraint]:
    """filterTopologySpreadConstraints: those with `action`, matchLabelKeys merged in."""
    result = []
    for c in constraints:
        if c.get("whenUnsatisfiable") != action:
            continue
        selector = label_selector(c.get("labelSelector"))
        keys = {k: pod_labels[k] for k in c.get("matchLabelKeys") or () if k in pod_labels}
        if keys:
            selector = merged(selector, keys)
        result.append(Constraint(int(c.get("maxSkew") or 1), c.get("topologyKey", ""), selector,
                                 int(c.get("minDomains") or 1), c.get("nodeAffinityPolicy") or "Honor",
                                 c.get("nodeTaintsPolicy") or "Ignore"))
    return result


def default_selector(pod: Pod, snapshot: Snapshot) -> Selector:
    """helper.DefaultSelector: what the pod's Services and controller select."""
    namespace, labels = pod_namespace(pod), pod_labels(pod)
    merged: dict[str, str] = {}
    for service in snapshot.services:
        selector = (service.get("spec") or {}).get("selector")
        if meta(service).get("namespace") == namespace and selector is not None \
                and selector_from_set(selector).matches(labels):
            merged.update(selector)
    selector = selector_from_set(merged)
    owner = next((r for r in meta(pod).get("ownerReferences") or () if r.get("controller")), None)
    table = _OWNER_KINDS.get((owner.get("apiVersion"), owner.get("kind"))) if owner else None
    if owner is None or table is None:
        return selector
    controller = getattr(snapshot, table).get(f"{namespace}/{owner.get('name')}")
    if controller is None:
        return selector
    spec_selector = (controller.get("spec") or {}).get("selector")
    if table == "replication_controllers":
        return selector_from_set({**merged, **(spec_selector or {})})
    other = label_selector(spec_selector)
    return selector if other.nothing else Selector(selector.requirements + other.requirements)


def count_matching(node: NodeInfo, selector: Selector, namespace: str, key: Any = None) -> int:
    """countPodsMatchSelector over the node's pods: an empty selector counts nothing;
    terminating pods are skipped. Memoized on the NodeInfo until its pods change, since
    every cycle of a Deployment's pods asks the same question of every node; `key`
    (Constraint.count_key) names the question cheaply."""
    return node.count_matching(selector, namespace, key)


def _has_all_keys(labels: Mapping[str, str], constraints: Sequence[Constraint]) -> bool:
    return all(c.topology_key in labels for c in constraints)


@dataclass
class _FilterState:
    constraints: list[Constraint]
    pair_counts: Counter[Pair] = field(default_factory=Counter)
    domains: Counter[str] = field(default_factory=Counter)
    minimum: dict[str, int] = field(default_factory=dict)

    def min_match(self, constraint: Constraint) -> int:
        if self.domains[constraint.topology_key] < constraint.min_domains:
            return 0
        return self.minimum.get(constraint.topology_key, 0)


@dataclass
class _ScoreState:
    constraints: list[Constraint]
    ignored: set[str] = field(default_factory=set)
    counts: list[dict[str, int]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    namespace: str = ""


class PodTopologySpread:
    """Filter on DoNotSchedule constraints; score on ScheduleAnyway ones (or defaults)."""

    name = "PodTopologySpread"
    events = (ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE, ASSIGNED_POD_DELETE, NODE_ADD, NODE_UPDATE, NODE_DELETE)
    state_key = "PreFilterPodTopologySpread"
    score_key = "PreScorePodTopologySpread"

    def __init__(self, default_constraints: Sequence[Mapping[str, Any]] = SYSTEM_DEFAULT_CONSTRAINTS,
                 *, system_defaulted: bool = True) -> None:
        self.default_constraints = tuple(default_constraints)
        self.system_defaulted = system_defaulted

    def constraints(self, pod: Pod, snapshot: Snapshot, action: str) -> list[Constraint]:
        own = pod_spec(pod).get("topologySpreadConstraints") or []
        labels = pod_labels(pod)
        if own:
            return filter_constraints(own, labels, action)
        defaults = filter_constraints(self.default_constraints, labels, action)
        if not defaults:
            return []
        selector = default_selector(pod, snapshot)
        if selector.empty():
            return []
        return [Constraint(c.max_skew, c.topology_key, selector, c.min_domains,
                           c.node_affinity_policy, c.node_taints_policy) for c in defaults]

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        constraints = self.constraints(pod, state.snapshot, "DoNotSchedule")
        if not constraints:
            return None, Status.skip()
        s = _FilterState(constraints)
        namespace = pod_namespace(pod)
        info = state.pod_info(pod)
        every = [c.includes_every_node(info) for c in constraints]
        keys = [c.count_key(namespace) for c in constraints]
        for node in state.snapshot.node_infos:
            if not _has_all_keys(node.labels, constraints):
                continue
            for c, all_included, key in zip(constraints, every, keys, strict=True):
                if all_included or c.includes(pod, node):
                    pair = (c.topology_key, node.labels[c.topology_key])
                    s.pair_counts[pair] += count_matching(node, c.selector, namespace, key)
        for (key, _), count in s.pair_counts.items():
            s.domains[key] += 1
            s.minimum[key] = min(s.minimum.get(key, count), count)
        state.write(self.state_key, s)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        s: _FilterState = state.read(self.state_key)
        labels = pod_labels(pod)
        for c in s.constraints:
            value = node.labels.get(c.topology_key)
            if value is None:
                return Status.unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
            self_match = 1 if c.selector.matches(labels) else 0
            skew = s.pair_counts.get((c.topology_key, value), 0) + self_match - s.min_match(c)
            if skew > c.max_skew:
                return Status.unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        constraints = self.constraints(pod, state.snapshot, "ScheduleAnyway")
        if not constraints or not state.snapshot.node_infos:
            return Status.skip()
        require_all = bool(pod_spec(pod).get("topologySpreadConstraints")) or not self.system_defaulted
        namespace = pod_namespace(pod)
        s = _ScoreState(constraints, counts=[{} for _ in constraints],
                        keys=[c.count_key(namespace) for c in constraints], namespace=namespace)
        sizes = [0] * len(constraints)
        for node in nodes:
            if require_all and not _has_all_keys(node.labels, constraints):
                s.ignored.add(node.name)
                continue
            for i, c in enumerate(constraints):
                value = node.labels.get(c.topology_key, "")
                if c.topology_key != LABEL_HOSTNAME and value not in s.counts[i]:
                    s.counts[i][value] = 0
                    sizes[i] += 1
        for i, c in enumerate(constraints):
            size = len(nodes) - len(s.ignored) if c.topology_key == LABEL_HOSTNAME else sizes[i]
            s.weights.append(math.log(size + 2))
        self._count_all_nodes(state, pod, s, require_all)
        state.write(self.score_key, s)
        return SUCCESS

    @staticmethod
    def _count_all_nodes(state: CycleState, pod: Pod, s: _ScoreState, require_all: bool) -> None:
        """processAllNode: add every node's matching pods to its domain's count. Only
        constraints with domains to count (not the hostname one) are looked at."""
        info = state.pod_info(pod)
        todo = []
        for i, c in enumerate(s.constraints):
            if not s.counts[i]:
                continue   # the hostname constraint: counted per node in Score
            if not require_all and c.includes_every_node(info):
                # Every node counts, in the domain of its label value: the snapshot may
                # keep these sums up to date as pods come and go.
                totals = state.snapshot.domain_counts(s.keys[i], c.selector, s.namespace, c.topology_key)
                for value in s.counts[i]:
                    s.counts[i][value] = totals.get(value, 0)
                continue
            todo.append((i, c, c.includes_every_node(info), s.keys[i]))
        if not todo:
            return
        for node in state.snapshot.node_infos:
            if require_all and not _has_all_keys(node.labels, s.constraints):
                continue
            for i, c, all_included, key in todo:
                counts = s.counts[i]
                value = node.labels.get(c.topology_key, "")
                if value in counts and (all_included or c.includes(pod, node)):
                    counts[value] += count_matching(node, c.selector, s.namespace, key)

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        s: _ScoreState = state.read(self.score_key)
        if node.name in s.ignored:
            return 0
        total = 0.0
        for i, c in enumerate(s.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == LABEL_HOSTNAME:
                count = count_matching(node, c.selector, s.namespace, s.keys[i])
            else:
                count = s.counts[i].get(value, 0)
            total += count * s.weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5)  # Go's math.Round: halves away from zero

    def score_nodes(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node, with the per-constraint lookups done once."""
        s: _ScoreState = state.read(self.score_key)
        terms = [(c.topology_key, c.topology_key == LABEL_HOSTNAME, c.selector, s.keys[i], s.counts[i],
                  s.weights[i], c.max_skew - 1) for i, c in enumerate(s.constraints)]
        out = []
        for node in nodes:
            if node.name in s.ignored:
                out.append(0)
                continue
            labels = node.labels
            total = 0.0
            for topology_key, per_node, selector, key, counts, weight, skew in terms:
                value = labels.get(topology_key)
                if value is None:
                    continue
                count = node.count_matching(selector, s.namespace, key) if per_node else counts.get(value, 0)
                total += count * weight + skew
            out.append(math.floor(total + 0.5))
        return out

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> None:
        s: _ScoreState = state.read(self.score_key)
        valid = {name: v for name, v in scores.items() if name not in s.ignored}
        low, high = min(valid.values(), default=0), max(valid.values(), default=0)
        for name in scores:
            if name in s.ignored:
                scores[name] = 0
            elif high == 0:
                scores[name] = MAX_NODE_SCORE
            else:
                scores[name] = MAX_NODE_SCORE * (high + low - scores[name]) // high
