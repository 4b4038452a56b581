"""The HorizontalPodAutoscaler controller: one sync per HPA every 15 s (the
horizontal-pod-autoscaler-sync-period), the first 15 s after the HPA appears.

A sync reads the target's Scale through the API (`<resource>/<name>/scale`), lets
`replicas.decide` say what Kubernetes would do without metrics, writes the new size
through the Scale subresource when it rescales (Normal SuccessfulRescale "New size: N;
reason: ..."), and writes the HPA's status (currentReplicas, desiredReplicas,
lastScaleTime, currentMetrics, conditions AbleToScale / ScalingActive) when it changed.
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.common import objects
from controllers.podautoscaler.replicas import Decision, decide, set_condition
from minikube_py.client import (
    DEPLOYMENTS,
    HORIZONTALPODAUTOSCALERS,
    REPLICASETS,
    STATEFULSETS,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventHandler,
    EventRecorder,
    RealClock,
    Resource,
    Result,
    SharedInformerFactory,
    WorkQueue,
    key_of,
    split_key,
)
from minikube_py.client.resources import REPLICATIONCONTROLLERS

Obj = dict[str, Any]
SYNC_PERIOD = 15.0
SCALABLE = {(r.group, r.kind): r for r in (DEPLOYMENTS, REPLICASETS, STATEFULSETS, REPLICATIONCONTROLLERS)}


def target_resource(ref: Obj) -> Resource | None:
    """The resource of a scaleTargetRef (the RESTMapper's job), if mkp knows it."""
    group = str(ref.get("apiVersion") or "").rpartition("/")[0]
    return SCALABLE.get((group, ref.get("kind")))


class HorizontalPodAutoscalerController:
    """Keeps each HPA's target within its bounds and its status as Kubernetes writes it."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None, sync_period: float = SYNC_PERIOD) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.sync_period = sync_period
        self.hpas = informers.informer(HORIZONTALPODAUTOSCALERS)
        self.queue: WorkQueue[str] = WorkQueue("horizontalpodautoscaler", clock=self.clock)
        # enqueueHPA: every request waits one sync period in the queue (AddRateLimited with
        # a fixed interval) and duplicates fold into it, so an HPA syncs every 15 s, its
        # first sync included, whatever its status writes and edits.
        self.hpas.add_event_handler(EventHandler(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                                 on_delete=lambda obj: None))
        self.controller = Controller("horizontal-pod-autoscaler", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.hpas])

    def _enqueue(self, hpa: Obj) -> None:
        self.queue.add_after(key_of(hpa), self.sync_period)

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        hpa = self.hpas.lister.get(name, namespace)
        if hpa is None or objects.metadata(hpa).get("deletionTimestamp"):
            return None
        status = copy.deepcopy(hpa.get("status") or {})
        now = objects.format_time(self.clock.now())
        scale = await self._get_scale(hpa, status, now)
        if scale is not None:
            decision = decide(hpa, scale)
            for ctype, value, reason, message in decision.conditions:
                set_condition(status, ctype, value, reason, message, now)
            for event_type, reason, message in decision.events:
                self.recorder.event(hpa, event_type, reason, message)
            await self._rescale(hpa, decision, status, now)
            self._set_status(status, decision)
        status["observedGeneration"] = objects.metadata(hpa).get("generation")
        if status != (hpa.get("status") or {}):
            try:
                await self.client.update_status(HORIZONTALPODAUTOSCALERS, {**hpa, "status": status}, namespace)
            except ApiError as exc:
                if not (exc.is_conflict() or exc.is_not_found()):
                    raise
        return Result(requeue_after=self.sync_period)

    async def _get_scale(self, hpa: Obj, status: Obj, now: str) -> Obj | None:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        resource = target_resource(ref)
        try:
            if resource is None:
                group = str(ref.get("apiVersion") or "").rpartition("/")[0]
                raise LookupError(f'no matches for kind "{ref.get("kind")}" in group "{group}"')
            return await self.client.get_scale(resource, ref.get("name", ""), objects.namespace(hpa))
        except (ApiError, LookupError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self.recorder.event(hpa, "Warning", "FailedGetScale", message)
            set_condition(status, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {message}", now)
            return None

    async def _rescale(self, hpa: Obj, decision: Decision, status: Obj, now: str) -> None:
        if decision.rescale_reason is None or decision.desired is None or decision.desired == decision.current:
            return
        ref = hpa["spec"]["scaleTargetRef"]
        resource = target_resource(ref)
        assert resource is not None
        try:
            await self.client.scale(resource, ref["name"], decision.desired, objects.namespace(hpa),
                                    field_manager="horizontal-pod-autoscaler")
        except ApiError as exc:
            self.recorder.event(hpa, "Warning", "FailedRescale", f"New size: {decision.desired}; reason: "
                                f"{decision.rescale_reason}; error: {exc.message or exc}")
            set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: {exc.message or exc}", now)
            decision.desired = None
            return
        set_condition(status, "AbleToScale", "True", "SucceededRescale",
                      f"the HPA controller was able to update the target scale to {decision.desired}", now)
        self.recorder.event(hpa, "Normal", "SuccessfulRescale",
                            f"New size: {decision.desired}; reason: {decision.rescale_reason}")
        status["lastScaleTime"] = now

    @staticmethod
    def _set_status(status: Obj, decision: Decision) -> None:
        status["currentReplicas"] = decision.current
        if decision.desired is not None:
            status["desiredReplicas"] = decision.desired
        if decision.metric_statuses is not None:
            status["currentMetrics"] = decision.metric_statuses
        elif decision.desired is not None:
            status.pop("currentMetrics", None)
