"""One sync of a Job (Controller.syncJob, Kubernetes 1.32), as a pure function.

    count pods -> decide the finished condition -> stop pods (finished) or manage pods
    -> status (active, ready, terminating, suspend) -> tracking plan (tracking.py)

Counting: succeeded/failed in the status plus the pods listed in
uncountedTerminatedPods plus terminal pods that still carry the tracking finalizer and
are not listed yet (or whose finalizer removal is already under way).

Finished condition (first that applies): an existing SuccessCriteriaMet; an existing
FailureTarget (-> Failed with its reason); a FailJob podFailurePolicy rule; more failures
than backoffLimit (or, for OnFailure, container restarts); activeDeadlineSeconds passed
since startTime; for Indexed Jobs then failed indexes (backoffLimitPerIndex) and a
matching successPolicy rule. A Job with a finished condition has its active pods deleted
(finalizers kept: after a failure they are counted failed); otherwise manage_job creates
or deletes pods, or waits out the pod failure backoff (global, or per index).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.common import pods as podutil
from controllers.common.actions import NORMAL, Event
from controllers.job import conditions as cond
from controllers.job import failure, indexes, jobpods, perindex, successpolicy
from controllers.job.backoff import BackoffRecord, new_backoff_record, remaining_seconds
from controllers.job.plan import JobCtx, SyncPlan
from controllers.job.tracking import plan_tracking

Obj = dict[str, Any]
MAX_POD_CREATE_DELETE_PER_SYNC = 500


def spec_int(job: Obj, name: str, default: int | None = None) -> int | None:
    value = objects.spec(job).get(name)
    return default if value is None else int(value)


def suspended(job: Obj) -> bool:
    return bool(objects.spec(job).get("suspend"))


def sync_job(job: Obj, pods: Sequence[Obj], *, now: datetime, backoff: BackoffRecord | None = None,
             expected_rm: set[str] | None = None, expectations_satisfied: bool = True) -> SyncPlan:
    """The plan for one sync of `job` given the pods it controls (after adoption)."""
    status = copy.deepcopy(objects.status(job))
    status.setdefault("uncountedTerminatedPods", {})
    plan = SyncPlan(status=status, backoff=backoff or BackoffRecord())
    if cond.is_finished(job):
        return plan
    work = {**job, "status": status}
    ctx = JobCtx(work, list(pods), now, set(expected_rm or ()))
    new_succeeded, new_failed = _count(ctx, plan)
    if status.get("startTime") is None and not suspended(job):
        status["startTime"] = objects.format_time(now)
    plan.backoff = new_backoff_record(plan.backoff, new_succeeded, new_failed, now)
    finished = _finished_condition(ctx, plan)
    if jobpods.is_indexed(job):
        completions = spec_int(job, "completions", 0) or 0
        ctx.prev_indexes = indexes.parse(status.get("completedIndexes"), completions)
        ctx.succeeded_indexes = ctx.prev_indexes | {
            jobpods.completion_index(p) for p in ctx.pods
            if jobpods.phase(p) == "Succeeded" and jobpods.valid_index(p, job) and jobpods.has_finalizer(p)}
        ctx.succeeded = len(ctx.succeeded_indexes)
        if perindex.enabled(job):
            finished = _per_index(ctx, finished)
        if finished is None:
            message = successpolicy.match(job, ctx.succeeded_indexes)
            if message is not None:
                finished = cond.new_condition(cond.SUCCESS_CRITERIA_MET, "True", successpolicy.REASON, message, now)
    active = len(ctx.active_pods)
    suspend_changed = False
    if finished is not None:
        plan.delete_active = list(ctx.active_pods)
        ctx.ready -= sum(1 for p in ctx.active_pods if podutil.is_ready(p))
        ctx.terminating += active
        active = 0
        if not expectations_satisfied:
            finished = None  # pods the cache does not show yet may still need counting
    else:
        manage_called = expectations_satisfied and not objects.being_deleted(job)
        if manage_called:
            active = manage_job(ctx, plan)
        completions = spec_int(job, "completions")
        complete = ctx.succeeded > 0 if completions is None else ctx.succeeded >= completions
        if complete and active == 0:
            finished = cond.new_condition(cond.SUCCESS_CRITERIA_MET, "True", *cond.COMPLETIONS_REACHED, now)
        elif manage_called:
            suspend_changed = _suspend_condition(ctx, plan)
    old = objects.status(job)
    plan.needs_flush = (suspend_changed or active != int(old.get("active") or 0)
                        or old.get("ready") != ctx.ready or old.get("terminating") != ctx.terminating)
    _set_count(status, "active", active)
    status["ready"] = ctx.ready
    status["terminating"] = ctx.terminating
    plan.terminating = ctx.terminating
    plan_tracking(ctx, plan, finished)
    return plan


def _set_count(status: Obj, name: str, value: int) -> None:
    """int32 counters with omitempty: zero is left out, as Kubernetes serialises them."""
    if value:
        status[name] = value
    else:
        status.pop(name, None)


def _count(ctx: JobCtx, plan: SyncPlan) -> tuple[list[Obj], list[Obj]]:
    job, status = ctx.job, plan.status
    ctx.active_pods = [p for p in ctx.pods if jobpods.is_active(p)]
    ctx.terminating = sum(1 for p in ctx.pods if jobpods.is_terminating(p))
    ctx.ready = sum(1 for p in ctx.active_pods if podutil.is_ready(p))
    uncounted = status["uncountedTerminatedPods"]
    unc_succeeded, unc_failed = set(uncounted.get("succeeded") or []), set(uncounted.get("failed") or [])
    new_succeeded = [p for p in ctx.pods if _uncounted_candidate(ctx, p, unc_succeeded)
                     and jobpods.phase(p) == "Succeeded"]
    new_failed = [p for p in ctx.pods if _uncounted_candidate(ctx, p, unc_failed) and jobpods.is_failed(p, job)]
    policy = objects.spec(job).get("podFailurePolicy")
    counted_failed = [p for p in new_failed if failure.match_pod_failure_policy(policy, p).count_failed]
    ctx.succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(unc_succeeded)
    ctx.failed = int(status.get("failed") or 0) + len(counted_failed) + len(unc_failed)
    return new_succeeded, new_failed


def _uncounted_candidate(ctx: JobCtx, pod: Obj, uncounted: set[str]) -> bool:
    """getValidPodsWithFilter: a tracked pod not listed yet (Indexed: with a valid index)."""
    uid = objects.uid(pod)
    if not jobpods.has_finalizer(pod) or uid in uncounted or uid in ctx.expected_rm:
        return False
    return not jobpods.is_indexed(ctx.job) or jobpods.valid_index(pod, ctx.job)


def _finished_condition(ctx: JobCtx, plan: SyncPlan) -> Obj | None:
    job, status, now = ctx.job, plan.status, ctx.now
    criteria = cond.find(status, cond.SUCCESS_CRITERIA_MET)
    if criteria is not None and criteria.get("status") == "True":
        return criteria
    target = cond.find(status, cond.FAILURE_TARGET)
    if target is not None and target.get("status") == "True":
        return cond.new_condition(cond.FAILED, "True", target.get("reason", ""), target.get("message", ""), now)
    message = failure.fail_job_message(job, ctx.pods, jobpods.is_failed)
    if message is not None:
        return cond.new_condition(cond.FAILURE_TARGET, "True", cond.POD_FAILURE_POLICY, message, now)
    if ctx.failed > (spec_int(job, "backoffLimit", 6) or 0) or failure.past_backoff_limit_on_failure(job, ctx.pods):
        return cond.new_condition(cond.FAILURE_TARGET, "True", *cond.BACKOFF_LIMIT_EXCEEDED, now)
    deadline = spec_int(job, "activeDeadlineSeconds")
    started = objects.parse_time(status.get("startTime"))
    if deadline is not None and started is not None and not suspended(job):
        left = deadline - (now - started).total_seconds()
        if left <= 0:
            return cond.new_condition(cond.FAILURE_TARGET, "True", *cond.DEADLINE_EXCEEDED, now)
        plan.requeue_after = left
    return None


def _per_index(ctx: JobCtx, finished: Obj | None) -> Obj | None:
    """Failed indexes, the Job failures they cause, and the pods kept for their counts."""
    job = ctx.job
    ctx.failed_indexes = perindex.failed_indexes(job, ctx.pods)
    failed = len(ctx.failed_indexes)
    if finished is None:
        max_failed = spec_int(job, "maxFailedIndexes")
        completions = spec_int(job, "completions", 0) or 0
        if max_failed is not None and failed > max_failed:
            finished = cond.new_condition(cond.FAILURE_TARGET, "True", *perindex.MAX_FAILED_INDEXES_EXCEEDED, ctx.now)
        elif failed > 0 and failed + len(ctx.succeeded_indexes) >= completions:
            finished = cond.new_condition(cond.FAILURE_TARGET, "True", *perindex.FAILED_INDEXES, ctx.now)
    ctx.delayed = perindex.pods_with_delayed_deletion(job, ctx.pods, ctx.active_pods, ctx.succeeded_indexes,
                                                      ctx.failed_indexes, ctx.now)
    return finished


def _suspend_condition(ctx: JobCtx, plan: SyncPlan) -> bool:
    status, now = plan.status, ctx.now
    if suspended(ctx.job):
        if cond.ensure(status, cond.SUSPENDED, "True", "JobSuspended", "Job suspended", now):
            plan.events.append(Event(NORMAL, "Suspended", "Job suspended"))
            return True
        return False
    if cond.ensure(status, cond.SUSPENDED, "False", "JobResumed", "Job resumed", now):
        plan.events.append(Event(NORMAL, "Resumed", "Job resumed"))
        # A resumed Job's activeDeadlineSeconds counts from now.
        status["startTime"] = objects.format_time(now)
        return True
    return False


def want_active(ctx: JobCtx, active: int) -> int:
    job = ctx.job
    parallelism = spec_int(job, "parallelism", 1) or 0
    completions = spec_int(job, "completions")
    if completions is None:
        return active if ctx.succeeded > 0 else parallelism
    return max(min(completions - ctx.succeeded, parallelism), 0)


def manage_job(ctx: JobCtx, plan: SyncPlan) -> int:
    """manageJob: delete (suspended, or too many) or create pods; returns the new active count."""
    job = ctx.job
    active = len(ctx.active_pods)
    if suspended(job):
        _delete_excess(ctx, plan, pods_for_removal(job, ctx.active_pods, active))
        return 0
    wanted = want_active(ctx, active)
    doomed = pods_for_removal(job, ctx.active_pods, max(active - wanted, 0))[:MAX_POD_CREATE_DELETE_PER_SYNC]
    if doomed:
        # Deleting and creating in one sync is never done; deletion wins.
        _delete_excess(ctx, plan, doomed)
        return active - len(doomed)
    blocking = ctx.terminating if jobpods.only_replace_failed(job) else 0
    diff = wanted - blocking - active
    if diff <= 0:
        return active
    wait = 0.0 if perindex.enabled(job) else remaining_seconds(plan.backoff, ctx.now)
    if wait > 0:
        plan.requeue_after = wait if plan.requeue_after is None else min(plan.requeue_after, wait)
        # Kubernetes 1.32 returns 0 here, so status.active reads 0 during the backoff even
        # while other pods of the Job run; kept for fidelity.
        return 0
    diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
    if perindex.enabled(job):
        plan.create = _per_index_creations(ctx, plan, first_pending_indexes(ctx, diff))
    elif jobpods.is_indexed(job):
        plan.create = [jobpods.pod_template(job, i) for i in first_pending_indexes(ctx, diff)]
    else:
        plan.create = [jobpods.pod_template(job) for _ in range(diff)]
    return active + len(plan.create)


def _per_index_creations(ctx: JobCtx, plan: SyncPlan, pending: list[int]) -> list[tuple[Obj, str]]:
    """getPodCreationInfoForIndependentIndexes: indexes whose own backoff has passed, each
    pod carrying its index's failure counts; else a requeue for the soonest."""
    ready, waits = [], []
    for index in pending:
        wait = perindex.remaining_seconds(ctx.delayed.get(index), ctx.now)
        if wait > 0:
            waits.append(wait)
        else:
            ready.append(index)
    if not ready and waits:
        plan.requeue_after = min(waits) if plan.requeue_after is None else min(plan.requeue_after, *waits)
    return [jobpods.pod_template(ctx.job, i, perindex.replacement_annotations(ctx.job, ctx.delayed.get(i)))
            for i in ready]


