"""TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate rule a node
out (UnschedulableAndUnresolvable, naming the first such taint as
"node(s) had untolerated taint {key: value}"); PreferNoSchedule taints it does not
tolerate lower the node's score (weight 3, fewer is better)."""

from __future__ import annotations

from controllers.scheduler.framework import SUCCESS, CycleState, Pod, Status
from controllers.scheduler.matching import find_untolerated_taint, tolerations_tolerate
from controllers.scheduler.nodeinfo import NodeInfo
from controllers.scheduler.plugins.helper import NODE_CHANGES, default_normalize_score, tolerations_of


def untolerated_taint_reason(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


class TaintToleration:
    """Filter on hard taints; score by untolerated PreferNoSchedule taints."""

    name = "TaintToleration"
    events = NODE_CHANGES
    score_key = "PreScoreTaintToleration"

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        taint = find_untolerated_taint(node.taints, state.pod_info(pod).tolerations)
        if taint is None:
            return SUCCESS
        return Status.unresolvable(untolerated_taint_reason(dict(taint)))

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        prefer = [t for t in state.pod_info(pod).tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        state.write(self.score_key, prefer)
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        try:
            tolerations = state.read(self.score_key)
        except KeyError:
            tolerations = tolerations_of(pod)
        return sum(1 for taint in node.taints
                   if taint.get("effect") == "PreferNoSchedule" and not tolerations_tolerate(tolerations, taint))

    def score_nodes(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node; nodes without taints score 0 without a call."""
        return [self.score(state, pod, node) if node.taints else 0 for node in nodes]

    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> None:
        default_normalize_score(scores, reverse=True)
