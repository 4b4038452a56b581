"""One sync of a CronJob (ControllerV2.syncCronJob + cleanupFinishedJobs), as a pure function.

    reconcile status.active with the Jobs it controls (SawCompletedJob, UnexpectedJob,
    MissingJob; lastSuccessfulTime) -> stop if being deleted, the zone or schedule is
    unusable, or suspended -> find the most recent unmet schedule time -> too late for
    startingDeadlineSeconds (MissSchedule), already started, or Forbid with a Job running
    (JobAlreadyActive) -> Replace deletes the running Jobs -> create
    `<cronjob>-<minutes>` (SuccessfulCreate) -> history cleanup -> requeue for the next time.

The Jobs are created, deleted and the status written by the controller; creating and
deleting are assumed to succeed here (a failure stops that sync and retries).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common import objects, ownership
from controllers.common.actions import NORMAL, WARNING, Event
from controllers.cronjob import schedule as sched
from controllers.job import conditions as jobcond

Obj = dict[str, Any]
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


@dataclass
class CronPlan:
    status: Obj
    update_status: bool = False
    events: list[Event] = field(default_factory=list)
    delete_jobs: list[str] = field(default_factory=list)  # names, propagationPolicy Background
    create_job: Obj | None = None
    requeue_after: float | None = None


def job_reference(job: Obj) -> Obj:
    """The ObjectReference kept in status.active (ref.GetReference of the created Job)."""
    meta = objects.metadata(job)
    return {"kind": "Job", "namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid"),
            "apiVersion": "batch/v1", "resourceVersion": meta.get("resourceVersion")}


def finished_condition(job: Obj) -> str | None:
    status = objects.status(job)
    for cond_type in (jobcond.COMPLETE, jobcond.FAILED):
        if jobcond.is_true(status, cond_type):
            return cond_type
    return None


def sync_cronjob(cronjob: Obj, jobs: Sequence[Obj], *, now: datetime, missing: Iterable[str] = ()) -> CronPlan:
    """The plan for one sync. `jobs`: the Jobs this CronJob controls; `missing`: uids in
    status.active that the API server says are gone (the controller checks with GETs)."""
    plan = CronPlan(status=copy.deepcopy(objects.status(cronjob)))
    _reconcile_children(cronjob, jobs, plan, set(missing))
    if not objects.being_deleted(cronjob):
        _schedule(cronjob, now, plan)
    cleanup_finished_jobs(cronjob, jobs, plan)
    return plan


def _active_uids(plan: CronPlan) -> set[str]:
    return {str(ref.get("uid")) for ref in plan.status.get("active") or []}


def _remove_active(plan: CronPlan, uid: str) -> None:
    kept = [ref for ref in plan.status.get("active") or [] if ref.get("uid") != uid]
    if kept:
        plan.status["active"] = kept
    else:
        plan.status.pop("active", None)
    plan.update_status = True


def _reconcile_children(cronjob: Obj, jobs: Sequence[Obj], plan: CronPlan, missing: set[str]) -> None:
    last_success = objects.parse_time(plan.status.get("lastSuccessfulTime"))
    for job in jobs:
        uid, finished = objects.uid(job), finished_condition(job)
        found = uid in _active_uids(plan)
        if not found and finished is None:
            plan.events.append(Event(WARNING, "UnexpectedJob",
                                     f"Saw a job that the controller did not create or forgot: {objects.name(job)}"))
        elif found and finished is not None:
            _remove_active(plan, uid)
            plan.events.append(Event(NORMAL, "SawCompletedJob",
                                     f"Saw completed job: {objects.name(job)}, condition: {finished}"))
        if finished == jobcond.COMPLETE:
            completed = objects.parse_time(objects.status(job).get("completionTime"))
            if completed is not None and (last_success is None or completed > last_success):
                last_success = completed
                plan.status["lastSuccessfulTime"] = objects.format_time(completed)
                plan.update_status = True
    known = {objects.uid(j) for j in jobs}
    for ref in list(plan.status.get("active") or []):
        uid = str(ref.get("uid"))
        if uid not in known and uid in missing:
            plan.events.append(Event(NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}"))
            _remove_active(plan, uid)


def _schedule(cronjob: Obj, now: datetime, plan: CronPlan) -> None:
    spec = objects.spec(cronjob)
    if spec.get("timeZone"):
        try:
            sched.load_zone(spec["timeZone"])
        except sched.ScheduleError as exc:
            plan.events.append(Event(WARNING, "UnknownTimeZone", str(exc)))
            return
    if spec.get("suspend"):
        return
    if sched.uses_tz_prefix(cronjob):
        plan.events.append(Event(WARNING, "UnsupportedSchedule",
                                 f"CRON_TZ or TZ used in schedule \"{spec.get('schedule')}\" is not officially "
                                 "supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/"
                                 " for more details"))
    try:
        schedule = sched.parse(cronjob)
    except sched.ScheduleError as exc:
        plan.events.append(Event(WARNING, "UnparseableSchedule", str(exc)))
        return
    view = {**cronjob, "status": plan.status}
    missed = sched.most_recent_schedule_time(view, now, schedule)
    if missed.count > MAX_MISSED:
        plan.events.append(Event(WARNING, "TooManyMissedTimes",
                                 f"too many missed start times: {missed.count}. Set or decrease "
                                 ".spec.startingDeadlineSeconds or check clock skew"))
    plan.requeue_after = sched.next_schedule_delay(view, now, schedule)
    scheduled = missed.most_recent
    if scheduled is None:
        return
    _start(cronjob, schedule, scheduled, now, plan)


def _start(cronjob: Obj, schedule: sched.Schedule, scheduled: datetime, now: datetime, plan: CronPlan) -> None:
    spec = objects.spec(cronjob)
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and (now - scheduled).total_seconds() > int(deadline):
        plan.events.append(Event(NORMAL, "MissSchedule",
                                 f"Missed scheduled time to start a job: {sched.rfc1123z(scheduled)}"))
        return
    name = sched.job_name(cronjob, scheduled)
    if any(ref.get("name") == name for ref in plan.status.get("active") or []) \
            or objects.parse_time(plan.status.get("lastScheduleTime")) == scheduled:
        return  # this time was already handled
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and plan.status.get("active"):
        plan.events.append(Event(NORMAL, "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid"))
        return
    if policy == "Replace":
        for ref in list(plan.status.get("active") or []):
            plan.delete_jobs.append(str(ref.get("name")))
            _remove_active(plan, str(ref.get("uid")))
    plan.create_job = job_from_template(cronjob, schedule, scheduled)
    plan.status["lastScheduleTime"] = objects.format_time(scheduled)
    plan.update_status = True


def job_from_template(cronjob: Obj, schedule: sched.Schedule, scheduled: datetime) -> Obj:
    """getJobFromTemplate2: the template's labels, annotations and spec, our controllerRef,
    and the scheduled time (in the CronJob's zone) as an annotation."""
    template = objects.spec(cronjob).get("jobTemplate") or {}
    meta = template.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = sched.rfc3339_in(scheduled, schedule.zone)
    metadata: Obj = {"name": sched.job_name(cronjob, scheduled), "namespace": objects.namespace(cronjob),
                     "annotations": annotations,
                     "ownerReferences": [ownership.controller_ref(cronjob, api_version="batch/v1", kind="CronJob")]}
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": copy.deepcopy(template.get("spec") or {})}


def cleanup_finished_jobs(cronjob: Obj, jobs: Sequence[Obj], plan: CronPlan) -> None:
    """Keep at most successfulJobsHistoryLimit Complete and failedJobsHistoryLimit Failed Jobs."""
    spec = objects.spec(cronjob)
    limits = {jobcond.COMPLETE: spec.get("successfulJobsHistoryLimit"),
              jobcond.FAILED: spec.get("failedJobsHistoryLimit")}
    if all(v is None for v in limits.values()):
        return
    for cond_type, limit in limits.items():
        if limit is None:
            continue
        done = [j for j in jobs if finished_condition(j) == cond_type and objects.name(j) not in plan.delete_jobs]
        excess = len(done) - int(limit)
        for job in sorted(done, key=_start_time_order)[:max(excess, 0)]:
            plan.delete_jobs.append(objects.name(job))
            if objects.uid(job) in _active_uids(plan):
                _remove_active(plan, objects.uid(job))


def _start_time_order(job: Obj) -> tuple[int, datetime, str]:
    """byJobStartTime: oldest start first, Jobs without a start time after them, then names."""
    started = objects.parse_time(objects.status(job).get("startTime"))
    return (1, objects.ZERO_TIME, objects.name(job)) if started is None else (0, started, objects.name(job))
