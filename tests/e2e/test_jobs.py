"""Jobs and CronJobs with the real kubectl against `mkp up --fake-nodes 2`.

Fake nodes run Job pods to completion after `mkp.dev/fake-run-seconds` and fail them
with `mkp.dev/fake-exit-code`, so a Job's whole life fits in seconds. The CronJob is
applied first so that, by the last test, its first minute has come and gone.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
MANIFESTS = Path(__file__).parent / "manifests"




@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        c.kubectl("apply", "-f", str(MANIFESTS / "cronjob.yaml"))
        yield c


def _json(cluster: Any, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def test_parallel_job_completes_with_at_most_two_active_pods(cluster: Any) -> None:
    k = cluster.kubectl
    most_active = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pods = _json(cluster, "get", "pods", "-l", "job-name=batch-work")["items"]
            most_active[0] = max(most_active[0], sum(1 for p in pods if _active(p)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        k("apply", "-f", str(MANIFESTS / "job-parallel.yaml"))
        k("wait", "--for=condition=complete", "job/batch-work", "--timeout=120s", timeout=130)
    finally:
        stop.set()
        sampler.join(timeout=10)
    assert 1 <= most_active[0] <= 2, most_active[0]
    row = k("get", "jobs", "batch-work", "--no-headers").stdout.split()
    assert row[:3] == ["batch-work", "Complete", "5/5"], row
    job = _json(cluster, "get", "job", "batch-work")
    status = job["status"]
    assert status["succeeded"] == 5 and status.get("failed", 0) == 0 and status["ready"] == 0
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    pods = _json(cluster, "get", "pods", "-l", "batch.kubernetes.io/job-name=batch-work")["items"]
    assert len(pods) == 5
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or []) for p in pods)
    created = _json(cluster, "get", "events", "--field-selector",
                    "involvedObject.name=batch-work,reason=SuccessfulCreate")["items"]
    assert sorted(e["message"] for e in created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    completed = _json(cluster, "get", "events", "--field-selector", "involvedObject.name=batch-work,reason=Completed")
    assert [e["message"] for e in completed["items"]] == ["Job completed"]


def test_failing_job_reaches_backoff_limit(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "job-failing.yaml"))
    k("wait", "--for=condition=failed", "job/always-fails", "--timeout=90s", timeout=100)
    job = _json(cluster, "get", "job", "always-fails")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert job["status"]["failed"] == 2 and "completionTime" not in job["status"]
    row = k("get", "jobs", "always-fails", "--no-headers").stdout.split()
    assert row[:3] == ["always-fails", "Failed", "0/1"], row
    described = k("describe", "job", "always-fails").stdout
    assert "BackoffLimitExceeded" in described and "Job has reached the specified backoff limit" in described


def test_indexed_job_completes_and_its_ttl_removes_it(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "job-indexed.yaml"))
    k("wait", "--for=condition=complete", "job/indexed-ttl", "--timeout=60s", timeout=70)
    job = _json(cluster, "get", "job", "indexed-ttl")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    pods = _json(cluster, "get", "pods", "-l", "job-name=indexed-ttl")["items"]
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod["spec"]["hostname"] == f"indexed-ttl-{index}"
        assert pod["metadata"]["name"].startswith(f"indexed-ttl-{index}-")
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
    _wait(lambda: "NotFound" in k("get", "job", "indexed-ttl", check=False).stderr, timeout=30,
          what="the Job deleted after ttlSecondsAfterFinished")
    _wait(lambda: not _json(cluster, "get", "pods", "-l", "job-name=indexed-ttl")["items"], timeout=30,
          what="its pods garbage-collected")


def test_create_job_from_cronjob_and_scheduled_run(cluster: Any) -> None:
    k = cluster.kubectl
    k("create", "job", "manual-run", "--from=cronjob/every-minute")
    k("wait", "--for=condition=complete", "job/manual-run", "--timeout=60s", timeout=70)
    job = _json(cluster, "get", "job", "manual-run")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    def scheduled() -> list[dict] | None:
        items = _json(cluster, "get", "jobs")["items"]
        found = [j for j in items if re.fullmatch(r"every-minute-\d+", j["metadata"]["name"])]
        return found or None

    [first, *_] = _wait(scheduled, timeout=75, what="a Job started by the schedule")
    minutes = int(first["metadata"]["name"].rsplit("-", 1)[1])
    stamp = first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert stamp == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minutes * 60))
    cronjob = _wait(lambda: (lambda cj: cj if (cj.get("status") or {}).get("lastScheduleTime") else None)(
        _json(cluster, "get", "cronjob", "every-minute")), what="lastScheduleTime")
    assert cronjob["status"]["lastScheduleTime"] == stamp
    events = k("get", "events", "--field-selector", "involvedObject.kind=CronJob").stdout
    assert f"Created job {first['metadata']['name']}" in events
