"""The PersistentVolume binder (kube-controller-manager's `persistentvolume-binder-controller`).

Informers (shared): PersistentVolumes, PersistentVolumeClaims, StorageClasses and Pods
(indexed by the claims their volumes use). Two work queues, as in Kubernetes:

    volumes  key `name`            PV added / updated / deleted
    claims   key `namespace/name`  PVC added / updated / deleted; a deleted PV's claim
                                   (so a bound claim notices it is Lost); a deleted
                                   claim's volume is synced (so it is Released)

`reconcile_volume` and `reconcile_claim` read only the caches and run syncVolume /
syncClaim (sync_volumes.py, sync_claims.py). Kubernetes re-lists everything every 15
seconds (--pvclaimbinder-sync-period); here every key asks to be synced again after
that period while it is not settled (a Pending claim, a Released or Failed volume), so
a claim waiting for a provisioner keeps getting its ExternalProvisioning event and a
failed reclaim is retried.
"""

from __future__ import annotations

import asyncio
from typing import Any

from controllers.common import objects
from controllers.volume.sync_claims import CLAIMS_BY_POD_INDEX, ClaimSync, pod_claim_keys
from controllers.volume.sync_volumes import VolumeSync
from controllers.volume.writes import VolumeWriter
from minikube_py.client import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
    ApiClient,
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
)

Obj = dict[str, Any]
COMPONENT = "persistentvolume-controller"
SYNC_PERIOD = 15.0  # --pvclaimbinder-sync-period


def _unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class PersistentVolumeBinderController:
    """Binds claims to volumes and runs reclaim policies (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 1, clock: Clock | None = None, sync_period: float = SYNC_PERIOD) -> None:
        self.clock = clock or RealClock()
        self.sync_period = sync_period
        self.volumes = informers.informer(PERSISTENTVOLUMES)
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.classes = informers.informer(STORAGECLASSES)
        self.pods = informers.informer(PODS)
        if not self.pods.store.has_indexer(CLAIMS_BY_POD_INDEX):
            self.pods.add_indexer(CLAIMS_BY_POD_INDEX, pod_claim_keys)
        self.volume_queue: WorkQueue[str] = WorkQueue("volumes", clock=self.clock)
        self.claim_queue: WorkQueue[str] = WorkQueue("claims", clock=self.clock)
        writer = VolumeWriter(client, recorder, self.clock)
        self.claim_sync = ClaimSync(writer, recorder, self.volumes.lister, self.classes.lister, self.pods.lister)
        self.volume_sync = VolumeSync(writer, recorder, self.claims.lister, self.claim_queue.add)
        self.volumes.add_event_handler(EventHandler(
            on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new),
            on_delete=self._volume_deleted))
        self.claims.add_event_handler(EventHandler(
            on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new),
            on_delete=self._claim_deleted))
        caches = [self.volumes, self.claims, self.classes, self.pods]
        # One worker per queue: Kubernetes runs the binder single-threaded, which keeps two
        # claims from racing for the same volume.
        self.controllers = [
            Controller("persistentvolume-binder volumes", self.volume_queue, self.reconcile_volume,
                       workers=workers, wait_for=caches),
            Controller("persistentvolume-binder claims", self.claim_queue, self.reconcile_claim,
                       workers=workers, wait_for=caches),
        ]

    @classmethod
    def from_context(cls, ctx: Any) -> PersistentVolumeBinderController:
        """Built by the controller-manager; its Events say `persistentvolume-controller`,
        as kube-controller-manager's do."""
        return cls(ctx.client, ctx.informers, ctx.recorder(COMPONENT),
                   workers=ctx.workers("persistentvolume-binder-controller"), clock=ctx.clock)

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await asyncio.gather(*(controller.run() for controller in self.controllers))

    # -- event handlers -----------------------------------------------------------------

    def _volume_changed(self, volume: Obj) -> None:
        self.volume_queue.add(key_of(volume))

    def _volume_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        volume = _unwrap(obj)
        self.volume_queue.add(key_of(obj))
        ref = objects.spec(volume).get("claimRef") or {}
        if ref.get("name"):
            self.claim_queue.add(f"{ref.get('namespace', '')}/{ref['name']}")

    def _claim_changed(self, claim: Obj) -> None:
        self.claim_queue.add(key_of(claim))

    def _claim_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        claim = _unwrap(obj)
        self.claim_queue.add(key_of(obj))
        if objects.spec(claim).get("volumeName"):
            self.volume_queue.add(objects.spec(claim)["volumeName"])

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile_volume(self, key: str) -> Result | None:
        volume = self.volumes.lister.get(key)
        if volume is None:
            return None
        await self.volume_sync.sync(volume)
        if objects.status(volume).get("phase") in ("Released", "Failed"):
            return Result(requeue_after=self.sync_period)
        return None

    async def reconcile_claim(self, key: str) -> Result | None:
        namespace, _, name = key.partition("/")
        claim = self.claims.lister.get(name, namespace)
        if claim is None:
            return None
        await self.claim_sync.sync(claim)
        if objects.status(claim).get("phase") != "Bound":
            return Result(requeue_after=self.sync_period)
        return None
