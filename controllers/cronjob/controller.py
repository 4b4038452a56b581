"""The CronJob controller on the client runtime (ControllerV2's wiring and API calls).

Informers (shared): CronJobs and Jobs. Keys: `namespace/name` of CronJobs.

    CronJob added / updated / deleted -> its key (an update that changes the schedule or
                                         time zone is simply synced again: the sync
                                         computes the next requeue from the new schedule)
    Job added / updated / deleted     -> its controlling CronJob

`reconcile(key)` gathers the Jobs the CronJob controls (owner index), asks the API about
Jobs in status.active that the cache does not show (a lagging watch must not look like a
missing Job), runs the pure `sync_cronjob`, then deletes Jobs (Replace, history; with
propagationPolicy Background), creates the scheduled Job, writes the status and returns
`Result(requeue_after=...)` for just after the next schedule time, from the injected clock.
"""

from __future__ import annotations

import logging
from typing import Any

from controllers.common import objects
from controllers.cronjob.sync import CronPlan, finished_condition, job_reference, sync_cronjob
from minikube_py.client import (
    CRONJOBS,
    JOBS,
    NORMAL,
    OWNER_UID_INDEX,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    deep_copy,
    enqueue_object,
    enqueue_owner,
    owner_uid_index,
    split_key,
)

log = logging.getLogger("controllers.cronjob")

Obj = dict[str, Any]


class CronJobController:
    """Starts Jobs on each CronJob's schedule (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.cronjobs = informers.informer(CRONJOBS)
        self.jobs = informers.informer(JOBS)
        if not self.jobs.store.has_indexer(OWNER_UID_INDEX):
            self.jobs.add_indexer(OWNER_UID_INDEX, owner_uid_index)
        self.queue: WorkQueue[str] = WorkQueue("cronjob", clock=self.clock)
        self.cronjobs.add_event_handler(enqueue_object(self.queue))
        self.jobs.add_event_handler(enqueue_owner(self.queue, CRONJOBS))
        self.controller = Controller("cronjob", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.cronjobs, self.jobs])

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        cronjob = self.cronjobs.lister.get(name, namespace)
        if cronjob is None:
            return None
        jobs = [j for j in self.jobs.lister.by_owner_uid(objects.uid(cronjob))
                if _controller_uid(j) == objects.uid(cronjob)]
        missing = await self._missing_active(cronjob, {objects.uid(j) for j in jobs})
        plan = sync_cronjob(cronjob, jobs, now=self.clock.now(), missing=missing)
        await self.execute(cronjob, plan)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None

    async def _missing_active(self, cronjob: Obj, cached: set[str]) -> set[str]:
        missing = set()
        for ref in objects.status(cronjob).get("active") or []:
            if ref.get("uid") in cached:
                continue
            try:
                live = await self.client.get(JOBS, str(ref.get("name")), objects.namespace(cronjob))
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
                missing.add(str(ref.get("uid")))
                continue
            if objects.uid(live) != ref.get("uid"):
                missing.add(str(ref.get("uid")))
        return missing

    async def execute(self, cronjob: Obj, plan: CronPlan) -> None:
        """Deletes, the create, the status, then the sync's events; the first failure is raised."""
        namespace = objects.namespace(cronjob)
        error: BaseException | None = None
        for job_name in plan.delete_jobs:
            try:
                await self.client.delete(JOBS, job_name, namespace, propagation_policy="Background")
            except ApiError as exc:
                if exc.is_not_found():
                    continue
                self.recorder.event(cronjob, WARNING, "FailedDelete", f"Deleted job: {exc.message or exc}")
                error = error or exc
                continue
            self.recorder.event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {job_name}")
        if error is not None:
            raise error
        if plan.create_job is not None:
            created = await self._create_job(cronjob, plan.create_job)
            if created is not None and not any(r.get("uid") == objects.uid(created)
                                               for r in plan.status.get("active") or []):
                plan.status.setdefault("active", []).append(job_reference(created))
        if plan.update_status:
            body = deep_copy(cronjob)
            body["status"] = plan.status
            await self.client.update_status(CRONJOBS, body, namespace)
        # After the status is stored: a sync on a stale cache fails its write with a
        # conflict instead of reporting SawCompletedJob (and the like) a second time.
        for event in plan.events:
            self.recorder.event(cronjob, event.type, event.reason, event.message)

    async def _create_job(self, cronjob: Obj, job: Obj) -> Obj | None:
        """Create the scheduled Job. If it exists already and is ours (an earlier sync
        created it but could not write the status), take it as created; Kubernetes
        returns the AlreadyExists error and retries, which never converges then."""
        namespace = objects.namespace(cronjob)
        try:
            created = await self.client.create(JOBS, job, namespace)
        except ApiError as exc:
            if not exc.is_already_exists():
                self.recorder.event(cronjob, WARNING, "FailedCreate", f"Error creating job: {exc.message or exc}")
                raise
            existing = await self.client.get(JOBS, objects.name(job), namespace)
            if _controller_uid(existing) != objects.uid(cronjob):
                raise
            return None if finished_condition(existing) else existing
        self.recorder.event(cronjob, NORMAL, "SuccessfulCreate", f"Created job {objects.name(created)}")
        return created


def _controller_uid(job: Obj) -> str | None:
    for ref in objects.metadata(job).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None
