"""The Endpoints controller on the client runtime (pkg/controller/endpoint's wiring).

Informers (shared): Services, Pods, Endpoints. Keys: `namespace/name` of Services.

    Service added / updated / deleted  -> its key
    Pod added / updated / deleted      -> every Service selecting the old or new pod
    Endpoints deleted                  -> its key (it is re-made if the Service wants it)

`reconcile(key)`: no Service -> delete the same-named Endpoints, as Kubernetes does (an
Endpoints carrying the leader-election annotation is left alone); a Service without a
selector -> nothing (its Endpoints are the user's, or the API server's for
default/kubernetes); otherwise `desired_endpoints` decides and this writes.
"""

from __future__ import annotations

import logging
from typing import Any

from controllers.common import objects
from controllers.endpoints.reconcile import desired_endpoints
from controllers.endpointslice.podendpoints import service_selector
from controllers.endpointslice.tracking import TriggerTimeTracker, enqueue_all, services_selecting
from minikube_py.client import (
    ENDPOINTS,
    PODS,
    SERVICES,
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
    key_of,
    split_key,
)

log = logging.getLogger("controllers.endpoints")

Obj = dict[str, Any]
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


class EndpointsController:
    """Keeps each selector Service's Endpoints object in step with its pods."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.services = informers.informer(SERVICES)
        self.pods = informers.informer(PODS)
        self.endpoints = informers.informer(ENDPOINTS)
        self.queue: WorkQueue[str] = WorkQueue("endpoint", clock=self.clock)
        self.triggers = TriggerTimeTracker()
        self.services.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new), on_delete=self._enqueue))
        self.pods.add_event_handler(EventHandler(
            on_add=self._pod_changed, on_update=self._pod_changed, on_delete=self._pod_changed))
        self.endpoints.add_event_handler(EventHandler(on_delete=self._enqueue))
        self.controller = Controller("endpoint", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.services, self.pods, self.endpoints])

    async def run(self) -> None:
        await self.controller.run()

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(obj))

    def _pod_changed(self, *pod_objs: Obj | DeletedFinalStateUnknown) -> None:
        enqueue_all(self.queue, services_selecting(self.services.lister, *pod_objs))

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        service = self.services.lister.get(name, namespace)
        current = self.endpoints.lister.get(name, namespace)
        if service is None:
            self.triggers.forget(key)
            if current is not None and LEADER_ANNOTATION not in objects.annotations(current):
                try:
                    await self.client.delete(ENDPOINTS, name, namespace)
                except ApiError as exc:
                    if not exc.is_not_found():
                        raise
            return None
        selector = service_selector(service)
        if selector is None:
            return None
        pod_objs = self.pods.lister.list(namespace, selector)
        trigger = self.triggers.compute(key, service, pod_objs)
        body = desired_endpoints(service, pod_objs, current, trigger_time=trigger)
        if body is None:
            return None
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace)
            else:
                await self.client.update(ENDPOINTS, body, namespace)
        except ApiError as exc:
            if exc.is_already_exists() or exc.is_conflict():
                return Result(requeue=True)  # our cache is behind; the next sync reads anew
            if current is None:
                self.recorder.event(body, WARNING, "FailedToCreateEndpoint",
                                    f"Failed to create endpoint for service {key}: {exc.message or exc}")
            else:
                self.recorder.event(body, WARNING, "FailedToUpdateEndpoint",
                                    f"Failed to update endpoint {key}: {exc.message or exc}")
            raise
        return None
