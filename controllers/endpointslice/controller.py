"""The EndpointSlice controller on the client runtime (pkg/controller/endpointslice's wiring).

Informers (shared): Services, Pods, Nodes, EndpointSlices. Keys: `namespace/name` of Services.

    Service added / updated / deleted        -> its key
    Pod added / updated / deleted            -> every Service selecting the old or new pod
    EndpointSlice managed by us (any event)  -> its kubernetes.io/service-name
    Node added, or its labels changed        -> every Service (zones; pods on unknown nodes)

`reconcile(key)` reads the caches only. Services without a selector are left alone (their
EndpointSlices are the user's, or the API server's for default/kubernetes). A slice we
just wrote that the cache does not show yet makes the sync wait (Kubernetes'
EndpointSliceTracker), so a quick second sync never creates the same slice twice. The
pure `reconcile_slices` decides; this module writes and records
FailedToUpdateEndpointSlices when a write fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from controllers.common import objects
from controllers.endpointslice.podendpoints import service_selector
from controllers.endpointslice.reconcile import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    SlicePlan,
    reconcile_slices,
)
from controllers.endpointslice.tracking import TriggerTimeTracker, enqueue_all, services_selecting
from minikube_py.client import (
    ENDPOINTSLICES,
    NODES,
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
    Lister,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    key_of,
    split_key,
)

log = logging.getLogger("controllers.endpointslice")

Obj = dict[str, Any]
SLICES_BY_SERVICE = "endpointslice/by-service"


def slice_service_index(obj: Obj) -> list[str]:
    """`namespace/service` of a slice this controller manages."""
    labels = objects.labels(obj)
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{objects.namespace(obj)}/{labels[SERVICE_NAME_LABEL]}"]


def _revision(obj: Obj) -> int:
    try:
        return int(objects.metadata(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


class NodesByName(Mapping[str, Obj]):
    """The node cache as the read-only name -> Node mapping the reconciler asks (no copy)."""

    def __init__(self, lister: Lister) -> None:
        self._lister = lister

    def __getitem__(self, name: str) -> Obj:
        node = self._lister.get(name)
        if node is None:
            raise KeyError(name)
        return node

    def __iter__(self) -> Iterator[str]:
        return (objects.name(n) for n in self._lister.list())

    def __len__(self) -> int:
        return len(self._lister)


class SliceTracker:
    """What we last wrote per Service: slice name -> revision written (None: deleted).
    The cache is stale for a Service while it lags behind any of these."""

    def __init__(self) -> None:
        self._written: dict[str, dict[str, int | None]] = {}

    def wrote(self, service_key: str, slice_obj: Obj) -> None:
        self._written.setdefault(service_key, {})[objects.name(slice_obj)] = _revision(slice_obj)

    def deleted(self, service_key: str, name: str) -> None:
        self._written.setdefault(service_key, {})[name] = None

    def stale(self, service_key: str, cached: list[Obj]) -> bool:
        written = self._written.get(service_key)
        if not written:
            return False
        revisions = {objects.name(s): _revision(s) for s in cached}
        for name, revision in written.items():
            if revision is None and name in revisions:
                return True
            if revision is not None and revisions.get(name, -1) < revision:
                return True
        del self._written[service_key]
        return False

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)

    def observed_deletion(self, service_key: str, name: str) -> None:
        """A slice is gone from the cache: whatever we wrote there is no longer awaited
        (someone else may have deleted it; the next sync re-creates what is missing)."""
        written = self._written.get(service_key)
        if written is not None:
            written.pop(name, None)


class EndpointSliceController:
    """Keeps each selector Service's EndpointSlices in step with its pods."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.services = informers.informer(SERVICES)
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.slices = informers.informer(ENDPOINTSLICES)
        if not self.slices.store.has_indexer(SLICES_BY_SERVICE):
            self.slices.add_indexer(SLICES_BY_SERVICE, slice_service_index)
        self.queue: WorkQueue[str] = WorkQueue("endpointslice", clock=self.clock)
        self.triggers = TriggerTimeTracker()
        self.tracker = SliceTracker()
        self.services.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new), on_delete=self._enqueue))
        self.pods.add_event_handler(EventHandler(
            on_add=self._pod_changed, on_update=self._pod_changed, on_delete=self._pod_changed))
        self.slices.add_event_handler(EventHandler(
            on_add=self._slice_changed, on_update=self._slice_changed, on_delete=self._slice_deleted))
        self.nodes.add_event_handler(EventHandler(on_add=self._node_changed, on_update=self._node_updated))
        self.controller = Controller("endpointslice", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.services, self.pods, self.nodes, self.slices])

    async def run(self) -> None:
        await self.controller.run()

    # -- event handlers -----------------------------------------------------------------

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(obj))

    def _pod_changed(self, *pod_objs: Obj | DeletedFinalStateUnknown) -> None:
        enqueue_all(self.queue, services_selecting(self.services.lister, *pod_objs))

    def _slice_changed(self, *slice_objs: Obj | DeletedFinalStateUnknown) -> None:
        for obj in slice_objs:
            slice_obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            enqueue_all(self.queue, slice_service_index(slice_obj))

    def _slice_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        slice_obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for key in slice_service_index(slice_obj):
            self.tracker.observed_deletion(key, objects.name(slice_obj))
        self._slice_changed(obj)

    def _node_changed(self, node: Obj) -> None:
        enqueue_all(self.queue, (key_of(s) for s in self.services.lister.list()))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if objects.labels(old) != objects.labels(new):
            self._node_changed(new)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        service = self.services.lister.get(name, namespace)
        cached = self.slices.lister.by_index(SLICES_BY_SERVICE, key)
        if service is None:
            # The garbage collector deletes the slices (their ownerReference), as in Kubernetes.
            self.triggers.forget(key)
            self.tracker.forget(key)
            return None
        if objects.spec(service).get("type") == "ExternalName":
            await self._write(key, service, SlicePlan(delete=list(cached)))
            return None
        selector = service_selector(service)
        if selector is None:
            return None
        if self.tracker.stale(key, cached):
            return Result(requeue=True)
        pod_objs = self.pods.lister.list(namespace, selector)
        nodes = NodesByName(self.nodes.lister)
        trigger = self.triggers.compute(key, service, pod_objs)
        plan = reconcile_slices(service, pod_objs, cached, nodes, max_per_slice=self.max_endpoints_per_slice,
                                trigger_time=trigger)
        await self._write(key, service, plan)
        missing_nodes = any(objects.spec(p).get("nodeName") and objects.spec(p)["nodeName"] not in nodes
                            for p in pod_objs)
        return Result(requeue=True) if missing_nodes else None

    async def _write(self, key: str, service: Obj | None, plan: SlicePlan) -> None:
        if plan.empty():
            return
        namespace = split_key(key)[0]
        try:
            for slice_obj in plan.create:
                self.tracker.wrote(key, await self.client.create(ENDPOINTSLICES, slice_obj, namespace))
            for slice_obj in plan.update:
                self.tracker.wrote(key, await self.client.update(ENDPOINTSLICES, slice_obj, namespace))
            for slice_obj in plan.delete:
                try:
                    await self.client.delete(ENDPOINTSLICES, objects.name(slice_obj), namespace)
                except ApiError as exc:
                    if not exc.is_not_found():
                        raise
                self.tracker.deleted(key, objects.name(slice_obj))
        except ApiError as exc:
            if service is not None and not exc.is_conflict():
                self.recorder.event(service, WARNING, "FailedToUpdateEndpointSlices",
                                    f"Error updating Endpoint Slices for Service {key}: {exc.message or exc}")
            raise
