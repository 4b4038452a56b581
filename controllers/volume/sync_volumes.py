"""syncVolume: one PersistentVolume against the caches (pv_controller.go, 1.32), and reclaim.

    no claimRef, or a claimRef without uid  -> Available (a pre-bound volume waits for
                                               its claim's sync)
    its claim is gone (or was recreated)    -> Released, then the reclaim policy:
        Retain   nothing more; the volume keeps its claimRef until an admin clears it
        Delete   provisioned by an external provisioner (pv.kubernetes.io/provisioned-by):
                 it deletes the volume; otherwise the in-tree deleter: only hostPath
                 volumes under /tmp, anything else fails (VolumeFailedDelete, Failed)
        Recycle  no recycler plugin here: VolumeFailedRecycle, Failed
    the claim is not bound yet              -> the claim is synced (it finishes the bind);
                                               volumeMode mismatch: VolumeMismatch events
    the claim is bound to this volume       -> Bound
    the claim is bound to another volume    -> a dynamically provisioned Delete volume is
                                               released and reclaimed; otherwise unbound

A claim missing from the cache is looked up in the API before a volume is released, as
Kubernetes does: a fresh claim may not have reached the informer yet.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from typing import Any

from controllers.common import objects
from controllers.volume.matching import volume_mode_mismatch
from controllers.volume.writes import ANN_DYNAMICALLY_PROVISIONED, VolumeWriter
from minikube_py.client import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    WARNING,
    ApiError,
    EventRecorder,
    Lister,
)

Obj = dict[str, Any]
HOST_PATH_DELETABLE = re.compile(r"/tmp/.+")


class VolumeSync:
    """syncVolume over the caches; `enqueue_claim` asks for a claim sync."""

    def __init__(self, writer: VolumeWriter, recorder: EventRecorder, claims: Lister,
                 enqueue_claim: Callable[[str], None]) -> None:
        self.writer = writer
        self.client = writer.client
        self.recorder = recorder
        self.claims = claims
        self.enqueue_claim = enqueue_claim

    async def sync(self, volume: Obj) -> None:
        ref = objects.spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            await self.writer.update_volume_phase(volume, "Available")
            return
        claim = await self._claim_of(volume, ref)
        if claim is None:
            await self._released(volume)
        elif not objects.spec(claim).get("volumeName"):
            if volume_mode_mismatch(claim, volume):
                self.recorder.event(volume, WARNING, "VolumeMismatch",
                                    "Cannot bind PersistentVolume to requested PersistentVolumeClaim "
                                    f'"{objects.name(claim)}" due to incompatible volumeMode.')
                self.recorder.event(claim, WARNING, "VolumeMismatch",
                                    f'Cannot bind PersistentVolume "{objects.name(volume)}" to requested '
                                    "PersistentVolumeClaim due to incompatible volumeMode.")
                return
            self.enqueue_claim(objects.key(claim))
        elif objects.spec(claim).get("volumeName") == objects.name(volume):
            await self.writer.update_volume_phase(volume, "Bound")
        elif ANN_DYNAMICALLY_PROVISIONED in objects.annotations(volume) \
                and objects.spec(volume).get("persistentVolumeReclaimPolicy") == "Delete":
            await self._released(volume)
        else:
            await self.writer.unbind_volume(volume)

    async def _claim_of(self, volume: Obj, ref: Obj) -> Obj | None:
        """The claim named by claimRef, if it is the same object (same uid)."""
        claim = self.claims.get(ref.get("name", ""), ref.get("namespace", ""))
        if claim is None and objects.status(volume).get("phase") not in ("Released", "Failed"):
            try:
                claim = await self.client.get(PERSISTENTVOLUMECLAIMS, ref.get("name", ""), ref.get("namespace"))
            except ApiError as exc:
                if not exc.is_not_found():
                    raise
        if claim is not None and objects.uid(claim) != ref.get("uid"):
            return None  # deleted, and another claim took its name
        return claim

    async def _released(self, volume: Obj) -> None:
        if objects.status(volume).get("phase") not in ("Released", "Failed"):
            volume = await self.writer.update_volume_phase(volume, "Released")
        await self.reclaim(volume)

    async def reclaim(self, volume: Obj) -> None:
        """reclaimVolume: what the reclaim policy says happens to a released volume."""
        policy = objects.spec(volume).get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        if policy == "Recycle":
            await self.writer.update_volume_phase_with_event(volume, "Failed", WARNING, "VolumeFailedRecycle",
                                                             "No recycler plugin found for the volume!")
        elif policy == "Delete":
            await self._delete(volume)
        else:
            await self.writer.update_volume_phase_with_event(volume, "Failed", WARNING, "VolumeUnknownReclaimPolicy",
                                                             "Volume has unrecognized PersistentVolumeReclaimPolicy")

    async def _delete(self, volume: Obj) -> None:
        """deleteVolumeOperation: external provisioners delete their own volumes."""
        if ANN_DYNAMICALLY_PROVISIONED in objects.annotations(volume):
            return  # an external deleter is requested: it deletes the volume and the PV
        error = self._in_tree_delete(volume)
        if error is not None:
            await self.writer.update_volume_phase_with_event(volume, "Failed", WARNING, "VolumeFailedDelete", error)
            return
        try:
            await self.client.delete(PERSISTENTVOLUMES, objects.name(volume))
        except ApiError as exc:
            if not exc.is_not_found():
                raise

    @staticmethod
    def _in_tree_delete(volume: Obj) -> str | None:
        """The in-tree deleter: hostPath under /tmp is removed; nothing else can be."""
        host_path = objects.spec(volume).get("hostPath")
        if host_path is None:
            return (f'error getting deleter volume plugin for volume "{objects.name(volume)}": '
                    "no deletable volume plugin matched")
        path = host_path.get("path", "")
        if not HOST_PATH_DELETABLE.fullmatch(path):
            return f"host_path deleter only supports /tmp/.+ but received provided {path}"
        shutil.rmtree(path, ignore_errors=True)
        return None

