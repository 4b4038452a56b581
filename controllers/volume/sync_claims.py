"""syncClaim: one PersistentVolumeClaim against the caches (pv_controller.go, 1.32).

A claim without `pv.kubernetes.io/bind-completed` is unbound (syncUnboundClaim):

- no `spec.volumeName`: the best matching volume is bound (see matching.py). None: a
  class-less claim may first get the default class (retroactive assignment); a
  WaitForFirstConsumer claim nobody has scheduled yet gets WaitForFirstConsumer, or
  WaitForPodScheduled naming its unscheduled pods; a claim with a class is handed to its
  provisioner (ExternalProvisioning, with the storage-provisioner annotations); a claim
  without a class gets FailedBinding. It stays Pending.
- `spec.volumeName` set: the named volume is bound when it is free and fits (else
  VolumeMismatch), or when it is already pre-bound to this claim; otherwise the claim
  waits, Pending.

A bound claim (syncBoundClaim) is checked against its volume: a lost volume or a lost
`spec.volumeName` makes it Lost (ClaimLost); a volume that forgot the claim is bound
again; a volume bound to another claim makes it Lost (ClaimMisbound).
"""

from __future__ import annotations

import logging
from typing import Any

from controllers.common import objects
from controllers.volume.matching import (
    check_volume_satisfies_claim,
    claim_class,
    find_best_match,
    is_volume_bound_to_claim,
)
from controllers.volume.writes import (
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    VolumeWriter,
)
from minikube_py.client import NORMAL, WARNING, ApiError, EventRecorder, Lister

Obj = dict[str, Any]
log = logging.getLogger("controllers.volume")
CLAIMS_BY_POD_INDEX = "volume/pods-by-claim"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


class ClassNotFound(Exception):
    """A claim names a StorageClass that does not exist."""


def external_provisioning_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually "
            "by the system administrator. If volume creation is delayed, please verify that the provisioner is "
            "running and correctly registered.")


def pod_claim_keys(pod: Obj) -> list[str]:
    """Index function: `namespace/claim` for each claim a pod's volumes use."""
    keys = []
    for volume in objects.spec(pod).get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            keys.append(f"{objects.namespace(pod)}/{volume['persistentVolumeClaim']['claimName']}")
        elif volume.get("ephemeral") is not None:
            keys.append(f"{objects.namespace(pod)}/{objects.name(pod)}-{volume.get('name', '')}")
    return keys


def default_class(classes: list[Obj]) -> Obj | None:
    """GetDefaultClass: the newest class marked default (ties: by name)."""
    marked = [c for c in classes
              if any(objects.annotations(c).get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)]
    marked.sort(key=objects.name)
    marked.sort(key=lambda c: objects.metadata(c).get("creationTimestamp", ""), reverse=True)
    return marked[0] if marked else None


