"""The Job controller's pod writes (its podControl): create, delete, drop the finalizer.

- `create`: pods from (template, generateName) pairs in slow-start batches (1, 2, 4, ...);
  the first batch with an error is the last, and creations that failed or never ran lower
  the expectations. Events SuccessfulCreate "Created pod: <name>" / FailedCreate.
- `delete`: all at once; with `remove_finalizer` (deleteJobPods: suspension, too many
  pods) the tracking finalizer goes first so the pod is not counted; without it
  (deleteActivePods: a finished Job) the pod is counted failed. Events SuccessfulDelete
  "Deleted pod: <name>" / FailedDelete.
- `remove_finalizers`: records the finalizer expectations first, so a sync that still
  sees the old pod does not count it twice; a pod already gone counts as removed.
Patches are strategic merge with the pod's uid, so a recreated pod is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from controllers.common import objects
from controllers.common.actions import CreatePods, DeletePods
from controllers.common.executor import error_text
from controllers.common.expectations import ExpectationsStore
from controllers.job import jobpods
from minikube_py.client import NORMAL, PODS, WARNING, ApiClient, ApiError, EventRecorder, is_not_found, key_of

Obj = dict[str, Any]
SLOW_START_INITIAL_BATCH = 1


class JobPodControl:
    """Pod writes for the Job controller, with its expectations and Events."""

    def __init__(self, client: ApiClient, recorder: EventRecorder, expectations: ExpectationsStore,
                 finalizer_expectations: dict[str, set[str]], owner_ref: Callable[[Obj], Obj]) -> None:
        self.client = client
        self.recorder = recorder
        self.expectations = expectations
        self.finalizer_expectations = finalizer_expectations
        self.owner_ref = owner_ref  # job -> its controller ownerReference

    async def delete(self, job: Obj, pods: Sequence[Obj], *, remove_finalizer: bool) -> list[BaseException]:
        """deleteActivePods (finalizers kept) or deleteJobPods (finalizer removed first)."""
        key = key_of(job)

        async def delete(pod: Obj) -> None:
            try:
                if remove_finalizer and jobpods.has_finalizer(pod):
                    await self.patch(pod, jobpods.remove_finalizer_patch())
                await self.client.delete(PODS, objects.name(pod), objects.namespace(pod))
            except Exception as exc:
                if remove_finalizer:
                    self.expectations.deletion_observed(key, key_of(pod))
                if is_not_found(exc):
                    return
                self.recorder.event(job, WARNING, "FailedDelete", DeletePods.failure_event(error_text(exc)).message)
                raise
            self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {objects.name(pod)}")

        return await _gather_errors([delete(p) for p in pods])

    async def create(self, job: Obj, templates: list[tuple[Obj, str]]) -> list[BaseException]:
        """Slow-start batches (1, 2, 4, ...); the first batch with an error is the last."""
        key = key_of(job)
        owner = self.owner_ref(job)
        pending = list(templates)
        batch = min(len(pending), SLOW_START_INITIAL_BATCH)
        errors: list[BaseException] = []
        while pending and batch > 0:
            current, pending = pending[:batch], pending[batch:]
            errors = await _gather_errors([self._create_pod(job, owner, t, g) for t, g in current])
            if errors:
                for _ in range(len(errors) + len(pending)):
                    self.expectations.creation_observed(key)
                break
            batch = min(2 * batch, len(pending))
        return errors

    async def _create_pod(self, job: Obj, owner: Obj, template: Obj, generate_name: str) -> None:
        action = CreatePods(template, 1, owner, generate_name, objects.namespace(job))
        try:
            pod = await self.client.create(PODS, action.pod(), objects.namespace(job))
        except ApiError as exc:
            event = action.failure_event(error_text(exc))
            self.recorder.event(job, event.type, event.reason, event.message)
            raise
        event = action.success_event(objects.name(pod))
        self.recorder.event(job, event.type, event.reason, event.message)

    async def remove_finalizers(self, key: str, pods: Sequence[Obj]) -> tuple[set[str], BaseException | None]:
        """removeTrackingFinalizerFromPods: the uids whose finalizer is gone, and the first error."""
        if not pods:
            return set(), None
        expected = self.finalizer_expectations.setdefault(key, set())
        expected.update(objects.uid(p) for p in pods)
        removed: set[str] = set()

        async def remove(pod: Obj) -> None:
            try:
                await self.patch(pod, jobpods.remove_finalizer_patch())
            except Exception as exc:
                expected.discard(objects.uid(pod))
                if not is_not_found(exc):
                    raise
            removed.add(objects.uid(pod))

        errors = await _gather_errors([remove(p) for p in pods])
        return removed, (errors[0] if errors else None)

    async def patch(self, pod: Obj, patch: Obj) -> None:
        body = {"metadata": {**patch["metadata"], "uid": objects.uid(pod)}}
        await self.client.patch(PODS, objects.name(pod), body, objects.namespace(pod), patch_type="strategic")


async def _gather_errors(calls: Sequence[Awaitable[None]]) -> list[BaseException]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if isinstance(error, asyncio.CancelledError):
            raise error
    return errors
