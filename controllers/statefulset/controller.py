"""The StatefulSet controller on the client runtime (pkg/controller/statefulset's wiring).

Informers (shared): StatefulSets, Pods, ControllerRevisions, PersistentVolumeClaims.
Keys: `namespace/name` of StatefulSets.

    StatefulSet added / updated / deleted -> its own key
    Pod added / updated / deleted         -> its controlling StatefulSet; an orphan whose
                                             labels changed: every StatefulSet selecting it
    ControllerRevisions, claims           -> read from their caches only (no handlers, as
                                             in Kubernetes)

`reconcile(key)` reads the caches: the set, the namespace's pods it may claim (they must
match the selector *and* be named `<set>-<ordinal>`: adopting orphans, releasing pods that
stopped matching), and its revisions (adopting orphaned ones). Then `StatefulSetControl`
does the sync (sync.py). With minReadySeconds, a set not fully available is looked at
again after minReadySeconds, as Kubernetes requeues it.
"""

from __future__ import annotations

import logging
from typing import Any

from controllers.common import objects, ownership
from controllers.common.executor import OwnerEnqueuer, unwrap
from controllers.history import adopt_revision, list_revisions
from controllers.statefulset import identity
from controllers.statefulset.podcontrol import Recorder, StatefulPodControl
from controllers.statefulset.sync import StatefulSetControl
from minikube_py.client import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
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
    Selector,
    SharedInformerFactory,
    WorkQueue,
    from_label_selector,
    key_of,
    split_key,
)

log = logging.getLogger("controllers.statefulset")
Obj = dict[str, Any]


class AdoptionRefused(Exception):
    """RecheckDeletionTimestamp said no: the set is gone, recreated or being deleted."""


class StatefulSetController:
    """Keeps each StatefulSet's ordered pods, claims and revisions (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.sets = informers.informer(STATEFULSETS)
        self.pods = informers.informer(PODS)
        self.revisions = informers.informer(CONTROLLERREVISIONS)
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.queue: WorkQueue[str] = WorkQueue("statefulset", clock=self.clock)
        self.reconciler = StatefulSetReconciler(client, self.sets.lister, self.pods.lister, self.revisions.lister,
                                                self.claims.lister, recorder, self.clock)
        self.sets.add_event_handler(EventHandler(on_add=self._enqueue, on_update=lambda old, cur: self._enqueue(cur),
                                                 on_delete=self._set_deleted))
        self.pods.add_event_handler(OwnerEnqueuer(self.queue, self.sets.lister, identity.KIND).handler())
        self.controller = Controller("statefulset", self.queue, self.reconciler.reconcile, workers=workers,
                                     wait_for=[self.sets, self.pods, self.revisions, self.claims])

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await self.controller.run()

    def _enqueue(self, sts: Obj) -> None:
        self.queue.add(key_of(sts))

    def _set_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(unwrap(obj)))


class StatefulSetReconciler:
    """reconcile(key) over listers (informer caches in the controller, plain stores in tests)."""

    def __init__(self, client: ApiClient, sets: Lister, pods: Lister, revisions: Lister, claims: Lister,
                 recorder: Recorder, clock: Clock) -> None:
        self.client = client
        self.sets = sets
        self.pods = pods
        self.revisions = revisions
        self.clock = clock
        self.control = StatefulSetControl(client, StatefulPodControl(client, claims, recorder))

    async def reconcile(self, key: str) -> Result | None:
        """One sync of the StatefulSet `key`."""
        namespace, name = split_key(key)
        sts = self.sets.get(name, namespace)
        if sts is None:
            return None
        try:
            selector = from_label_selector(objects.spec(sts).get("selector"))
        except ValueError as exc:
            log.error("statefulset %s: invalid selector: %s", key, exc)
            return None
        await self.adopt_orphan_revisions(sts, selector)
        set_pods = await self.claim_pods(sts, selector)
        revisions = list_revisions(self.revisions, sts, selector)
        status = await self.control.update_stateful_set(sts, set_pods, revisions, self.clock.now())
        min_ready = int(objects.spec(sts).get("minReadySeconds") or 0)
        if min_ready > 0 and status is not None and status.get("availableReplicas") != identity.replicas(sts):
            return Result(requeue_after=float(min_ready))
        return None

    async def can_adopt(self, sts: Obj) -> None:
        """RecheckDeletionTimestamp: a fresh read of the set must be the same, live set."""
        fresh = await self.client.get(STATEFULSETS, objects.name(sts), objects.namespace(sts))
        if objects.uid(fresh) != objects.uid(sts):
            raise AdoptionRefused(f"original StatefulSet {objects.key(sts)} is gone: got uid {objects.uid(fresh)}, "
                                  f"wanted {objects.uid(sts)}")
        if objects.being_deleted(fresh):
            raise AdoptionRefused(f"{objects.key(sts)} has just been deleted at "
                                  f"{objects.metadata(fresh).get('deletionTimestamp')}")

    async def adopt_orphan_revisions(self, sts: Obj, selector: Selector) -> None:
        """adoptOrphanRevisions: matching revisions without a controller become ours."""
        orphans = [r for r in list_revisions(self.revisions, sts, selector)
                   if ownership.controller_of(r) is None]
        if not orphans:
            return
        await self.can_adopt(sts)
        for revision in orphans:
            await adopt_revision(self.client, sts, revision, api_version=identity.API_VERSION, kind=identity.KIND)

    async def claim_pods(self, sts: Obj, selector: Selector) -> list[Obj]:
        """getPodsForStatefulSet: ClaimPods with the selector and the `<set>-<ordinal>` filter."""
        candidates = self.pods.list(objects.namespace(sts))
        claimed = ownership.claim(sts, candidates,
                                  lambda p: selector.matches(objects.labels(p)) and identity.is_member_of(sts, p))
        owned = list(claimed.owned)
        if claimed.adopt:
            await self.can_adopt(sts)
        ref = ownership.controller_ref(sts, api_version=identity.API_VERSION, kind=identity.KIND)
        for pod in claimed.adopt:
            try:
                await self.client.patch(PODS, objects.name(pod), ownership.adopt_patch(pod, ref),
                                        objects.namespace(pod), patch_type="strategic")
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
                owned.remove(pod)
        for pod in claimed.release:
            try:
                await self.client.patch(PODS, objects.name(pod), ownership.release_patch(pod, sts),
                                        objects.namespace(pod), patch_type="strategic")
            except ApiError as exc:
                if not (exc.is_not_found() or exc.is_invalid()):
                    raise
        return owned