def _delete_excess(ctx: JobCtx, plan: SyncPlan, doomed: list[Obj]) -> None:
    plan.delete_excess = doomed
    ctx.terminating += len(doomed)
    ctx.ready -= sum(1 for p in doomed if podutil.is_ready(p))


def pods_for_removal(job: Obj, active_pods: Sequence[Obj], at_least: int) -> list[Obj]:
    """activePodsForRemoval: Indexed Jobs first lose pods with a bad or repeated index;
    then the least advanced pods go (not ready before ready, pending before running)."""
    remove: list[Obj] = []
    left = list(active_pods)
    if jobpods.is_indexed(job):
        remove, left = _duplicated_index_pods(job, left)
    if len(remove) < at_least:
        ranked = podutil.rank_for_deletion(left)
        remove += ranked[:at_least - len(remove)]
    return remove


def _duplicated_index_pods(job: Obj, active_pods: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    by_index: dict[int, list[Obj]] = {}
    remove: list[Obj] = []
    for pod in active_pods:
        if not jobpods.valid_index(pod, job):
            remove.append(pod)
        else:
            by_index.setdefault(jobpods.completion_index(pod), []).append(pod)
    left = []
    for group in by_index.values():
        ranked = podutil.rank_for_deletion(group)
        remove += ranked[:-1]
        left.append(ranked[-1])
    return remove, left


def first_pending_indexes(ctx: JobCtx, count: int) -> list[int]:
    """The lowest indexes that neither succeeded nor have an active pod."""
    completions = spec_int(ctx.job, "completions", 0) or 0
    taken = set(ctx.succeeded_indexes)
    taken |= {jobpods.completion_index(p) for p in ctx.active_pods if jobpods.valid_index(p, ctx.job)}
    taken |= ctx.failed_indexes or set()
    return [i for i in range(completions) if i not in taken][:count]
