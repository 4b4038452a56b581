"""Rollout status with progress accounting (progress.go syncRolloutStatus).

After a rollout step the Progressing condition is refreshed: complete -> True /
NewReplicaSetAvailable; pods moved since the last status -> True / ReplicaSetUpdated (a new
lastUpdateTime, the lastTransitionTime kept); otherwise, past the deadline -> False /
ProgressDeadlineExceeded. ReplicaFailure conditions of the ReplicaSets are surfaced on the
Deployment. When nothing changed, the sync asks to be requeued at the deadline, since no
informer event will come to tell the controller that time ran out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from controllers.common import conditions, objects
from controllers.common.actions import RequeueAfter
from controllers.deployment import status as st
from controllers.deployment.context import SyncContext

Obj = dict[str, Any]


def _progress_message(ctx: SyncContext, new_rs: Obj | None, what: str) -> str:
    if new_rs is not None:
        return f'ReplicaSet "{objects.name(new_rs)}" {what}'
    return f'Deployment "{objects.name(ctx.deployment)}" {what}'


def _update_progressing(ctx: SyncContext, new_status: Obj, new_rs: Obj | None) -> None:
    d, current = ctx.deployment, conditions.get_condition(ctx.status, st.PROGRESSING)
    if st.deployment_complete(d, new_status):
        message = _progress_message(ctx, new_rs, "has successfully progressed.")
        conditions.set_condition(new_status, st.new_condition(st.PROGRESSING, "True", st.NEW_RS_AVAILABLE, message, ctx))
    elif st.deployment_progressing(ctx.status, new_status):
        message = _progress_message(ctx, new_rs, "is progressing.")
        cond = st.new_condition(st.PROGRESSING, "True", st.REPLICA_SET_UPDATED, message, ctx)
        # Unlike other conditions, the same reason is written again to move lastUpdateTime.
        if current is not None:
            if current.get("status") == "True" and "lastTransitionTime" in current:
                cond["lastTransitionTime"] = current["lastTransitionTime"]
            conditions.remove_condition(new_status, st.PROGRESSING)
        conditions.set_condition(new_status, cond)
    elif st.deployment_timed_out(ctx, new_status):
        message = _progress_message(ctx, new_rs, "has timed out progressing.")
        conditions.set_condition(new_status, st.new_condition(st.PROGRESSING, "False", st.TIMED_OUT, message, ctx))


def replica_failures(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> list[Obj]:
    """getReplicaFailures: the new ReplicaSet's ReplicaFailure conditions first, else any."""
    def failures(rs: Obj | None) -> list[Obj]:
        return [{"type": c["type"], "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                 "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
                 "message": c.get("message")}
                for c in objects.status(rs).get("conditions") or [] if c.get("type") == st.REPLICA_FAILURE]
    found = failures(new_rs)
    if found:
        return found
    return [c for rs in all_rss if rs is not None for c in failures(rs)]


def sync_rollout_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, ctx: SyncContext) -> None:
    """syncRolloutStatus: set the scratch status; requeue at the deadline when unchanged."""
    d = ctx.deployment
    new_status = st.calculate_status(all_rss, new_rs, ctx)
    if not st.has_progress_deadline(d):
        conditions.remove_condition(new_status, st.PROGRESSING)
    current = conditions.get_condition(ctx.status, st.PROGRESSING)
    complete_before = (count_equal(new_status) and current is not None
                       and current.get("reason") == st.NEW_RS_AVAILABLE)
    if st.has_progress_deadline(d) and not complete_before:
        _update_progressing(ctx, new_status, new_rs)
    failure = replica_failures(all_rss, new_rs)
    if failure:
        conditions.set_condition(new_status, failure[0])
    else:
        conditions.remove_condition(new_status, st.REPLICA_FAILURE)
    if st.same_status(new_status, ctx.status):
        requeue = stuck_requeue(ctx, new_status)
        if requeue is not None:
            ctx.actions.append(requeue)
        return
    d["status"] = new_status


def count_equal(new_status: Obj) -> bool:
    return st.count(new_status, "replicas") == st.count(new_status, "updatedReplicas")


def stuck_requeue(ctx: SyncContext, new_status: Obj) -> RequeueAfter | None:
    """requeueStuckDeployment: come back when the progress deadline would pass."""
    d, current = ctx.deployment, conditions.get_condition(ctx.status, st.PROGRESSING)
    if not st.has_progress_deadline(d) or current is None:
        return None
    if st.deployment_complete(d, new_status) or current.get("reason") == st.TIMED_OUT:
        return None
    since = objects.parse_time(current.get("lastUpdateTime")) or objects.ZERO_TIME
    deadline = since + timedelta(seconds=int(objects.spec(d).get("progressDeadlineSeconds", 600)))
    after = (deadline - ctx.now).total_seconds()
    if after < 1:
        return RequeueAfter(0.0)
    # One second more than the remainder, against millisecond skew (as Kubernetes).
    return RequeueAfter(after + 1)
