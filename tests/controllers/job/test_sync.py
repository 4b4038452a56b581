"""The Job state machine as pure code: sync_job plans, then tracking settles, on a fixed
clock (no API server)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.common import objects
from controllers.job import indexes, jobpods, perindex
from controllers.job.backoff import BackoffRecord, new_backoff_record, remaining_seconds
from controllers.job.successpolicy import match
from controllers.job.sync import sync_job
from controllers.job.tracking import clean_uncounted, enact_finished
from controllers.job.ttl import seconds_until_expiry

Obj = dict[str, Any]
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
STAMP = objects.format_time(NOW)
_seq = iter(range(10**6))


def make_job(status: Obj | None = None, **spec: Any) -> Obj:
    """A Job as the API server stores it (defaults filled in)."""
    full: Obj = {"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                 "suspend": False, "podReplacementPolicy": "TerminatingOrFailed",
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
                 "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "job-uid",
                                                      "job-name": "pi"}},
                              "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "b"}]}}}
    full.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid", "generation": 1},
            "spec": full, "status": status or {}}


def make_pod(phase: str = "Running", *, ready: bool = False, finalizer: bool = True, index: int | None = None,
             exit_code: int | None = None, deleting: bool = False, finished: datetime = NOW,
             restarts: int = 0, node: str = "n1") -> Obj:
    n = next(_seq)
    meta: Obj = {"name": f"pi-{n}", "namespace": "default", "uid": f"pod-{n}",
                 "creationTimestamp": STAMP, "labels": {"batch.kubernetes.io/controller-uid": "job-uid"},
                 "ownerReferences": [{"kind": "Job", "name": "pi", "uid": "job-uid", "controller": True}]}
    if finalizer:
        meta["finalizers"] = [jobpods.TRACKING_FINALIZER]
    if index is not None:
        meta["annotations"] = {jobpods.INDEX_ANNOTATION: str(index)}
    if deleting:
        meta["deletionTimestamp"] = STAMP
    state: Obj = {"running": {"startedAt": STAMP}}
    if phase in ("Succeeded", "Failed"):
        state = {"terminated": {"exitCode": exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1),
                                "finishedAt": objects.format_time(finished)}}
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "main", "state": state, "restartCount": restarts}]}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": STAMP}]
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "main"}]}, "status": status}


def condition(status: Obj, cond_type: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == cond_type), None)


def settle(plan: Any, removed_ok: bool = True) -> tuple[Obj, bool]:
    """What the controller does after the first flush: finalizers removed, counters moved,
    terminal condition added when possible."""
    status = copy.deepcopy(plan.status)
    removed = {objects.uid(p) for p in plan.remove_finalizers} if removed_ok else set()
    clean_uncounted(status, plan.uids_with_finalizer - removed)
    finished = enact_finished(status, plan.finished_condition, plan.terminating, NOW)
    return status, finished


def test_new_job_creates_parallelism_pods_with_the_tracking_finalizer() -> None:
    plan = sync_job(make_job(parallelism=2, completions=5), [], now=NOW)
    assert len(plan.create) == 2
    template, generate_name = plan.create[0]
    assert generate_name == "pi-"
    assert template["metadata"]["finalizers"] == [jobpods.TRACKING_FINALIZER]
    assert plan.status["startTime"] == STAMP and plan.status["active"] == 2
    assert plan.status["ready"] == 0 and plan.status["terminating"] == 0
    assert plan.status["uncountedTerminatedPods"] == {} and plan.needs_flush


def test_active_pods_never_exceed_remaining_completions() -> None:
    job = make_job(parallelism=5, completions=3, status={"startTime": STAMP, "succeeded": 2})
    plan = sync_job(job, [], now=NOW)
    assert len(plan.create) == 1


def test_suspended_job_created_suspended_gets_no_start_time_and_no_pods() -> None:
    plan = sync_job(make_job(suspend=True), [], now=NOW)
    assert plan.create == [] and "startTime" not in plan.status
    suspended = condition(plan.status, "Suspended")
    assert suspended and suspended["status"] == "True" and suspended["reason"] == "JobSuspended"
    assert [(e.reason, e.message) for e in plan.events] == [("Suspended", "Job suspended")]


def test_succeeded_pod_is_tracked_through_uncounted_then_counted() -> None:
    pod = make_pod("Succeeded")
    job = make_job(parallelism=2, completions=2, status={"startTime": STAMP, "active": 2})
    running = make_pod("Running", ready=True)
    plan = sync_job(job, [pod, running], now=NOW)
    assert plan.status["uncountedTerminatedPods"] == {"succeeded": [objects.uid(pod)]}
    assert [objects.uid(p) for p in plan.remove_finalizers] == [objects.uid(pod)]
    assert plan.create == [] and plan.finished_condition is None
    status, finished = settle(plan)
    assert status["succeeded"] == 1 and status["uncountedTerminatedPods"] == {} and not finished


def test_a_pod_whose_finalizer_removal_is_pending_is_not_counted_twice() -> None:
    pod = make_pod("Succeeded")
    job = make_job(parallelism=2, completions=2, status={"startTime": STAMP, "succeeded": 1, "active": 1})
    plan = sync_job(job, [pod, make_pod()], now=NOW, expected_rm={objects.uid(pod)})
    assert plan.status["uncountedTerminatedPods"] == {} and plan.remove_finalizers == []
    assert plan.status["succeeded"] == 1


def test_completion_writes_success_criteria_met_then_complete() -> None:
    job = make_job(completions=1, status={"startTime": STAMP, "succeeded": 1})
    plan = sync_job(job, [make_pod("Succeeded", finalizer=False)], now=NOW)
    criteria = condition(plan.status, "SuccessCriteriaMet")
    assert criteria and criteria["reason"] == "CompletionsReached"
    assert criteria["message"] == "Reached expected number of succeeded pods"
    assert plan.finished_condition and plan.finished_condition["type"] == "Complete"
    status, finished = settle(plan)
    assert finished and status["completionTime"] == STAMP
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]


def test_completion_waits_for_uncounted_pods() -> None:
    pod = make_pod("Succeeded")
    plan = sync_job(make_job(status={"startTime": STAMP, "active": 1}), [pod], now=NOW)
    assert condition(plan.status, "SuccessCriteriaMet")  # interim, written with the uncounted uid
    status, finished = settle(plan, removed_ok=False)
    assert not finished and condition(status, "Complete") is None
    status, finished = settle(plan)
    assert finished and status["succeeded"] == 1


def test_failure_waits_for_the_pod_failure_backoff_on_the_clock() -> None:
    failed = make_pod("Failed", finished=NOW - timedelta(seconds=4))
    job = make_job(status={"startTime": STAMP, "active": 1})
    plan = sync_job(job, [failed], now=NOW)
    assert plan.create == [] and plan.requeue_after == pytest.approx(6.0)
    assert plan.status.get("active", 0) == 0
    assert plan.backoff == BackoffRecord(1, NOW - timedelta(seconds=4))
    later = sync_job(job, [failed], now=NOW + timedelta(seconds=6), backoff=plan.backoff,
                     expected_rm={objects.uid(failed)})
    assert len(later.create) == 1


@pytest.mark.parametrize(("failures", "delay"), [
    pytest.param(1, 10.0, id="first"), pytest.param(2, 20.0, id="doubles"),
    pytest.param(3, 40.0, id="again"), pytest.param(12, 600.0, id="capped-at-10-minutes")])
def test_backoff_delay_doubles_up_to_the_cap(failures: int, delay: float) -> None:
    assert remaining_seconds(BackoffRecord(failures, NOW), NOW) == delay


def test_status_active_reads_zero_during_the_backoff_as_in_kubernetes_1_32() -> None:
    job = make_job(parallelism=2, completions=4, status={"startTime": STAMP, "active": 2})
    plan = sync_job(job, [make_pod("Failed"), make_pod("Running", ready=True)], now=NOW)
    assert plan.create == [] and plan.status.get("active", 0) == 0 and plan.status["ready"] == 1


def test_a_success_resets_the_backoff() -> None:
    record = BackoffRecord(3, NOW - timedelta(seconds=30))
    after = new_backoff_record(record, [make_pod("Succeeded", finished=NOW)],
                               [make_pod("Failed", finished=NOW - timedelta(seconds=1))], NOW)
    assert after == BackoffRecord(0, None)


def test_backoff_limit_exceeded_sets_failure_target_then_failed() -> None:
    failed = [make_pod("Failed"), make_pod("Failed")]
    running = make_pod("Running", ready=True)
    job = make_job(backoffLimit=1, parallelism=2, completions=3, status={"startTime": STAMP, "active": 1})
    plan = sync_job(job, [*failed, running], now=NOW)
    target = condition(plan.status, "FailureTarget")
    assert target and target["reason"] == "BackoffLimitExceeded"
    assert target["message"] == "Job has reached the specified backoff limit"
    assert plan.delete_active == [running] and plan.create == []
    assert plan.status.get("active", 0) == 0 and plan.status["terminating"] == 1
    # every pod (the running one too) is counted failed and released
    assert set(plan.status["uncountedTerminatedPods"]["failed"]) == {objects.uid(p) for p in [*failed, running]}
    status, finished = settle(plan)
    assert not finished and status["failed"] == 3  # still terminating
    # next sync: the deleted pod is gone
    job2 = make_job(backoffLimit=1, parallelism=2, completions=3, status=status)
    plan2 = sync_job(job2, [], now=NOW)
    status2, finished2 = settle(plan2)
    failed_cond = condition(status2, "Failed")
    assert finished2 and failed_cond and failed_cond["reason"] == "BackoffLimitExceeded"
    assert "completionTime" not in status2


def test_active_deadline_requeues_then_fails_with_deadline_exceeded() -> None:
    job = make_job(activeDeadlineSeconds=60, status={"startTime": objects.format_time(NOW - timedelta(seconds=30)),
                                                     "active": 1})
    pod = make_pod("Running")
    plan = sync_job(job, [pod], now=NOW)
    assert plan.requeue_after == pytest.approx(30.0) and plan.finished_condition is None
    plan = sync_job(job, [pod], now=NOW + timedelta(seconds=30))
    target = condition(plan.status, "FailureTarget")
    assert target and target["reason"] == "DeadlineExceeded"
    assert target["message"] == "Job was active longer than specified deadline"
    assert plan.delete_active == [pod]


def test_suspending_deletes_active_pods_and_resuming_resets_start_time() -> None:
    pods = [make_pod("Running", ready=True), make_pod("Pending")]
    job = make_job(suspend=True, parallelism=2, completions=4, status={"startTime": STAMP, "active": 2, "ready": 1})
    plan = sync_job(job, pods, now=NOW)
    assert {objects.name(p) for p in plan.delete_excess} == {objects.name(p) for p in pods}
    assert plan.status.get("active", 0) == 0 and plan.status["terminating"] == 2 and plan.status["ready"] == 0
    assert condition(plan.status, "Suspended")["status"] == "True"  # type: ignore[index]
    later = NOW + timedelta(minutes=5)
    resumed = make_job(parallelism=2, completions=4, status=plan.status)
    plan2 = sync_job(resumed, [], now=later)
    cond = condition(plan2.status, "Suspended")
    assert cond and cond["status"] == "False" and cond["reason"] == "JobResumed"
    assert plan2.status["startTime"] == objects.format_time(later)
    assert [e.reason for e in plan2.events] == ["Resumed"] and len(plan2.create) == 2


def test_lowered_parallelism_deletes_the_least_advanced_pods_first() -> None:
    ready, pending = make_pod("Running", ready=True), make_pod("Pending")
    job = make_job(parallelism=1, completions=5, status={"startTime": STAMP, "active": 2})
    plan = sync_job(job, [ready, pending], now=NOW)
    assert plan.delete_excess == [pending] and plan.create == []


def test_unsatisfied_expectations_create_nothing() -> None:
    plan = sync_job(make_job(parallelism=3, completions=3), [], now=NOW, expectations_satisfied=False)
    assert plan.create == []


def test_finished_job_is_left_alone() -> None:
    job = make_job(status={"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1})
    plan = sync_job(job, [make_pod("Succeeded")], now=NOW)
    assert not plan.needs_flush and plan.create == [] and plan.remove_finalizers == []


def test_indexed_job_creates_pods_per_index_with_hostname_and_env() -> None:
    job = make_job(completionMode="Indexed", completions=5, parallelism=3,
                   status={"startTime": STAMP, "completedIndexes": "0,2", "succeeded": 2})
    running = make_pod("Running", index=1)
    plan = sync_job(job, [running], now=NOW)
    created = [(t["metadata"]["annotations"][jobpods.INDEX_ANNOTATION], g, t["spec"]["hostname"])
               for t, g in plan.create]
    assert created == [("3", "pi-3-", "pi-3"), ("4", "pi-4-", "pi-4")]
    template = plan.create[0][0]
    assert template["metadata"]["labels"][jobpods.INDEX_LABEL] == "3"
    assert template["spec"]["containers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}]


def test_indexed_job_records_completed_indexes() -> None:
    job = make_job(completionMode="Indexed", completions=5, parallelism=2,
                   status={"startTime": STAMP, "completedIndexes": "0-2", "succeeded": 3, "active": 2})
    plan = sync_job(job, [make_pod("Succeeded", index=4), make_pod("Running", index=3)], now=NOW)
    assert plan.status["completedIndexes"] == "0-2,4" and plan.status["succeeded"] == 4
    assert plan.status["uncountedTerminatedPods"] == {}


def test_indexed_job_deletes_duplicate_indexes() -> None:
    first, second = make_pod("Running", index=0, ready=True), make_pod("Pending", index=0)
    job = make_job(completionMode="Indexed", completions=2, parallelism=2, status={"startTime": STAMP})
    plan = sync_job(job, [first, second], now=NOW)
    assert plan.delete_excess == [second] and plan.create == []


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param({0, 1, 2, 4}, "0-2,4", id="run-and-single"), pytest.param({3}, "3", id="single"),
    pytest.param(set(), "", id="empty"), pytest.param({0, 1}, "0-1", id="pair")])
def test_completed_indexes_format(text: set[int], expected: str) -> None:
    assert indexes.format_indexes(text) == expected
    assert indexes.parse(expected, 10) == text


def test_pod_failure_policy_fail_job_names_the_container_and_rule() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    pod = make_pod("Failed", exit_code=42)
    job = make_job(podFailurePolicy=policy, podReplacementPolicy="Failed", status={"startTime": STAMP})
    plan = sync_job(job, [pod], now=NOW)
    target = condition(plan.status, "FailureTarget")
    assert target and target["reason"] == "PodFailurePolicy"
    assert target["message"] == (f"Container main for pod default/{objects.name(pod)} failed with exit code 42 "
                                 "matching FailJob rule at index 1")


def test_pod_failure_policy_ignore_does_not_count() -> None:
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [137]}}]}
    pod = make_pod("Failed", exit_code=137)
    job = make_job(backoffLimit=0, podFailurePolicy=policy, podReplacementPolicy="Failed",
                   status={"startTime": STAMP, "active": 1})
    plan = sync_job(job, [pod], now=NOW)
    assert plan.finished_condition is None and plan.status["uncountedTerminatedPods"] == {}
    assert [objects.uid(p) for p in plan.remove_finalizers] == [objects.uid(pod)]
    status, _ = settle(plan)
    assert status.get("failed", 0) == 0


def test_on_failure_restarts_count_against_the_backoff_limit() -> None:
    job = make_job(backoffLimit=2, status={"startTime": STAMP, "active": 1})
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    plan = sync_job(job, [make_pod("Running", restarts=2)], now=NOW)
    assert condition(plan.status, "FailureTarget")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]


def test_deleted_unfinished_pod_counts_as_failed() -> None:
    pod = make_pod("Running", deleting=True)
    plan = sync_job(make_job(status={"startTime": STAMP, "active": 1}), [pod], now=NOW)
    assert plan.status["uncountedTerminatedPods"] == {"failed": [objects.uid(pod)]}
    assert plan.status["terminating"] == 1
    assert plan.create == [] and plan.requeue_after == pytest.approx(10.0)  # a failure: backoff first


def test_pod_replacement_policy_failed_waits_for_terminating_pods() -> None:
    pod = make_pod("Running", deleting=True)
    job = make_job(podReplacementPolicy="Failed", status={"startTime": STAMP, "active": 1})
    plan = sync_job(job, [pod], now=NOW)
    assert plan.create == [] and plan.status["uncountedTerminatedPods"] == {}


def test_ttl_after_finished_counts_from_the_finish() -> None:
    finished = objects.format_time(NOW - timedelta(seconds=40))
    job = make_job(ttlSecondsAfterFinished=100, status={
        "completionTime": finished,
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": finished}]})
    assert seconds_until_expiry(job, NOW) == 60
    assert seconds_until_expiry(job, NOW + timedelta(seconds=60)) == 0
    assert seconds_until_expiry(make_job(ttlSecondsAfterFinished=1), NOW) is None


def per_index_job(status: Obj | None = None, **spec: Any) -> Obj:
    return make_job(status=status or {"startTime": STAMP}, completionMode="Indexed", completions=3, parallelism=3,
                    backoffLimitPerIndex=1, backoffLimit=2**31 - 1, **spec)


def with_failures(pod: Obj, count: int) -> Obj:
    pod["metadata"]["annotations"][perindex.FAILURE_COUNT_ANNOTATION] = str(count)
    return pod


def test_per_index_backoff_replaces_a_failed_index_with_its_count() -> None:
    failed = with_failures(make_pod("Failed", index=0), 0)
    others = [with_failures(make_pod("Running", index=i), 0) for i in (1, 2)]
    plan = sync_job(per_index_job(), [failed, *others], now=NOW)
    assert plan.create == [] and plan.requeue_after == pytest.approx(10.0)
    assert plan.remove_finalizers == []  # kept until the replacement exists
    assert plan.status["failedIndexes"] == ""
    plan = sync_job(per_index_job(), [failed, *others], now=NOW + timedelta(seconds=10))
    [(template, generate_name)] = plan.create
    assert generate_name == "pi-0-"
    assert template["metadata"]["annotations"][perindex.FAILURE_COUNT_ANNOTATION] == "1"
    replacement = with_failures(make_pod("Pending", index=0), 1)
    plan = sync_job(per_index_job(), [failed, replacement, *others], now=NOW + timedelta(seconds=11))
    assert [objects.uid(p) for p in plan.remove_finalizers] == [objects.uid(failed)]
    assert plan.status["uncountedTerminatedPods"] == {"failed": [objects.uid(failed)]}


def test_per_index_limit_fails_the_index_and_then_the_job() -> None:
    failed = with_failures(make_pod("Failed", index=0), 1)
    done = [with_failures(make_pod("Succeeded", index=i), 0) for i in (1, 2)]
    plan = sync_job(per_index_job(), [failed, *done], now=NOW)
    assert plan.status["failedIndexes"] == "0" and plan.status["completedIndexes"] == "1-2"
    target = condition(plan.status, "FailureTarget")
    assert target and (target["reason"], target["message"]) == perindex.FAILED_INDEXES
    assert plan.create == []


def test_max_failed_indexes_exceeded() -> None:
    failed = with_failures(make_pod("Failed", index=2), 1)
    plan = sync_job(per_index_job(maxFailedIndexes=0), [failed, make_pod("Running", index=0)], now=NOW)
    target = condition(plan.status, "FailureTarget")
    assert target and (target["reason"], target["message"]) == perindex.MAX_FAILED_INDEXES_EXCEEDED


def test_fail_index_rule_fails_the_index_at_once() -> None:
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]}
    failed = with_failures(make_pod("Failed", index=1, exit_code=7), 0)
    plan = sync_job(per_index_job(podFailurePolicy=policy, podReplacementPolicy="Failed"),
                    [failed, make_pod("Running", index=0)], now=NOW)
    assert plan.status["failedIndexes"] == "1"
    assert [t["metadata"]["annotations"][jobpods.INDEX_ANNOTATION] for t, _ in plan.create] == ["2"]


def test_success_policy_completes_early_and_stops_the_rest_without_failures() -> None:
    policy = {"rules": [{"succeededIndexes": "0", "succeededCount": 1}]}
    done, lingering = make_pod("Succeeded", index=0), make_pod("Running", index=1, ready=True)
    job = make_job(completionMode="Indexed", completions=3, parallelism=3, successPolicy=policy,
                   status={"startTime": STAMP, "active": 2})
    plan = sync_job(job, [done, lingering], now=NOW)
    met = condition(plan.status, "SuccessCriteriaMet")
    assert met and (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert plan.delete_active == [lingering]
    assert plan.status["uncountedTerminatedPods"] == {}  # the lingering pod is released, not failed
    status, finished = settle(plan)
    assert not finished  # it is still terminating
    plan2 = sync_job(make_job(completionMode="Indexed", completions=3, parallelism=3, successPolicy=policy,
                              status=status), [], now=NOW)
    status2, finished2 = settle(plan2)
    complete = condition(status2, "Complete")
    assert finished2 and complete and complete["reason"] == "SuccessPolicy"
    assert status2.get("failed", 0) == 0 and status2["succeeded"] == 1


@pytest.mark.parametrize(("rules", "matched"), [
    pytest.param([{"succeededCount": 2}], False, id="count-not-reached"),
    pytest.param([{"succeededIndexes": "3"}, {"succeededCount": 1}], True, id="second-rule"),
    pytest.param([{"succeededIndexes": "0-1"}], False, id="indexes-missing-one"),
])
def test_success_policy_rules(rules: list[Obj], matched: bool) -> None:
    job = make_job(completionMode="Indexed", completions=4, successPolicy={"rules": rules})
    assert (match(job, {0}) is not None) == matched
