"""The StorageObjectInUseProtection admission plugin
(plugin/pkg/admission/storage/storageobjectinuseprotection).

Every new PersistentVolumeClaim gets the `kubernetes.io/pvc-protection` finalizer and
every new PersistentVolume `kubernetes.io/pv-protection`, so deleting a claim that a pod
still uses (or a volume still bound to a claim) only marks it Terminating; the PVC / PV
protection controllers in the controller-manager remove the finalizer once nothing uses
the object any more.
"""

from __future__ import annotations

from apiserver.pipeline import Attributes

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"
FINALIZERS = {("", "PersistentVolumeClaim"): PVC_PROTECTION_FINALIZER,
              ("", "PersistentVolume"): PV_PROTECTION_FINALIZER}


class StorageObjectInUseProtection:
    """Mutating admission: the protection finalizer on every new claim and volume."""

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None:
            return
        finalizer = FINALIZERS.get((attrs.info.group, attrs.info.kind))
        if finalizer is None:
            return
        meta = attrs.obj.setdefault("metadata", {})
        finalizers = meta.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = meta["finalizers"] = []
        if finalizer not in finalizers:
            finalizers.append(finalizer)
