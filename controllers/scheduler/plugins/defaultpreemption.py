"""DefaultPreemption as a PostFilter: would evicting lower-priority pods make room?

Nothing is evicted here; this is the dry run whose message ends every FailedScheduling
event ("preemption: ..."), and whose candidates a scheduler loop may act on.
- A pod with `preemptionPolicy: Never` may not preempt:
  "preemption: not eligible due to preemptionPolicy=Never."
- Nodes that failed as UnschedulableAndUnresolvable (taints, affinity, node name, nodes
  excluded at PreFilter) cannot be helped: "Preemption is not helpful for scheduling".
- Every other node is tried without its lower-priority pods: none there gives
  "No preemption victims found for incoming pod"; if the filters still fail, their
  reason counts (e.g. "Insufficient cpu"); if they pass, the node is a candidate.
- No candidate: the message is a FitError over all nodes built from those reasons.
  Some candidates: success and no message, as when Kubernetes preempts (it then evicts
  the victims and nominates the node; choosing the fewest victims is not done here).
"""

from __future__ import annotations

from controllers.scheduler.fit_error import fit_error_message
from controllers.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    Diagnosis,
    Framework,
    Pod,
    PostFilterResult,
    Status,
)
from controllers.scheduler.nodeinfo import NodeInfo, pod_priority
from controllers.scheduler.plugins.helper import pod_spec

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."


class DefaultPreemption:
    """The preemption dry run (see module docstring)."""

    name = "DefaultPreemption"

    def post_filter(self, state: CycleState, pod: Pod, diagnosis: Diagnosis,
                    framework: Framework) -> tuple[PostFilterResult | None, Status]:
        result, status = self.preempt(state, pod, diagnosis, framework)
        if status.message():
            return result, Status(status.code, (f"preemption: {status.message()}",))
        return result, status

    def preempt(self, state: CycleState, pod: Pod, diagnosis: Diagnosis,
                framework: Framework) -> tuple[PostFilterResult | None, Status]:
        if pod_spec(pod).get("preemptionPolicy") == "Never":
            return None, Status.unschedulable(NOT_ELIGIBLE_NEVER)
        statuses: dict[str, Status] = {}
        candidates: dict[str, list[Pod]] = {}
        for node in state.snapshot.node_infos:
            if diagnosis.status_of(node.name).code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                statuses[node.name] = Status.unresolvable(NOT_HELPFUL)
                continue
            victims, status = self.select_victims(state, pod, node, framework)
            if victims is None:
                statuses[node.name] = status
            else:
                candidates[node.name] = victims
        if candidates:
            return PostFilterResult(candidates), SUCCESS
        dry_run = Diagnosis(node_to_status=statuses, absent_nodes_status=Status.unresolvable(NOT_HELPFUL))
        return PostFilterResult(), Status.unschedulable(fit_error_message(len(state.snapshot.node_infos), dry_run))

    @staticmethod
    def select_victims(state: CycleState, pod: Pod, node: NodeInfo,
                       framework: Framework) -> tuple[list[Pod] | None, Status]:
        """SelectVictimsOnNode's first step: remove every lower-priority pod and see if
        the pod fits. Returns (potential victims, SUCCESS) or (None, why not)."""
        priority = pod_priority(pod)
        victims = [p for p in node.pods if p.priority < priority]
        if not victims:
            return None, Status.unresolvable(NO_VICTIMS)
        trimmed = node.clone()
        for victim in victims:
            trimmed.remove_pod(victim.key)
        dry_state = CycleState(state.snapshot.with_node(trimmed))
        outcome = framework.run_pre_filter(dry_state, pod)
        if not outcome.status.is_success():
            return None, outcome.status
        status, _ = framework.run_filters(dry_state, pod, trimmed)
        if not status.is_success():
            return None, status
        return [v.pod for v in victims], SUCCESS
