"""Deployment status and its conditions (sync.go calculateStatus, progress.go).

Counts are sums over the ReplicaSets: `replicas` (their status.replicas), `updatedReplicas`
(the new ReplicaSet's), `readyReplicas`, `availableReplicas`, and `unavailableReplicas` =
sum of spec.replicas - available (never negative). Zero counts are omitted like the API's
omitempty JSON.

Available: True/MinimumReplicasAvailable when available >= replicas - maxUnavailable,
else False/MinimumReplicasUnavailable. Progressing (only with a progress deadline):
NewReplicaSetCreated / FoundNewReplicaSet when the ReplicaSet appears, ReplicaSetUpdated
whenever pods move (lastUpdateTime refreshed, lastTransitionTime kept),
NewReplicaSetAvailable once complete, ProgressDeadlineExceeded (False) when no progress
was seen for progressDeadlineSeconds, DeploymentPaused / DeploymentResumed (Unknown).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from controllers.common import conditions, objects
from controllers.deployment import replicas as rep
from controllers.deployment.context import SyncContext

AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

Obj = dict[str, Any]
_COUNT_FIELDS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                 "availableReplicas", "unavailableReplicas")


def new_condition(cond_type: str, status: str, reason: str, message: str, ctx: SyncContext) -> Obj:
    """NewDeploymentCondition: both times are now."""
    now = ctx.timestamp()
    return {"type": cond_type, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def has_progress_deadline(d: Obj) -> bool:
    value = objects.spec(d).get("progressDeadlineSeconds", 600)
    return value is not None and int(value) != rep.MAX_INT32


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, ctx: SyncContext) -> Obj:
    """calculateStatus, based on the scratch Deployment's current status and conditions."""
    d = ctx.deployment
    available = rep.status_count(all_rss, "availableReplicas")
    counts = {
        "observedGeneration": objects.generation(d),
        "replicas": rep.status_count(all_rss, "replicas"),
        "updatedReplicas": rep.status_count([new_rs], "replicas"),
        "readyReplicas": rep.status_count(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, rep.replica_count(all_rss) - available),
    }
    status: Obj = {k: v for k, v in counts.items() if v}
    if ctx.status.get("conditions"):
        status["conditions"] = copy.deepcopy(ctx.status["conditions"])
    if ctx.status.get("collisionCount") is not None:
        status["collisionCount"] = ctx.status["collisionCount"]
    if available >= ctx.replicas - rep.max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", ctx)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", ctx)
    conditions.set_condition(status, cond)
    return status


def count(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    """DeploymentComplete: all replicas updated and available, no old ones, spec observed."""
    replicas = objects.spec_replicas(d)
    return (count(status, "updatedReplicas") == replicas and count(status, "replicas") == replicas
            and count(status, "availableReplicas") == replicas
            and count(status, "observedGeneration") >= objects.generation(d))


def deployment_progressing(old: Obj, new: Obj) -> bool:
    """DeploymentProgressing: more updated, fewer old, more ready or more available pods."""
    old_old = count(old, "replicas") - count(old, "updatedReplicas")
    new_old = count(new, "replicas") - count(new, "updatedReplicas")
    return (count(new, "updatedReplicas") > count(old, "updatedReplicas") or new_old < old_old
            or count(new, "readyReplicas") > count(old, "readyReplicas")
            or count(new, "availableReplicas") > count(old, "availableReplicas"))


def deployment_timed_out(ctx: SyncContext, status: Obj) -> bool:
    """DeploymentTimedOut: the Progressing condition is older than progressDeadlineSeconds."""
    d = ctx.deployment
    if not has_progress_deadline(d):
        return False
    cond = conditions.get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = objects.parse_time(cond.get("lastUpdateTime")) or objects.ZERO_TIME
    return since + timedelta(seconds=int(objects.spec(d).get("progressDeadlineSeconds", 600))) < ctx.now


def same_status(a: Obj, b: Obj) -> bool:
    """Go's DeepEqual of two statuses, reading missing counts as 0 (omitempty)."""
    def normal(status: Obj) -> Obj:
        return {k: v for k, v in status.items() if v not in (0, None, [], {})}
    return normal(a) == normal(b)


def sync_deployment_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, ctx: SyncContext) -> None:
    """syncDeploymentStatus: the plain status (scaling and paused syncs)."""
    ctx.deployment["status"] = calculate_status(all_rss, new_rs, ctx)