class ClaimSync:
    """syncClaim over the caches; writes go through the VolumeWriter."""

    def __init__(self, writer: VolumeWriter, recorder: EventRecorder, volumes: Lister, classes: Lister,
                 pods: Lister) -> None:
        self.writer = writer
        self.recorder = recorder
        self.volumes = volumes
        self.classes = classes
        self.pods = pods

    async def sync(self, claim: Obj) -> None:
        if ANN_BIND_COMPLETED in objects.annotations(claim):
            await self.sync_bound(claim)
        else:
            await self.sync_unbound(claim)

    # -- unbound ------------------------------------------------------------------------

    def delay_binding(self, claim: Obj) -> bool:
        """IsDelayBindingMode: the claim's class binds WaitForFirstConsumer."""
        name = claim_class(claim)
        if not name:
            return False
        storage_class = self.classes.get(name)
        if storage_class is None:
            return False  # a missing class is not an error here, as in Kubernetes
        return storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"

    async def sync_unbound(self, claim: Obj) -> None:
        volume_name = objects.spec(claim).get("volumeName")
        if not volume_name:
            await self._sync_unbound_unnamed(claim)
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            await self.writer.update_claim_status(claim, "Pending", None)
        elif not objects.spec(volume).get("claimRef"):
            problem = check_volume_satisfies_claim(volume, claim)
            if problem is not None:
                self.recorder.event(claim, WARNING, "VolumeMismatch",
                                    f'Cannot bind to requested volume "{volume_name}": {problem}')
                await self.writer.update_claim_status(claim, "Pending", None)
            else:
                await self.writer.bind(volume, claim)
        elif is_volume_bound_to_claim(volume, claim):
            await self.writer.bind(volume, claim)
        elif ANN_BOUND_BY_CONTROLLER not in objects.annotations(claim):
            await self.writer.update_claim_status(claim, "Pending", None)  # the user's choice: wait for it
        else:
            raise RuntimeError(f"Invalid binding of claim {objects.key(claim)} to volume {volume_name}: "
                               "volume already claimed by another claim")

    async def _sync_unbound_unnamed(self, claim: Obj) -> None:
        delay = self.delay_binding(claim)
        volume = find_best_match(claim, self.volumes.list(), delay)
        if volume is not None:
            await self.writer.bind(volume, claim)
            return
        if await self._assign_default_class(claim):
            return  # the update brings the claim back with its class
        if delay and ANN_SELECTED_NODE not in objects.annotations(claim):
            self._event_for_unscheduled(claim)
        elif claim_class(claim):
            await self._provision(claim)
            return
        else:
            self.recorder.event(claim, NORMAL, "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
        await self.writer.update_claim_status(claim, "Pending", None)

    async def _assign_default_class(self, claim: Obj) -> bool:
        """assignDefaultStorageClass: a claim with no class at all (nil) gets the default."""
        if BETA_STORAGE_CLASS in objects.annotations(claim) or objects.spec(claim).get("storageClassName") is not None:
            return False
        chosen = default_class(self.classes.list())
        if chosen is None:
            return False
        try:
            await self.writer.assign_storage_class(claim, objects.name(chosen))
        except ApiError as exc:
            if not exc.is_invalid():
                raise
            # An API server whose validation predates retroactive assignment refuses
            # nil -> class; the claim then goes on as a class-less one.
            log.info("cannot assign default StorageClass to %s: %s", objects.key(claim), exc)
            return False
        return True

    def _event_for_unscheduled(self, claim: Obj) -> None:
        """emitEventForUnboundDelayBindingClaim."""
        names = sorted(objects.name(p) for p in self.pods.by_index(CLAIMS_BY_POD_INDEX, objects.key(claim))
                       if not objects.spec(p).get("nodeName") and not objects.being_deleted(p))
        if not names:
            self.recorder.event(claim, NORMAL, "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
        elif len(names) == 1:
            self.recorder.event(claim, NORMAL, "WaitForPodScheduled", f"waiting for pod {names[0]} to be scheduled")
        else:
            self.recorder.event(claim, NORMAL, "WaitForPodScheduled",
                                f"waiting for pods {','.join(names)} to be scheduled")

    async def _provision(self, claim: Obj) -> None:
        """provisionClaim: every provisioner is external here, so the claim is annotated
        for it and the user is told whom we are waiting for."""
        name = claim_class(claim)
        storage_class = self.classes.get(name)
        if storage_class is None:
            message = f'storageclass.storage.k8s.io "{name}" not found'
            self.recorder.event(claim, WARNING, "ProvisioningFailed", message)
            raise ClassNotFound(message)
        provisioner = storage_class.get("provisioner") or ""
        claim = await self.writer.set_claim_provisioner(claim, provisioner)
        self.recorder.event(claim, NORMAL, "ExternalProvisioning", external_provisioning_message(provisioner))

    # -- bound --------------------------------------------------------------------------

    async def sync_bound(self, claim: Obj) -> None:
        volume_name = objects.spec(claim).get("volumeName")
        if not volume_name:
            await self.writer.update_claim_status_with_event(
                claim, "Lost", None, WARNING, "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            await self.writer.update_claim_status_with_event(
                claim, "Lost", None, WARNING, "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
        elif not objects.spec(volume).get("claimRef"):
            await self.writer.bind(volume, claim)  # the volume forgot us: bind it again
        elif is_volume_bound_to_claim(volume, claim):
            await self.writer.bind(volume, claim)  # no-op writes unless something is missing
        else:
            await self.writer.update_claim_status_with_event(
                claim, "Lost", None, WARNING, "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly")
