"""The Job controller on the client runtime (pkg/controller/job's wiring and API calls).

Informers (shared): Jobs and Pods. Two work queues:

    Job added / updated                 -> its key
    Job deleted                         -> its key (records forgotten); its pods that still
                                           carry the tracking finalizer -> orphan queue
    Pod added / updated / deleted       -> its controlling Job (creations and deletions
                                           observed for the expectations; a pod seen without
                                           the finalizer, or gone, ends a finalizer removal)
    Pod with the finalizer whose Job is -> orphan queue: the finalizer is removed, as
    gone or finished                       Kubernetes' orphan pod worker does

`reconcile(key)` claims the pods (adopting orphans that match the selector), runs the pure
`sync_job`, then carries out its plan in Kubernetes' order: delete pods, create pods
(slow-start batches), write the status with the new uncounted pods and interim
condition, remove finalizers, write counters and the terminal condition, record events.
The pod writes themselves (slow-start creates, deletes, finalizer patches) are
`podcontrol.JobPodControl`.
A Job whose spec.managedBy names another controller is left alone. The per-Job pod
failure backoff and finalizer expectations live in memory, as in kube-controller-manager;
a restart recomputes what it needs from the status and pods.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from controllers.common import objects, ownership
from controllers.common.actions import SetExpectations
from controllers.common.executor import resolve_controller_ref, unwrap
from controllers.common.expectations import ExpectationsStore, satisfied
from controllers.job import conditions as cond
from controllers.job import jobpods
from controllers.job.backoff import BackoffRecord
from controllers.job.plan import SyncPlan
from controllers.job.podcontrol import JobPodControl
from controllers.job.sync import sync_job
from controllers.job.tracking import clean_uncounted, enact_finished
from controllers.replicaset.controller import ORPHANS_INDEX, ensure_indexers
from minikube_py.client import (
    JOBS,
    PODS,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    deep_copy,
    from_label_selector,
    key_of,
    split_key,
)

log = logging.getLogger("controllers.job")

Obj = dict[str, Any]
KIND = "Job"
API_VERSION = "batch/v1"
MANAGED_BY = "kubernetes.io/job-controller"


class JobController:
    """Runs Jobs' pods to completion (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.jobs = informers.informer(JOBS)
        self.pods = informers.informer(PODS)
        ensure_indexers(self.pods)
        self.queue: WorkQueue[str] = WorkQueue("job", clock=self.clock)
        self.orphan_queue: WorkQueue[str] = WorkQueue("job-orphan-pod", clock=self.clock)
        self.expectations = ExpectationsStore()
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.backoff: dict[str, BackoffRecord] = {}
        self.pod_control = JobPodControl(client, recorder, self.expectations, self.finalizer_expectations,
                                         lambda job: ownership.controller_ref(job, api_version=API_VERSION, kind=KIND))
        self.jobs.add_event_handler(EventHandler(
            on_add=lambda job: self.queue.add(key_of(job)),
            on_update=self._job_updated,
            on_delete=self._job_deleted))
        self.pods.add_event_handler(EventHandler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted))
        self.controller = Controller("job", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.jobs, self.pods])
        self.orphans = Controller("job-orphan-pod", self.orphan_queue, self.reconcile_orphan_pod, workers=1,
                                  wait_for=[self.jobs, self.pods])

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await asyncio.gather(self.controller.run(), self.orphans.run())

    # -- event handlers -----------------------------------------------------------------

    def _job_of(self, pod: Obj) -> Obj | None:
        return resolve_controller_ref(objects.namespace(pod), ownership.controller_of(pod), KIND, self.jobs.lister)

    def _job_updated(self, old: Obj, cur: Obj) -> None:
        if objects.uid(old) != objects.uid(cur):
            self._job_deleted(old)  # deleted and recreated under the same name between two events
        self.queue.add(key_of(cur))

    def _job_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = unwrap(obj)
        key = key_of(job)
        self.expectations.forget(key)
        self.finalizer_expectations.pop(key, None)
        self.backoff.pop(key, None)
        for pod in self.pods.lister.by_owner_uid(objects.uid(job)):
            if jobpods.has_finalizer(pod):
                self.orphan_queue.add(key_of(pod))
        self.queue.add(key)

    def _pod_added(self, pod: Obj) -> None:
        job = self._job_of(pod)
        if job is None:
            self._maybe_orphan(pod, None)
            if ownership.controller_of(pod) is None:
                self._enqueue_selecting(pod)
            return
        key = key_of(job)
        if objects.being_deleted(pod):
            self.expectations.deletion_observed(key, key_of(pod))
        else:
            self.expectations.creation_observed(key)
        self._pod_changed(pod, job)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if objects.metadata(old).get("resourceVersion") == objects.metadata(cur).get("resourceVersion"):
            return  # a resync
        old_job, job = self._job_of(old), self._job_of(cur)
        if old_job is not None and (job is None or objects.uid(old_job) != objects.uid(job)):
            self.queue.add(key_of(old_job))
        if job is None:
            self._maybe_orphan(cur, None)
            if ownership.controller_of(cur) is None:
                self._enqueue_selecting(cur)
            return
        if objects.being_deleted(cur) and not objects.being_deleted(old):
            self.expectations.deletion_observed(key_of(job), key_of(cur))
        self._pod_changed(cur, job)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        job = self._job_of(pod)
        if job is None:
            return
        key = key_of(job)
        self.expectations.deletion_observed(key, key_of(pod))
        self.finalizer_expectations.get(key, set()).discard(objects.uid(pod))
        self.queue.add(key)

    def _pod_changed(self, pod: Obj, job: Obj) -> None:
        key = key_of(job)
        if not jobpods.has_finalizer(pod):
            self.finalizer_expectations.get(key, set()).discard(objects.uid(pod))
        self._maybe_orphan(pod, job)
        self.queue.add(key)

    def _maybe_orphan(self, pod: Obj, job: Obj | None) -> None:
        if jobpods.has_finalizer(pod) and (job is None or cond.is_finished(job)):
            self.orphan_queue.add(key_of(pod))

    def _enqueue_selecting(self, pod: Obj) -> None:
        for job in self.jobs.lister.list(objects.namespace(pod)):
            try:
                selector = from_label_selector(objects.spec(job).get("selector"))
            except ValueError:
                continue
            if not selector.empty() and selector.matches(objects.labels(pod)):
                self.queue.add(key_of(job))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """One sync of the Job `key`, from the caches."""
        namespace, name = split_key(key)
        job = self.jobs.lister.get(name, namespace)
        if job is None:
            return None
        if cond.is_finished(job):
            self.backoff.pop(key, None)
            return None
        if managed_elsewhere(job):
            return None
        pods = await self.claim_pods(job)
        now = self.clock.now()
        plan = sync_job(job, pods, now=now, backoff=self.backoff.get(key),
                        expected_rm=set(self.finalizer_expectations.get(key, ())),
                        expectations_satisfied=satisfied(self.expectations.get(key), now))
        await self.execute(job, plan)
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None

    async def claim_pods(self, job: Obj) -> list[Obj]:
        """getPodsForJob: our pods plus adopted orphans that match the selector."""
        try:
            selector = from_label_selector(objects.spec(job).get("selector"))
        except ValueError:
            return []
        seen: set[str] = set()
        candidates = []
        for pod in [*self.pods.lister.by_owner_uid(objects.uid(job)),
                    *self.pods.lister.by_index(ORPHANS_INDEX, objects.namespace(job))]:
            if key_of(pod) not in seen:
                seen.add(key_of(pod))
                candidates.append(pod)
        claim = ownership.claim(job, candidates, lambda p: not selector.empty() and selector.matches(objects.labels(p)))
        if claim.adopt:
            fresh = await self.client.get(JOBS, objects.name(job), objects.namespace(job))
            if objects.uid(fresh) != objects.uid(job) or objects.being_deleted(fresh):
                return [p for p in claim.owned if p not in claim.adopt]
            ref = ownership.controller_ref(job, api_version=API_VERSION, kind=KIND)
            for pod in claim.adopt:
                await self.client.patch(PODS, objects.name(pod), ownership.adopt_patch(pod, ref),
                                        objects.namespace(pod), patch_type="strategic")
        for pod in claim.release:
            # Released pods also lose the tracking finalizer (the Job's PodControllerRefManager
            # is built with it), or nobody would ever remove it.
            patch = ownership.release_patch(pod, job)
            if jobpods.has_finalizer(pod):
                patch["metadata"].update(jobpods.remove_finalizer_patch()["metadata"])
            try:
                await self.client.patch(PODS, objects.name(pod), patch, objects.namespace(pod), patch_type="strategic")
            except ApiError as exc:
                if not (exc.is_not_found() or exc.is_invalid()):
                    raise
        return claim.owned

    async def execute(self, job: Obj, plan: SyncPlan) -> None:
        """Carry out `plan` (see the module docstring); the first error is raised at the end."""
        key = key_of(job)
        errors = await self.pod_control.delete(job, plan.delete_active, remove_finalizer=False)
        if errors:
            raise errors[0]  # not every pod stopped: the Job cannot be declared finished yet
        if plan.delete_excess:
            keys = frozenset(key_of(p) for p in plan.delete_excess)
            self.expectations.apply(key, SetExpectations(deletes=keys), self.clock.now())
            errors += await self.pod_control.delete(job, plan.delete_excess, remove_finalizer=True)
        if plan.create:
            self.expectations.apply(key, SetExpectations(add=len(plan.create)), self.clock.now())
            errors += await self.pod_control.create(job, plan.create)
        current = job
        if plan.needs_flush:
            current = await self._update_status(job, plan.status)
            self.backoff[key] = plan.backoff
        # Suspended / Resumed only once the condition is stored: a sync on a stale cache
        # that decides the same again fails its write with a conflict and says nothing.
        for event in plan.events:
            self.recorder.event(job, event.type, event.reason, event.message)
        removed, rm_error = await self.pod_control.remove_finalizers(key, plan.remove_finalizers)
        status = copy.deepcopy(objects.status(current))
        changed = clean_uncounted(status, plan.uids_with_finalizer - removed)
        finished = rm_error is None and not plan.reached_max_uncounted \
            and enact_finished(status, plan.finished_condition, plan.terminating, self.clock.now())
        if changed or finished:
            current = await self._update_status(current, status)
        if finished and plan.finished_condition is not None:
            self._record_finished(current, plan.finished_condition)
        if rm_error is not None:
            raise rm_error
        if errors:
            raise errors[0]

    def _record_finished(self, job: Obj, condition: Obj) -> None:
        if condition["type"] == cond.COMPLETE:
            completions = objects.spec(job).get("completions")
            if completions is not None and int(objects.status(job).get("succeeded") or 0) > int(completions):
                self.recorder.event(job, WARNING, "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, WARNING, condition.get("reason", ""), condition.get("message", ""))

    async def _update_status(self, job: Obj, status: Obj) -> Obj:
        body = deep_copy(job)
        body["status"] = status
        return await self.client.update_status(JOBS, body, objects.namespace(job))

    # -- orphan pods --------------------------------------------------------------------

    async def reconcile_orphan_pod(self, key: str) -> Result | None:
        """Remove the tracking finalizer from a pod whose Job is gone or finished."""
        namespace, name = split_key(key)
        pod = self.pods.lister.get(name, namespace)
        if pod is None or not jobpods.has_finalizer(pod):
            return None
        job = self._job_of(pod)
        if job is not None and (not cond.is_finished(job) or managed_elsewhere(job)):
            return None
        if job is None and ownership.controller_of(pod) is not None \
                and ownership.controller_of(pod).get("kind") == KIND:  # type: ignore[union-attr]
            # The cache may lag behind a Job that was just created: ask the API.
            ref = ownership.controller_of(pod) or {}
            try:
                live = await self.client.get(JOBS, str(ref.get("name")), namespace)
                if objects.uid(live) == ref.get("uid") and not cond.is_finished(live):
                    return None
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
        try:
            await self.pod_control.patch(pod, jobpods.remove_finalizer_patch())
        except ApiError as exc:
            if not exc.is_not_found():
                raise
        return None


def managed_elsewhere(job: Obj) -> bool:
    """spec.managedBy names another controller (JobManagedBy, beta in 1.32): hands off."""
    managed_by = objects.spec(job).get("managedBy")
    return managed_by is not None and managed_by != MANAGED_BY
