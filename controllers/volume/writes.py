"""The PV controller's writes (pv_controller.go's bind / updateVolumePhase / ...), one API call each.

Every write starts from the object the caller holds (the informer's copy, or what the
previous write returned) and sends it back with its resourceVersion, so a stale copy is a
409 Conflict and the sync is retried from fresh caches, as Kubernetes' Update calls do.
The caller chains the returned objects: `bind` is four writes in Kubernetes' order,

    PV spec.claimRef (+ bound-by-controller)  ->  PV status Bound
    -> PVC spec.volumeName (+ bind-completed, bound-by-controller)  ->  PVC status Bound

so that a crash between any two leaves a state the next sync recognises and finishes.

Phase changes also stamp `status.lastPhaseTransitionTime` (GA in 1.31) with the clock.
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.common import objects
from controllers.volume.matching import is_volume_bound_to_claim
from minikube_py.client import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    WARNING,
    ApiClient,
    Clock,
    EventRecorder,
)

Obj = dict[str, Any]
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"


def claim_reference(claim: Obj) -> Obj:
    """ref.GetReference(claim): what a PV's spec.claimRef holds once bound."""
    meta = objects.metadata(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace"), "name": meta.get("name"),
            "uid": meta.get("uid"), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")}


class VolumeWriter:
    """The API writes of the PV binder, and the Events that go with them."""

    def __init__(self, client: ApiClient, recorder: EventRecorder, clock: Clock) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock

    # -- volumes ------------------------------------------------------------------------

    async def bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        """bindVolumeToClaim: spec.claimRef -> the claim (uid, resourceVersion); the
        bound-by-controller annotation unless the user pre-bound the volume."""
        ref = objects.spec(volume).get("claimRef") or {}
        if ref.get("name") == objects.name(claim) and ref.get("namespace") == objects.namespace(claim) \
                and ref.get("uid") == objects.uid(claim):
            return volume
        clone = copy.deepcopy(volume)
        if not is_volume_bound_to_claim(volume, claim):
            clone["metadata"].setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
        clone.setdefault("spec", {})["claimRef"] = claim_reference(claim)
        return await self.client.update(PERSISTENTVOLUMES, clone)

    async def update_volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        """updateVolumePhase: a no-op when phase and message are already right."""
        status = objects.status(volume)
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        clone = copy.deepcopy(volume)
        new_status = clone.setdefault("status", {})
        if new_status.get("phase") != phase:
            new_status["lastPhaseTransitionTime"] = objects.format_time(self.clock.now())
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        return await self.client.update_status(PERSISTENTVOLUMES, clone)

    async def update_volume_phase_with_event(self, volume: Obj, phase: str, event_type: str, reason: str,
                                             message: str) -> Obj:
        """updateVolumePhaseWithEvent: the Event only when the phase changes."""
        if objects.status(volume).get("phase") == phase:
            return volume
        updated = await self.update_volume_phase(volume, phase, message)
        self.recorder.event(updated, event_type, reason, message)
        return updated

    async def unbind_volume(self, volume: Obj) -> Obj:
        """unbindVolume: forget a binding the controller made; of a user's pre-binding
        only the uid goes. Then the volume is Available again."""
        clone = copy.deepcopy(volume)
        annotations = clone["metadata"].get("annotations") or {}
        if ANN_BOUND_BY_CONTROLLER in annotations:
            clone["spec"].pop("claimRef", None)
            del annotations[ANN_BOUND_BY_CONTROLLER]
        else:
            clone["spec"]["claimRef"].pop("uid", None)
        updated = await self.client.update(PERSISTENTVOLUMES, clone)
        return await self.update_volume_phase(updated, "Available")

    # -- claims -------------------------------------------------------------------------

    async def bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        """bindClaimToVolume: spec.volumeName, bind-completed, and bound-by-controller when
        the user did not name the volume."""
        clone = copy.deepcopy(claim)
        annotations = clone["metadata"].setdefault("annotations", {})
        dirty = False
        if objects.spec(claim).get("volumeName") != objects.name(volume):
            clone["spec"]["volumeName"] = objects.name(volume)
            annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
            dirty = True
        if annotations.get(ANN_BIND_COMPLETED) != "yes":
            annotations[ANN_BIND_COMPLETED] = "yes"
            dirty = True
        if not dirty:
            return claim
        return await self.client.update(PERSISTENTVOLUMECLAIMS, clone)

    async def update_claim_status(self, claim: Obj, phase: str, volume: Obj | None) -> Obj:
        """updateClaimStatus: phase, and accessModes / capacity from the volume (cleared
        without one). Capacity is copied only when the claim becomes Bound."""
        old = objects.status(claim)
        clone = copy.deepcopy(claim)
        status = clone.setdefault("status", {})
        status["phase"] = phase
        if volume is None:
            status.pop("accessModes", None)
            status.pop("capacity", None)
        else:
            status["accessModes"] = list(objects.spec(volume).get("accessModes") or [])
            if old.get("phase") != phase:
                capacity = objects.spec(volume).get("capacity") or {}
                if "storage" not in capacity:
                    raise ValueError(f'PersistentVolume "{objects.name(volume)}" is without a storage capacity')
                if (old.get("capacity") or {}).get("storage") != capacity["storage"]:
                    status["capacity"] = dict(capacity)
        if status == old:
            return claim
        return await self.client.update_status(PERSISTENTVOLUMECLAIMS, clone)

    async def update_claim_status_with_event(self, claim: Obj, phase: str, volume: Obj | None, event_type: str,
                                             reason: str, message: str) -> Obj:
        if objects.status(claim).get("phase") == phase:
            return claim
        updated = await self.update_claim_status(claim, phase, volume)
        self.recorder.event(updated, event_type, reason, message)
        return updated

    async def bind(self, volume: Obj, claim: Obj) -> tuple[Obj, Obj]:
        """bind: the four writes in Kubernetes' order (see the module docstring)."""
        volume = await self.bind_volume_to_claim(volume, claim)
        volume = await self.update_volume_phase(volume, "Bound")
        claim = await self.bind_claim_to_volume(claim, volume)
        claim = await self.update_claim_status(claim, "Bound", volume)
        return volume, claim

    async def set_claim_provisioner(self, claim: Obj, provisioner: str) -> Obj:
        """setClaimProvisioner: both storage-provisioner annotations name the provisioner."""
        if objects.annotations(claim).get(ANN_STORAGE_PROVISIONER) == provisioner:
            return claim
        clone = copy.deepcopy(claim)
        annotations = clone["metadata"].setdefault("annotations", {})
        annotations[ANN_BETA_STORAGE_PROVISIONER] = provisioner
        annotations[ANN_STORAGE_PROVISIONER] = provisioner
        try:
            return await self.client.update(PERSISTENTVOLUMECLAIMS, clone)
        except Exception as exc:
            self.recorder.event(claim, WARNING, "ProvisioningFailed", f"Error saving claim: {exc}")
            raise

    async def assign_storage_class(self, claim: Obj, class_name: str) -> Obj:
        """assignDefaultStorageClass's write: spec.storageClassName of a class-less claim."""
        clone = copy.deepcopy(claim)
        clone.setdefault("spec", {})["storageClassName"] = class_name
        return await self.client.update(PERSISTENTVOLUMECLAIMS, clone)
