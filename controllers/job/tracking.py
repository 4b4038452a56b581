"""Pod outcomes into the Job status through the tracking finalizer
(trackJobStatusAndRemoveFinalizers, flushUncountedAndRemoveFinalizers, enactJobFinished).

1. Terminal pods that still carry `batch.kubernetes.io/job-tracking` (and every pod once
   the Job has a failure target) are listed in status.uncountedTerminatedPods, or for
   Indexed Jobs their index joins status.completedIndexes; the interim FailureTarget /
   SuccessCriteriaMet condition is added. This status is written first (`plan_tracking`).
2. Their finalizers are removed (the controller does that).
3. Listed uids whose pods no longer carry the finalizer move into succeeded/failed
   (`clean_uncounted`); once nothing is uncounted and no pod is terminating, the
   Complete / Failed condition is added, with completionTime for Complete (`enact_finished`).
Writing the uid before removing the finalizer means a crash between the two never loses
nor double-counts a pod.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.job import conditions as cond
from controllers.job import failure, indexes, jobpods
from controllers.job.plan import JobCtx, SyncPlan

Obj = dict[str, Any]
MAX_UNCOUNTED_PODS = 500


def plan_tracking(ctx: JobCtx, plan: SyncPlan, finished: Obj | None) -> None:
    """Steps 1 and the preparation of 2 and 3 (see the module docstring), on `plan`."""
    job, status = ctx.job, plan.status
    indexed = jobpods.is_indexed(job)
    pods = sorted(ctx.pods, key=jobpods.completion_index) if indexed else ctx.pods
    plan.uids_with_finalizer = {objects.uid(p) for p in pods
                                if jobpods.has_finalizer(p) and objects.uid(p) not in ctx.expected_rm}
    if clean_uncounted(status, plan.uids_with_finalizer):
        plan.needs_flush = True
    uncounted = status["uncountedTerminatedPods"]
    unc_succeeded, unc_failed = list(uncounted.get("succeeded") or []), list(uncounted.get("failed") or [])
    new_indexes: list[int] = []
    policy = objects.spec(job).get("podFailurePolicy")
    failing_all = finished is not None and finished.get("type") != cond.SUCCESS_CRITERIA_MET
    for pod in pods:
        uid = objects.uid(pod)
        if not jobpods.has_finalizer(pod) or uid in ctx.expected_rm:
            continue  # counted in an earlier sync
        considered_failed = jobpods.is_failed(pod, job)
        if not can_remove_finalizer(ctx, pod, considered_failed, finished):
            continue
        plan.remove_finalizers.append(pod)
        index = jobpods.completion_index(pod)
        if jobpods.phase(pod) == "Succeeded" and uid not in unc_failed:
            if indexed:
                if jobpods.valid_index(pod, job) and index not in ctx.prev_indexes:
                    new_indexes.append(index)
                    plan.needs_flush = True
            elif uid not in unc_succeeded:
                unc_succeeded.append(uid)
                plan.needs_flush = True
        elif (considered_failed or failing_all) and uid not in unc_failed \
                and (not indexed or jobpods.valid_index(pod, job)):
            if failure.match_pod_failure_policy(policy, pod).count_failed:
                unc_failed.append(uid)
                plan.needs_flush = True
        if len(new_indexes) + len(unc_succeeded) + len(unc_failed) >= MAX_UNCOUNTED_PODS:
            plan.reached_max_uncounted = True  # the next sync carries on
            break
    _set_uncounted(status, unc_succeeded, unc_failed)
    if indexed:
        _set_completed_indexes(ctx, plan, new_indexes)
    if ctx.failed_indexes is not None:
        text = indexes.format_indexes(ctx.failed_indexes)
        if status.get("failedIndexes") != text:
            status["failedIndexes"] = text
            plan.needs_flush = True
    plan.finished_condition = _interim_condition(status, plan, finished, ctx.now)


def can_remove_finalizer(ctx: JobCtx, pod: Obj, considered_failed: bool, finished: Obj | None) -> bool:
    """canRemoveFinalizer: the Job is going away or finished, the pod succeeded, or it
    failed and is not the pod an index's replacement still has to take its count from."""
    if objects.being_deleted(ctx.job) or finished is not None or jobpods.phase(pod) == "Succeeded":
        return True
    if not considered_failed:
        return False
    delayed = ctx.delayed.get(jobpods.completion_index(pod))
    return delayed is None or objects.uid(delayed) != objects.uid(pod)


def _set_uncounted(status: Obj, succeeded: list[str], failed: list[str]) -> None:
    uncounted: Obj = {}
    if succeeded:
        uncounted["succeeded"] = succeeded
    if failed:
        uncounted["failed"] = failed
    status["uncountedTerminatedPods"] = uncounted


def _set_completed_indexes(ctx: JobCtx, plan: SyncPlan, new_indexes: list[int]) -> None:
    status = plan.status
    done = ctx.succeeded_indexes | set(new_indexes)
    text = indexes.format_indexes(done)
    if text != (status.get("completedIndexes") or ""):
        plan.needs_flush = True
    if text:
        status["completedIndexes"] = text
    else:
        status.pop("completedIndexes", None)
    if done:
        status["succeeded"] = len(done)
    else:
        status.pop("succeeded", None)


def _interim_condition(status: Obj, plan: SyncPlan, finished: Obj | None, now: datetime) -> Obj | None:
    """Write FailureTarget / SuccessCriteriaMet now; return the terminal condition to add later."""
    if finished is None:
        return None
    if finished.get("type") == cond.FAILURE_TARGET:
        status.setdefault("conditions", []).append(finished)
        plan.needs_flush = True
        return cond.new_condition(cond.FAILED, "True", finished.get("reason", ""), finished.get("message", ""), now)
    if finished.get("type") == cond.SUCCESS_CRITERIA_MET:
        if not cond.is_true(status, cond.SUCCESS_CRITERIA_MET):
            status.setdefault("conditions", []).append(finished)
            plan.needs_flush = True
        return cond.new_condition(cond.COMPLETE, "True", finished.get("reason", ""), finished.get("message", ""), now)
    return finished


def clean_uncounted(status: Obj, uids_with_finalizer: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: listed pods whose finalizer is gone are counted."""
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        listed = list(uncounted.get(field) or [])
        kept = [uid for uid in listed if uid in uids_with_finalizer]
        if len(kept) == len(listed):
            continue
        changed = True
        status[counter] = int(status.get(counter) or 0) + len(listed) - len(kept)
        if kept:
            uncounted[field] = kept
        else:
            uncounted.pop(field, None)
    return changed


def enact_finished(status: Obj, finished: Obj | None, terminating: int, now: datetime) -> bool:
    """Add the terminal condition once nothing is uncounted or terminating; True if added."""
    if finished is None:
        return False
    uncounted = status.get("uncountedTerminatedPods") or {}
    if uncounted.get("succeeded") or uncounted.get("failed") or terminating > 0:
        return False
    cond.ensure(status, finished["type"], finished["status"], finished.get("reason", ""),
                finished.get("message", ""), now)
    if finished["type"] == cond.COMPLETE:
        status["completionTime"] = cond.find(status, cond.COMPLETE)["lastTransitionTime"]  # type: ignore[index]
    return True
