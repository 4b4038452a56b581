"""The ttl-after-finished controller (pkg/controller/ttlafterfinished).

A finished Job (Complete or Failed condition True) with spec.ttlSecondsAfterFinished is
deleted once that many seconds have passed since it finished (completionTime, or the
terminal condition's lastTransitionTime). Before deleting, the Job is read again from the
API, so a TTL changed in the meantime counts; the delete uses propagationPolicy
Foreground and the Job's uid as precondition, as Kubernetes does (the garbage collector
then removes the pods before the Job). Until the TTL expires the key is requeued for the
moment it does.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from controllers.common import objects
from controllers.job import conditions as cond
from minikube_py.client import (
    JOBS,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_object,
    split_key,
)

Obj = dict[str, Any]


def finish_time(job: Obj) -> datetime | None:
    status = objects.status(job)
    for cond_type in (cond.COMPLETE, cond.FAILED):
        condition = cond.find(status, cond_type)
        if condition is not None and condition.get("status") == "True":
            return objects.parse_time(condition.get("lastTransitionTime"))
    return None


def seconds_until_expiry(job: Obj, now: datetime) -> float | None:
    """None: no TTL applies (not finished, no TTL, being deleted); <= 0: expired."""
    ttl = objects.spec(job).get("ttlSecondsAfterFinished")
    if ttl is None or objects.being_deleted(job) or not cond.is_finished(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return int(ttl) - (now - finished).total_seconds()


class TTLAfterFinishedController:
    """Deletes finished Jobs whose ttlSecondsAfterFinished has passed."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.jobs = informers.informer(JOBS)
        self.queue: WorkQueue[str] = WorkQueue("ttl_jobs_to_delete", clock=self.clock)
        self.jobs.add_event_handler(enqueue_object(self.queue))
        self.controller = Controller("ttl-after-finished", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.jobs])

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        job = self.jobs.lister.get(name, namespace)
        if job is None:
            return None
        left = seconds_until_expiry(job, self.clock.now())
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=float(math.ceil(left)))
        try:
            fresh = await self.client.get(JOBS, name, namespace)
        except ApiError as exc:
            if exc.is_not_found():
                return None
            raise
        left = seconds_until_expiry(fresh, self.clock.now())
        if left is None:
            return None
        if left > 0:
            return Result(requeue_after=float(math.ceil(left)))
        try:
            await self.client.delete(JOBS, name, namespace, propagation_policy="Foreground",
                                     preconditions={"uid": objects.uid(fresh)})
        except ApiError as exc:
            if not exc.is_not_found():
                raise
        return None
