"""The garbage collector (kube-controller-manager's garbage-collector-controller).

    discovery (every 30 s) -> one informer ("monitor") per deletable resource
    monitors' events        -> Graph (graph.py): uids onto two work queues
    attemptToDelete(uid)    -> live GET of the object and of each owner (uid compared):
        owners all gone          -> DELETE it (Background, or what its own finalizer says)
        some owners gone         -> merge-patch the dangling references away
        an owner in foreground   -> DELETE it (Foreground if it has dependents itself)
        it is in foreground      -> no blocking dependents left: drop `foregroundDeletion`
    attemptToOrphan(uid)    -> remove its ownerReference from every dependent, then
                               drop the `orphan` finalizer

Writes are guarded: deletes carry uid + resourceVersion preconditions and patches the
object's resourceVersion, so a change in between is a 409 and the uid is tried again
from fresh reads. An owner reference whose apiVersion/kind the server does not serve is
retried with backoff (it may be a CRD not discovered yet); the dependent is kept.
Events (core and events.k8s.io) are not monitored, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controllers.garbagecollector.discovery import Discovery, discover
from controllers.garbagecollector.graph import FOREGROUND, ORPHAN, Graph, Identity, Node, has_finalizer
from minikube_py.client import (
    CUSTOMRESOURCEDEFINITIONS,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    Informer,
    RealClock,
    Resource,
    Result,
    SharedInformerFactory,
    WorkQueue,
)

log = logging.getLogger("controllers.garbagecollector")
Obj = dict[str, Any]
COMPONENT = "garbage-collector-controller"
RESYNC_PERIOD = 30.0  # seconds between discovery rounds
SYNC_TIMEOUT = 30.0  # real seconds the workers wait for the monitors' first lists
IGNORED = {("", "events"), ("events.k8s.io", "events")}


class RestMappingError(Exception):
    """An ownerReference names an apiVersion/kind the server does not serve (yet)."""


class NamespacedOwnerOfClusterScopedObject(Exception):
    """A cluster-scoped dependent names a namespaced owner kind: never resolvable."""


class GarbageCollector:
    """Deletes dependents of deleted owners (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 20, clock: Clock | None = None, resync_period: float = RESYNC_PERIOD) -> None:
        self.client = client
        self.factory = informers
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.resync_period = resync_period
        self.discovery = Discovery()
        self.delete_queue: WorkQueue[str] = WorkQueue("garbage_collector_attempt_to_delete", clock=self.clock)
        self.orphan_queue: WorkQueue[str] = WorkQueue("garbage_collector_attempt_to_orphan", clock=self.clock)
        self.graph = Graph(attempt_to_delete=self.delete_queue.add, attempt_to_orphan=self.orphan_queue.add,
                           invalid_namespace=self._report_invalid_namespace)
        self.monitors: dict[Resource, tuple[Informer, EventHandler, bool]] = {}
        self._crds_changed = asyncio.Event()
        crds = informers.informer(CUSTOMRESOURCEDEFINITIONS)
        crds.add_event_handler(EventHandler(on_add=self._crd_changed, on_update=lambda old, new: self._crd_changed(new),
                                            on_delete=self._crd_changed))
        self.deleters = Controller("garbagecollector-delete", self.delete_queue, self.attempt_to_delete,
                                   workers=workers)
        self.orphaners = Controller("garbagecollector-orphan", self.orphan_queue, self.attempt_to_orphan,
                                    workers=max(1, workers // 4))

    async def run(self) -> None:
        """Discover, start the monitors, wait for them, then work until cancelled."""
        while not await self.resync():
            await self.clock.sleep(1.0)
        # As in Kubernetes 1.32 the workers do not wait forever for every monitor: a
        # resource that cannot be listed must not stop collection of all the others.
        synced = await asyncio.gather(*(inf.wait_synced(SYNC_TIMEOUT) for inf, _, _ in self.monitors.values()))
        for (resource, _), ok in zip(self.monitors.items(), synced, strict=False):
            if not ok:
                log.warning("garbage collector: %s not synced after %ss; starting anyway", resource, SYNC_TIMEOUT)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.deleters.run())
                group.create_task(self.orphaners.run())
                group.create_task(self._resync_loop())
        finally:
            for resource in list(self.monitors):
                await self._stop_monitor(resource)

    async def _resync_loop(self) -> None:
        """Discovery again every resync_period, and soon after any CRD changes."""
        while True:
            sleeper = asyncio.create_task(self.clock.sleep(self.resync_period))
            changed = asyncio.create_task(self._crds_changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()
            self._crds_changed.clear()
            await self.resync()

    # -- monitors -------------------------------------------------------------------------

    async def resync(self) -> bool:
        """One discovery round: monitors follow the deletable resources. False if
        discovery could not be read at all."""
        try:
            found = await discover(self.client)
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.warning("garbage collector discovery failed: %s", exc)
            return False
        self.discovery = found
        wanted = {r.resource for r in found.deletable() if (r.resource.group, r.resource.plural) not in IGNORED}
        for resource in wanted - set(self.monitors):
            self._start_monitor(resource)
        for resource in set(self.monitors) - wanted:
            await self._stop_monitor(resource)
        return True

    def _start_monitor(self, resource: Resource) -> None:
        owned = not any(i.resource == resource and i.namespace is None and not i.label_selector
                        and not i.field_selector for i in self.factory.informers())
        informer = self.factory.informer(resource)
        handler = EventHandler(on_add=self.graph.observe, on_update=lambda old, new: self.graph.observe(new, old),
                               on_delete=self._deleted)
        informer.add_event_handler(handler)
        informer.start()
        self.monitors[resource] = (informer, handler, owned)

    async def _stop_monitor(self, resource: Resource) -> None:
        informer, handler, owned = self.monitors.pop(resource)
        informer.remove_event_handler(handler)
        if owned:
            await informer.stop()

    def _crd_changed(self, obj: object) -> None:
        self._crds_changed.set()

    def _deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.graph.observe_deleted(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    def synced(self) -> bool:
        return bool(self.monitors) and all(i.has_synced() for i, _, _ in self.monitors.values())

    # -- reads ----------------------------------------------------------------------------

    def _resource(self, api_version: str, kind: str) -> Resource:
        resource = self.discovery.resource_for(api_version, kind)
        if resource is None:
            raise RestMappingError(f"unable to map {api_version}, Kind={kind}")
        return resource

    async def _get(self, identity: Identity) -> Obj | None:
        """The live object (None if not found)."""
        resource = self._resource(identity.api_version, identity.kind)
        try:
            return await self.client.get(resource, identity.name, identity.namespace or None)
        except ApiError as exc:
            if exc.is_not_found():
                return None
            raise
        except ValueError:  # a namespaced kind without a namespace: cannot exist
            return None

    async def _is_dangling(self, ref: Obj, item: Node) -> tuple[bool, Obj | None]:
        """isDangling: (owner absent, the live owner)."""
        coords = Identity.of_ref(ref, "")
        if coords in self.graph.absent:
            return True, None
        in_namespace = Identity.of_ref(ref, item.identity.namespace)
        if in_namespace in self.graph.absent:
            return True, None
        resource = self._resource(coords.api_version, coords.kind)
        if resource.namespaced and not item.identity.namespace:
            raise NamespacedOwnerOfClusterScopedObject(str(coords))
        key = in_namespace if resource.namespaced else coords
        owner = await self._get(key)
        if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
            self.graph.absent.add(key)
            return True, None
        return False, owner

    # -- attemptToDelete ------------------------------------------------------------------

    async def attempt_to_delete(self, uid: str) -> Result | None:
        node = self.graph.get(uid)
        if node is None:
            return None
        try:
            done = await self._attempt_to_delete_item(node)
        except RestMappingError as exc:
            log.info("garbage collector: %s: %s; retrying", node.identity, exc)
            return Result(requeue=True)
        except NamespacedOwnerOfClusterScopedObject:
            # Never resolvable: not retried. The graph reported it (OwnerRefInvalidNamespace)
            # when it saw both the dependent and the namespaced owner, as Kubernetes does.
            return None
        if not done and not node.observed:
            return Result(requeue=True)  # exists but not seen by an informer yet
        return None

    async def _attempt_to_delete_item(self, item: Node) -> bool:
        """True when a virtual delete was made (nothing to requeue)."""
        if item.being_deleted and not item.deleting_dependents:
            return False
        latest = await self._get(item.identity)
        if latest is None or (latest.get("metadata") or {}).get("uid") != item.uid:
            self.graph.virtual_delete(item.identity)
            return True
        if item.deleting_dependents:
            await self._process_deleting_dependents(item)
            return False
        refs = list((latest.get("metadata") or {}).get("ownerReferences") or [])
        if not refs:
            return False
        solid, dangling, waiting = [], [], []
        for ref in refs:
            absent, owner = await self._is_dangling(ref, item)
            if absent:
                dangling.append(ref)
            elif owner is not None and owner.get("metadata", {}).get("deletionTimestamp") \
                    and has_finalizer(owner, FOREGROUND):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if dangling or waiting:
                gone = {str(r.get("uid")) for r in dangling + waiting}
                await self._patch_owner_refs(item, latest, [r for r in refs if str(r.get("uid")) not in gone])
            return False
        if waiting and item.dependents:
            if any(d.deleting_dependents for d in self.graph.dependents(item)):
                unblocked = [{**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in refs]
                latest = await self._patch_owner_refs(item, latest, unblocked) or latest
            return await self._delete(item, latest, "Foreground")
        policy = "Orphan" if has_finalizer(latest, ORPHAN) else \
            "Foreground" if has_finalizer(latest, FOREGROUND) else "Background"
        return await self._delete(item, latest, policy)

    async def _process_deleting_dependents(self, item: Node) -> None:
        blocking = self.graph.blocking_dependents(item)
        if not blocking:
            await self._remove_finalizer(item, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.delete_queue.add(dep.uid)

    async def _delete(self, item: Node, latest: Obj, policy: str) -> bool:
        resource = self._resource(item.identity.api_version, item.identity.kind)
        meta = latest.get("metadata") or {}
        log.info("garbage collector: deleting %s (propagationPolicy %s)", item.identity, policy)
        try:
            await self.client.delete(resource, item.identity.name, item.identity.namespace or None,
                                     propagation_policy=policy,
                                     preconditions={"uid": item.uid, "resourceVersion": str(meta.get("resourceVersion"))})
        except ApiError as exc:
            if exc.is_not_found():
                self.graph.virtual_delete(item.identity)
                return True
            raise
        return False

    async def _patch_owner_refs(self, item: Node, latest: Obj, refs: list[Obj]) -> Obj | None:
        """JSON merge patch of metadata.ownerReferences at the version just read."""
        resource = self._resource(item.identity.api_version, item.identity.kind)
        meta = latest.get("metadata") or {}
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta.get("resourceVersion"),
                              "uid": item.uid}}
        try:
            return await self.client.patch(resource, item.identity.name, patch, item.identity.namespace or None)
        except ApiError as exc:
            if exc.is_not_found():
                return None
            raise

    async def _remove_finalizer(self, item: Node, finalizer: str) -> None:
        latest = await self._get(item.identity)
        if latest is None or (latest.get("metadata") or {}).get("uid") != item.uid:
            return
        meta = latest.get("metadata") or {}
        finalizers = [f for f in meta.get("finalizers") or [] if f != finalizer]
        if finalizers == list(meta.get("finalizers") or []):
            return
        resource = self._resource(item.identity.api_version, item.identity.kind)
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta.get("resourceVersion")}}
        await self.client.patch(resource, item.identity.name, patch, item.identity.namespace or None)

    # -- attemptToOrphan ------------------------------------------------------------------

    async def attempt_to_orphan(self, uid: str) -> Result | None:
        owner = self.graph.get(uid)
        if owner is None:
            return None
        for dep in self.graph.dependents(owner):
            latest = await self._get(dep.identity)
            if latest is None or (latest.get("metadata") or {}).get("uid") != dep.uid:
                continue
            refs = list((latest.get("metadata") or {}).get("ownerReferences") or [])
            kept = [r for r in refs if r.get("uid") != uid]
            if kept != refs:
                await self._patch_owner_refs(dep, latest, kept)
        await self._remove_finalizer(owner, ORPHAN)
        return None

    # -- events ---------------------------------------------------------------------------

    @staticmethod
    def _event_ref(node: Node) -> Obj:
        ident = node.identity
        return {"kind": ident.kind, "apiVersion": ident.api_version, "namespace": ident.namespace,
                "name": ident.name, "uid": ident.uid}

    def _report_invalid_namespace(self, node: Node, ref: Obj) -> None:
        invalid = Identity.of_ref(ref, node.identity.namespace)
        self.recorder.event(self._event_ref(node), WARNING, "OwnerRefInvalidNamespace",
                            f'ownerRef {invalid} does not exist in namespace "{node.identity.namespace}"')
