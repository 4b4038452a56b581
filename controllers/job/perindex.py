"""spec.backoffLimitPerIndex for Indexed Jobs (beta and on by default in Kubernetes 1.32).

Each index has its own failure budget. A pod's `batch.kubernetes.io/job-index-failure-count`
annotation says how many counted failures its index had before it (and
`...-ignored-failure-count` how many the podFailurePolicy ignored). When a pod of an index
fails with a count already at the limit, or matches a FailIndex rule, the index joins
status.failedIndexes and gets no more pods. Otherwise its replacement carries the count
plus one and waits the backoff for that count; until the replacement exists, the failed
pod keeps its tracking finalizer (so the count is never lost). The Job fails with
MaxFailedIndexesExceeded when more than spec.maxFailedIndexes indexes failed, or with
FailedIndexes once every index succeeded or failed and at least one failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.job import failure, indexes, jobpods
from controllers.job.backoff import BASE_SECONDS, MAX_SECONDS

Obj = dict[str, Any]
FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded",
                               "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")


def enabled(job: Obj) -> bool:
    return jobpods.is_indexed(job) and objects.spec(job).get("backoffLimitPerIndex") is not None


def _count(pod: Obj, annotation: str) -> int:
    try:
        return max(int(objects.annotations(pod).get(annotation, "0")), 0)
    except ValueError:
        return 0


def failure_count(pod: Obj) -> int:
    return _count(pod, FAILURE_COUNT_ANNOTATION)


def absolute_failure_count(pod: Obj) -> int:
    return failure_count(pod) + _count(pod, IGNORED_FAILURE_COUNT_ANNOTATION)


def is_index_failed(job: Obj, pod: Obj) -> bool:
    """isIndexFailed: a FailIndex rule matched, or a counted failure at the limit."""
    if not jobpods.is_failed(pod, job):
        return False
    counted = True
    policy = objects.spec(job).get("podFailurePolicy")
    if policy:
        match = failure.match_pod_failure_policy(policy, pod)
        if match.action == "FailIndex":
            return True
        counted = match.count_failed
    return counted and failure_count(pod) >= int(objects.spec(job).get("backoffLimitPerIndex") or 0)


def failed_indexes(job: Obj, pods: list[Obj]) -> set[int]:
    """calculateFailedIndexes: the recorded ones plus those failing now (tracked pods)."""
    completions = int(objects.spec(job).get("completions") or 0)
    found = indexes.parse(objects.status(job).get("failedIndexes"), completions)
    for pod in pods:
        if jobpods.has_finalizer(pod) and jobpods.valid_index(pod, job) and is_index_failed(job, pod):
            found.add(jobpods.completion_index(pod))
    return found


def pods_with_delayed_deletion(job: Obj, pods: list[Obj], active_pods: list[Obj], succeeded: set[int],
                               failed: set[int], now: datetime) -> dict[int, Obj]:
    """The latest failed pod of each index still waiting for its replacement."""
    active = {jobpods.completion_index(p) for p in active_pods}
    delayed: dict[int, Obj] = {}
    for pod in pods:
        if not jobpods.is_failed(pod, job) or not jobpods.valid_index(pod, job):
            continue
        index = jobpods.completion_index(pod)
        if index in succeeded or index in failed or index in active:
            continue
        last = delayed.get(index)
        if last is None or (absolute_failure_count(last) <= absolute_failure_count(pod)
                            and jobpods.finished_time(pod, now) >= jobpods.finished_time(last, now)):
            delayed[index] = pod
    return delayed


def replacement_annotations(job: Obj, replaced: Obj | None) -> dict[str, str]:
    """getNewIndexFailureCounts as annotations for the pod replacing `replaced`."""
    counted = ignored = 0
    if replaced is not None:
        counted, ignored = failure_count(replaced), _count(replaced, IGNORED_FAILURE_COUNT_ANNOTATION)
        policy = objects.spec(job).get("podFailurePolicy")
        if not policy or failure.match_pod_failure_policy(policy, replaced).count_failed:
            counted += 1
        else:
            ignored += 1
    annotations = {FAILURE_COUNT_ANNOTATION: str(counted)}
    if ignored > 0:
        annotations[IGNORED_FAILURE_COUNT_ANNOTATION] = str(ignored)
    return annotations


def remaining_seconds(last_failed: Obj | None, now: datetime) -> float:
    """getRemainingTimePerIndex: backoff for (absolute failures + 1) since that pod finished."""
    if last_failed is None:
        return 0.0
    failures = absolute_failure_count(last_failed) + 1
    delay = min(BASE_SECONDS * 2 ** (failures - 1), MAX_SECONDS)
    elapsed = (now - jobpods.finished_time(last_failed, now)).total_seconds()
    return max(delay - elapsed, 0.0)
