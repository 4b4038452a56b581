"""The CronJob state machine as pure code on a fixed clock (no API server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.common import objects
from controllers.cronjob import schedule as sched
from controllers.cronjob.sync import SCHEDULED_TIMESTAMP_ANNOTATION, sync_cronjob

Obj = dict[str, Any]
CREATED = datetime(2025, 1, 1, 11, 59, 30, tzinfo=UTC)
_seq = iter(range(10**6))


def make_cronjob(status: Obj | None = None, **spec: Any) -> Obj:
    full: Obj = {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                 "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                                "containers": [{"name": "c", "image": "b"}]}}}}}
    full.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid",
                         "creationTimestamp": objects.format_time(CREATED)},
            "spec": full, "status": status or {}}


def make_job(name: str | None = None, *, finished: str | None = None, start: datetime | None = None,
             completion: datetime | None = None) -> Obj:
    n = next(_seq)
    status: Obj = {}
    if start is not None:
        status["startTime"] = objects.format_time(start)
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
        if finished == "Complete" and completion is not None:
            status["completionTime"] = objects.format_time(completion)
    return {"metadata": {"name": name or f"tick-{n}", "namespace": "default", "uid": f"job-{n}",
                         "ownerReferences": [{"kind": "CronJob", "uid": "cj-uid", "controller": True}]},
            "status": status}


def ref(job: Obj) -> Obj:
    return {"kind": "Job", "name": objects.name(job), "namespace": "default", "uid": objects.uid(job)}


def at(h: int, m: int, s: float = 0) -> datetime:
    return datetime(2025, 1, 1, h, m, tzinfo=UTC) + timedelta(seconds=s)


def test_nothing_before_the_first_schedule_time_and_requeue_just_after_it() -> None:
    plan = sync_cronjob(make_cronjob(), [], now=at(11, 59, 45))
    assert plan.create_job is None and plan.events == []
    assert plan.requeue_after == pytest.approx(15.1)


def test_fires_on_schedule_with_name_annotation_and_owner() -> None:
    plan = sync_cronjob(make_cronjob(), [], now=at(12, 0, 0.5))
    job = plan.create_job
    assert job is not None
    minutes = int(at(12, 0).timestamp()) // 60
    assert job["metadata"]["name"] == f"tick-{minutes}"
    assert job["metadata"]["annotations"] == {SCHEDULED_TIMESTAMP_ANNOTATION: "2025-01-01T12:00:00Z"}
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["ownerReferences"][0] == {"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
                                                     "uid": "cj-uid", "controller": True, "blockOwnerDeletion": True}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert plan.status["lastScheduleTime"] == "2025-01-01T12:00:00Z"
    assert plan.requeue_after == pytest.approx(59.6)


def test_time_zone_shifts_the_schedule_and_the_annotation() -> None:
    cj = make_cronjob(schedule="30 13 * * *", timeZone="Europe/Berlin")  # 12:30 UTC in winter
    assert sync_cronjob(cj, [], now=at(12, 29)).create_job is None
    job = sync_cronjob(cj, [], now=at(12, 30, 1)).create_job
    assert job and job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2025-01-01T13:30:00+01:00"


def test_already_started_time_is_not_started_twice() -> None:
    cj = make_cronjob(status={"lastScheduleTime": "2025-01-01T12:00:00Z"})
    assert sync_cronjob(cj, [], now=at(12, 0, 30)).create_job is None


def test_forbid_skips_while_a_job_runs() -> None:
    running = make_job()
    cj = make_cronjob(concurrencyPolicy="Forbid", status={"active": [ref(running)],
                                                          "lastScheduleTime": "2025-01-01T12:00:00Z"})
    plan = sync_cronjob(cj, [running], now=at(12, 1, 1))
    assert plan.create_job is None
    assert [(e.reason, e.message) for e in plan.events] == [(
        "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")]


def test_replace_deletes_the_running_job_first() -> None:
    running = make_job()
    cj = make_cronjob(concurrencyPolicy="Replace", status={"active": [ref(running)],
                                                           "lastScheduleTime": "2025-01-01T12:00:00Z"})
    plan = sync_cronjob(cj, [running], now=at(12, 1, 1))
    assert plan.delete_jobs == [objects.name(running)] and plan.create_job is not None
    assert "active" not in plan.status


def test_allow_runs_concurrently() -> None:
    running = make_job()
    cj = make_cronjob(status={"active": [ref(running)], "lastScheduleTime": "2025-01-01T12:00:00Z"})
    plan = sync_cronjob(cj, [running], now=at(12, 1, 1))
    assert plan.create_job is not None and plan.delete_jobs == []


def test_start_time_older_than_the_starting_deadline_is_skipped() -> None:
    """The search for unmet times starts at now - startingDeadlineSeconds, so a time
    missed by more than that is simply not a candidate (MissSchedule is only the guard
    for a time found but already too old)."""
    cj = make_cronjob(schedule="0 * * * *", startingDeadlineSeconds=10,
                      status={"lastScheduleTime": "2025-01-01T11:00:00Z"})
    plan = sync_cronjob(cj, [], now=at(12, 0, 20))
    assert plan.create_job is None and plan.events == []
    assert plan.requeue_after == pytest.approx(3600 - 20 + 0.1)
    assert sync_cronjob(cj, [], now=at(12, 0, 5)).create_job is not None


def test_too_many_missed_start_times_warns_but_runs_the_latest() -> None:
    cj = make_cronjob(status={"lastScheduleTime": "2025-01-01T10:00:00Z"})
    plan = sync_cronjob(cj, [], now=at(12, 0, 1))
    assert [(e.type, e.reason, e.message) for e in plan.events] == [(
        "Warning", "TooManyMissedTimes",
        "too many missed start times: 120. Set or decrease .spec.startingDeadlineSeconds or check clock skew")]
    assert plan.create_job and plan.create_job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == \
        "2025-01-01T12:00:00Z"


def test_suspended_cronjob_starts_nothing() -> None:
    plan = sync_cronjob(make_cronjob(suspend=True), [], now=at(12, 5))
    assert plan.create_job is None and plan.requeue_after is None


def test_completed_job_leaves_active_and_sets_last_successful_time() -> None:
    done = make_job(finished="Complete", start=at(12, 0), completion=at(12, 0, 20))
    cj = make_cronjob(status={"active": [ref(done)], "lastScheduleTime": "2025-01-01T12:00:00Z"})
    plan = sync_cronjob(cj, [done], now=at(12, 0, 30))
    assert "active" not in plan.status and plan.status["lastSuccessfulTime"] == "2025-01-01T12:00:20Z"
    assert [(e.reason, e.message) for e in plan.events] == [
        ("SawCompletedJob", f"Saw completed job: {objects.name(done)}, condition: Complete")]
    assert plan.update_status


def test_missing_active_job_is_dropped() -> None:
    gone = make_job()
    cj = make_cronjob(status={"active": [ref(gone)], "lastScheduleTime": "2025-01-01T12:00:00Z"})
    plan = sync_cronjob(cj, [], now=at(12, 0, 30), missing={objects.uid(gone)})
    assert "active" not in plan.status
    assert [(e.reason, e.message) for e in plan.events] == [("MissingJob", f"Active job went missing: {objects.name(gone)}")]


def test_unexpected_job_is_reported() -> None:
    stray = make_job("manual")
    plan = sync_cronjob(make_cronjob(status={"lastScheduleTime": "2025-01-01T12:00:00Z"}), [stray],
                        now=at(12, 0, 30))
    assert [(e.reason, e.message) for e in plan.events] == [
        ("UnexpectedJob", "Saw a job that the controller did not create or forgot: manual")]


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    complete = [make_job(f"ok-{i}", finished="Complete", start=at(10, i)) for i in range(5)]
    failed = [make_job(f"bad-{i}", finished="Failed", start=at(11, i)) for i in range(3)]
    plan = sync_cronjob(make_cronjob(status={"lastScheduleTime": "2025-01-01T12:00:00Z"}),
                        [*complete, *failed], now=at(12, 0, 30))
    assert plan.delete_jobs == ["ok-0", "ok-1", "bad-0", "bad-1"]


@pytest.mark.parametrize(("spec", "reason", "message"), [
    pytest.param({"schedule": "* * *"}, "UnparseableSchedule",
                 'unparseable schedule: "* * *" : expected exactly 5 fields, found 3: [* * *]', id="fields"),
    pytest.param({"timeZone": "Mars/Olympus"}, "UnknownTimeZone", None, id="zone"),
])
def test_unusable_schedules_are_reported(spec: Obj, reason: str, message: str | None) -> None:
    plan = sync_cronjob(make_cronjob(**spec), [], now=at(12, 5))
    assert plan.create_job is None and plan.requeue_after is None
    assert [e.reason for e in plan.events] == [reason]
    if message:
        assert plan.events[0].message == message


def test_tz_prefix_works_but_is_unsupported() -> None:
    plan = sync_cronjob(make_cronjob(schedule="CRON_TZ=Europe/Berlin 0 13 * * *"), [], now=at(12, 0, 1))
    assert plan.events[0].reason == "UnsupportedSchedule"
    assert plan.create_job is not None


def test_descriptors_parse() -> None:
    schedule = sched.parse(make_cronjob(schedule="@hourly"))
    assert schedule.next_after(at(12, 0)) == at(13, 0)


def test_every_descriptor_is_a_constant_delay() -> None:
    cj = make_cronjob(schedule="@every 90s")
    assert sync_cronjob(cj, [], now=at(12, 0, 59)).create_job is None  # created 11:59:30, due 12:01:00
    plan = sync_cronjob(cj, [], now=at(12, 1, 0))
    assert plan.create_job is not None and plan.status["lastScheduleTime"] == "2025-01-01T12:01:00Z"
    assert plan.requeue_after == pytest.approx(90.1)


def test_bad_every_duration_is_unparseable() -> None:
    plan = sync_cronjob(make_cronjob(schedule="@every 2x"), [], now=at(12, 5))
    assert [(e.reason, e.message) for e in plan.events] == [(
        "UnparseableSchedule",
        'unparseable schedule: "@every 2x" : failed to parse duration @every 2x: time: invalid duration "2x"')]
