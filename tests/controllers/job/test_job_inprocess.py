"""The Job controller in process: real API server, controller-manager on the test loop,
and the test playing kubelet by writing pods/status (Succeeded / Failed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controllers.common import objects
from controllers.job.jobpods import TRACKING_FINALIZER
from minikube_py.client import JOBS, PODS, ApiError, FakeClock
from tests.controllers.manager.harness import NS, ControlPlane, control_plane

Obj = dict[str, Any]
CONTROLLERS = ["job-controller", "ttl-after-finished-controller"]


def job(name: str = "pi", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "main", "image": "busybox"}]}}, **spec}}


def finished_status(pod: Obj, exit_code: int) -> Obj:
    stamp = objects.format_time(datetime.now(UTC))
    phase = "Succeeded" if exit_code == 0 else "Failed"
    reason = "Completed" if exit_code == 0 else "Error"
    containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
                   "state": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": stamp,
                                            "finishedAt": stamp}}}
                  for c in objects.spec(pod)["containers"]]
    return {"status": {"phase": phase, "containerStatuses": containers}}


async def job_pods(plane: ControlPlane, name: str = "pi") -> list[Obj]:
    items = (await plane.client.list(PODS, NS, label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]
    return sorted(items, key=lambda p: p["metadata"]["name"])


async def finish(plane: ControlPlane, pod: Obj, exit_code: int = 0) -> None:
    await plane.client.patch(PODS, pod["metadata"]["name"], finished_status(pod, exit_code), NS,
                             subresource="status")


def condition(obj: Obj, cond_type: str) -> Obj | None:
    return next((c for c in objects.status(obj).get("conditions") or [] if c["type"] == cond_type), None)


async def get_job(plane: ControlPlane, name: str = "pi") -> Obj:
    return await plane.client.get(JOBS, name, NS)


async def running(plane: ControlPlane, count: int, name: str = "pi", label_owner: str | None = None) -> list[Obj]:
    async def check() -> list[Obj] | None:
        pods = [p for p in await job_pods(plane, name)
                if objects.status(p).get("phase") not in ("Succeeded", "Failed")
                and not objects.being_deleted(p)
                and (label_owner is None
                     or p["metadata"]["labels"].get("batch.kubernetes.io/controller-uid") == label_owner)]
        return pods if len(pods) == count else None
    return await plane.wait_for(check, message=f"{count} active pods")


async def test_job_runs_completions_with_parallelism_and_completes(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        created = await plane.client.create(JOBS, job(completions=3, parallelism=2))
        done = 0
        while done < 3:
            pods = await running(plane, min(2, 3 - done))
            for p in pods:
                assert TRACKING_FINALIZER in p["metadata"]["finalizers"]
                assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == created["metadata"]["uid"]
                assert p["metadata"]["labels"]["job-name"] == "pi"
                assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"
            await finish(plane, pods[0])
            done += 1
            await plane.wait_for(lambda d=done: _succeeded(plane, d), message=f"{done} succeeded")

        final = await plane.wait_for(lambda: _with_condition(plane, "Complete"), message="Complete")
        status = final["status"]
        assert status["succeeded"] == 3 and status.get("active", 0) == 0
        assert status["ready"] == 0 and status["terminating"] == 0
        assert status["uncountedTerminatedPods"] == {}
        assert status["completionTime"] and status["startTime"]
        criteria = condition(final, "SuccessCriteriaMet")
        complete = condition(final, "Complete")
        assert criteria and criteria["reason"] == "CompletionsReached"
        assert complete and complete["message"] == "Reached expected number of succeeded pods"
        for p in await job_pods(plane):
            assert TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or [])
        await plane.wait_for(lambda: _has_event(plane, "Completed", "Job completed"), message="Completed event")
        created_events = await plane.events("SuccessfulCreate", kind="Job")
        assert len(created_events) == 3
        assert all(e["message"].startswith("Created pod: pi-") for e in created_events)


async def test_failed_pods_exceed_backoff_limit(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await plane.client.create(JOBS, job(backoffLimit=0))
        [pod] = await running(plane, 1)
        await finish(plane, pod, exit_code=1)
        final = await plane.wait_for(lambda: _with_condition(plane, "Failed"), message="Failed")
        failed = condition(final, "Failed")
        assert failed and failed["reason"] == "BackoffLimitExceeded"
        assert failed["message"] == "Job has reached the specified backoff limit"
        target = condition(final, "FailureTarget")
        assert target and target["reason"] == "BackoffLimitExceeded"
        assert final["status"]["failed"] == 1 and "completionTime" not in final["status"]
        await plane.wait_for(lambda: _has_event(plane, "BackoffLimitExceeded",
                                                "Job has reached the specified backoff limit"), message="event")


async def _succeeded(plane: ControlPlane, count: int) -> bool:
    return int(objects.status(await get_job(plane)).get("succeeded") or 0) >= count


async def _with_condition(plane: ControlPlane, cond_type: str, name: str = "pi") -> Obj | None:
    current = await get_job(plane, name)
    found = condition(current, cond_type)
    return current if found and found["status"] == "True" else None


async def _has_event(plane: ControlPlane, reason: str, message: str) -> bool:
    return any(e["message"] == message for e in await plane.events(reason, kind="Job"))


async def test_ttl_after_finished_deletes_the_job_and_its_pods(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=[*CONTROLLERS, "garbage-collector-controller"]) as plane:
        await plane.client.create(JOBS, job(ttlSecondsAfterFinished=0))
        [pod] = await running(plane, 1)
        await finish(plane, pod)

        async def gone() -> bool:
            try:
                await get_job(plane)
            except ApiError as exc:
                return exc.is_not_found()
            return False

        await plane.wait_for(gone, timeout=15, message="the Job deleted by its TTL")
        await plane.wait_for(lambda: _no_pods(plane), timeout=15, message="its pods collected")


async def test_deleting_a_running_job_releases_its_pods_finalizers(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await plane.client.create(JOBS, job(parallelism=2, completions=4))
        pods = await running(plane, 2)
        await plane.client.delete(JOBS, "pi", NS, propagation_policy="Orphan")

        async def released() -> bool:
            current = await job_pods(plane)
            return bool(current) and all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or [])
                                         for p in current)

        await plane.wait_for(released, message="finalizers removed from the orphaned pods")
        assert {p["metadata"]["name"] for p in await job_pods(plane)} == {p["metadata"]["name"] for p in pods}


async def test_suspend_and_resume_record_one_event_each(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        await plane.client.create(JOBS, job(parallelism=2, completions=2))
        await running(plane, 2)
        await plane.client.patch(JOBS, "pi", {"spec": {"suspend": True}}, NS)
        suspended = await plane.wait_for(lambda: _condition_status(plane, "Suspended", "True"), message="suspended")
        assert condition(suspended, "Suspended")["reason"] == "JobSuspended"  # type: ignore[index]
        await plane.wait_for(lambda: _no_pods(plane), message="suspended pods deleted")
        await plane.client.patch(JOBS, "pi", {"spec": {"suspend": False}}, NS)
        await plane.wait_for(lambda: _condition_status(plane, "Suspended", "False"), message="resumed")
        await running(plane, 2)
        await plane.wait_for(lambda: _has_event(plane, "Resumed", "Job resumed"), message="Resumed event")
        assert len(await plane.events("Suspended", kind="Job")) == 1
        [resumed] = await plane.events("Resumed", kind="Job")
        assert resumed["count"] == 1
        current = await get_job(plane)
        assert current["status"].get("failed", 0) == 0  # pods removed by suspension are not failures


async def _condition_status(plane: ControlPlane, cond_type: str, status: str) -> Obj | None:
    current = await get_job(plane)
    found = condition(current, cond_type)
    return current if found and found["status"] == status else None


async def _no_pods(plane: ControlPlane) -> bool:
    return not await job_pods(plane)


async def test_replacement_waits_for_the_backoff_on_the_injected_clock(tmp_path: Path) -> None:
    """After a failure the next pod comes 10 s later by the controller's clock, and the
    test never waits those seconds: it moves the clock."""
    clock = FakeClock(datetime.now(UTC))
    async with control_plane(tmp_path, clock=clock, controllers=CONTROLLERS) as plane:
        await plane.client.create(JOBS, job(backoffLimit=3))
        [first] = await running(plane, 1)
        await finish(plane, first, exit_code=1)
        await plane.wait_for(lambda: _failed(plane, 1), message="the failure counted")
        await clock.wait_for_sleepers(1)  # the Job's requeue for the end of the backoff
        assert [p["metadata"]["name"] for p in await job_pods(plane)] == [first["metadata"]["name"]]
        clock.advance(5)  # wakes nothing: the requeue is due at 10 s
        assert len(await job_pods(plane)) == 1
        clock.advance(6)
        [second] = await running(plane, 1)
        assert second["metadata"]["name"] != first["metadata"]["name"]


async def _failed(plane: ControlPlane, count: int) -> bool:
    return int(objects.status(await get_job(plane)).get("failed") or 0) >= count


async def test_pod_relabelled_out_of_the_selector_is_released_without_its_finalizer(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=CONTROLLERS) as plane:
        created = await plane.client.create(JOBS, job())
        [pod] = await running(plane, 1)
        uid_label = "batch.kubernetes.io/controller-uid"
        await plane.client.patch(PODS, pod["metadata"]["name"], {"metadata": {"labels": {uid_label: "other"}}}, NS)

        async def released() -> Obj | None:
            current = await plane.client.get(PODS, pod["metadata"]["name"], NS)
            meta = current["metadata"]
            return current if not meta.get("ownerReferences") and not meta.get("finalizers") else None

        await plane.wait_for(released, message="the pod released")
        [replacement] = await running(plane, 1, label_owner=created["metadata"]["uid"])
        assert replacement["metadata"]["name"] != pod["metadata"]["name"]
