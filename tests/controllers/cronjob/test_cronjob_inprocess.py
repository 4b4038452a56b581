"""The CronJob controller in process on an injected clock: it fires on schedule without
the test waiting for a real minute, and the Job controller runs what it created."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controllers.common import objects
from minikube_py.client import CRONJOBS, JOBS, FakeClock
from tests.controllers.manager.harness import NS, ControlPlane, control_plane

Obj = dict[str, Any]


def cronjob(name: str = "tick", schedule: str = "* * * * *", **spec: Any) -> Obj:
    template = {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                               "containers": [{"name": "main", "image": "busybox"}]}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": NS},
            "spec": {"schedule": schedule, "jobTemplate": template, **spec}}


async def jobs_of(plane: ControlPlane, cj: Obj) -> list[Obj]:
    items = (await plane.client.list(JOBS, NS))["items"]
    return sorted((j for j in items if any(r.get("uid") == objects.uid(cj)
                                           for r in j["metadata"].get("ownerReferences") or [])),
                  key=lambda j: j["metadata"]["name"])


async def test_cronjob_fires_every_minute_on_the_injected_clock(tmp_path: Path) -> None:
    start = datetime.now(UTC)  # the API server stamps creationTimestamp in real time, just before
    clock = FakeClock(start)
    async with control_plane(tmp_path, clock=clock, controllers=["cronjob-controller"]) as plane:
        cj = await plane.client.create(CRONJOBS, cronjob())
        created = objects.creation_time(cj)
        first = (max(created, start) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        await clock.wait_for_sleepers(1)  # the requeue for the next minute is waiting
        assert await jobs_of(plane, cj) == []
        clock.advance((first - clock.now()).total_seconds() + 0.2)
        [job] = await plane.wait_for(lambda: jobs_of(plane, cj), message="the first scheduled Job")
        minutes = int(first.timestamp()) // 60
        assert job["metadata"]["name"] == f"tick-{minutes}"
        assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
            first.strftime("%Y-%m-%dT%H:%M:%SZ")
        [ref] = job["metadata"]["ownerReferences"]
        assert ref["kind"] == "CronJob" and ref["controller"] is True

        async def status_points_at_job() -> Obj | None:
            current = await plane.client.get(CRONJOBS, "tick", NS)
            active = objects.status(current).get("active") or []
            return current if [a["name"] for a in active] == [job["metadata"]["name"]] else None

        current = await plane.wait_for(status_points_at_job, message="status.active")
        assert current["status"]["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
        events = await plane.events("SuccessfulCreate", kind="CronJob")
        assert [e["message"] for e in events] == [f"Created job tick-{minutes}"]

        clock.advance(60)  # the next minute: concurrencyPolicy Allow starts a second Job
        await plane.wait_for(lambda: _count(jobs_of(plane, cj), 2), message="the second Job")
        await asyncio.sleep(0)


async def _count(jobs: Any, n: int) -> bool:
    return len(await jobs) == n
