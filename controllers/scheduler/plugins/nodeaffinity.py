"""NodeAffinity: spec.nodeSelector and required node affinity as a filter, preferred
node affinity as a score (weight 2).

PreFilter narrows the candidates when every required term names nodes through
`matchFields: metadata.name In [...]` (how DaemonSet pods are pinned): the other nodes
are then not filtered at all and the FailedScheduling message counts them as
"node(s) didn't satisfy plugin(s) [NodeAffinity]". Terms naming disjoint nodes give
"pod affinity terms conflict".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.scheduler.framework import SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.matching import (
    NODE_NAME_FIELD,
    preferred_node_affinity_score,
    required_node_affinity_matches,
)
from controllers.scheduler.nodeinfo import NodeInfo
from controllers.scheduler.plugins.helper import NODE_CHANGES, default_normalize_score, pod_spec

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_CONFLICT = "pod affinity terms conflict"


def _node_affinity(pod: Pod) -> Mapping[str, Any]:
    return (pod_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}


def _named_nodes(terms: list[Mapping[str, Any]]) -> frozenset[str] | None:
    """The nodes the required terms restrict the pod to, or None for "any node"."""
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for req in term.get("matchFields") or []:
            if req.get("key") == NODE_NAME_FIELD and req.get("operator") == "In":
                values = set(req.get("values") or ())
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


class NodeAffinity:
    """Filter on nodeSelector + required node affinity; score preferred node affinity."""

    name = "NodeAffinity"
    events = NODE_CHANGES
    score_key = "PreScoreNodeAffinity"

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is None and not pod_spec(pod).get("nodeSelector"):
            return None, Status.skip()
        terms = (required or {}).get("nodeSelectorTerms") or []
        if not terms:
            return None, SUCCESS
        names = _named_nodes(terms)
        if names is None:
            return None, SUCCESS
        if not names:
            return None, Status.unresolvable(ERR_REASON_CONFLICT)
        return PreFilterResult(names), SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        if not state.pod_info(pod).has_required_node_affinity or required_node_affinity_matches(pod, node.node):
            return SUCCESS
        return Status.unresolvable(ERR_REASON_POD)

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution")
        if not preferred:
            return Status.skip()
        state.write(self.score_key, list(preferred))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        try:
            terms = state.read(self.score_key)
        except KeyError:
            terms = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        return preferred_node_affinity_score(terms, node.node)

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> None:
        default_normalize_score(scores, reverse=False)
