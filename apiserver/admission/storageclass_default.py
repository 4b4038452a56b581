"""The DefaultStorageClass admission plugin, and the `standard` class every cluster starts with.

DefaultStorageClass (plugin/pkg/admission/storage/storageclass/setdefault): a new
PersistentVolumeClaim that names no class at all (no `spec.storageClassName`, not even
"", and no legacy `volume.beta.kubernetes.io/storage-class` annotation) gets the default
StorageClass: the class annotated `storageclass.kubernetes.io/is-default-class: "true"`
(or the beta annotation). With several defaults the newest wins (creationTimestamp,
then name), as since Kubernetes 1.28. No default class: the claim is left alone, and the
PV controller may assign one later (retroactive default class assignment).

The `standard` StorageClass is what kind and minikube users see right after the cluster
comes up: provisioner `rancher.io/local-path` (served by controllers/volume's local-path
provisioner), reclaimPolicy Delete, volumeBindingMode WaitForFirstConsumer, marked
default. The API server creates it at start-up when it is missing (minikube's addon
manager "EnsureExists" mode): a class the user edited is never overwritten, and one the
user deleted comes back on the next start, as with minikube's storage addon.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.defaults import default_object
from apiserver.context import Server
from apiserver.patch.managedfields import track_update
from apiserver.pipeline import Attributes
from apiserver.registry import strategy

Obj = dict[str, Any]
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
STANDARD_CLASS = "standard"
MANAGER = "kube-apiserver"


def is_default_class(sc: Obj) -> bool:
    """storageutil.IsDefaultAnnotation: either annotation says "true"."""
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def pick_default_class(classes: list[Obj]) -> Obj | None:
    """The default StorageClass: among those marked default, the newest (ties: by name)."""
    return pick_newest([sc for sc in classes if is_default_class(sc)])


def pick_newest(defaults: list[Obj]) -> Obj | None:
    """Of several classes marked default, the one Kubernetes uses (also for IngressClass)."""
    if not defaults:
        return None
    # Newest first; for equal timestamps Kubernetes sorts by name ascending.
    defaults.sort(key=lambda sc: (sc["metadata"].get("name", "")))
    defaults.sort(key=lambda sc: sc["metadata"].get("creationTimestamp", ""), reverse=True)
    return defaults[0]


def needs_default_class(pvc: Obj) -> bool:
    """True when the claim names no class at all (nil, not ""; no beta annotation)."""
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    if BETA_STORAGE_CLASS_ANNOTATION in annotations:
        return False
    return (pvc.get("spec") or {}).get("storageClassName") is None


class DefaultStorageClass:
    """Mutating admission: new claims without a class get the default class."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def admit(self, attrs: Attributes) -> None:
        if attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None:
            return
        if (attrs.info.group, attrs.info.kind) != ("", "PersistentVolumeClaim"):
            return
        if not needs_default_class(attrs.obj):
            return
        info = self.server.registry.lookup("storage.k8s.io", "v1", "storageclasses")
        if info is None:
            return
        default = pick_default_class((await self.server.store.list(info, None)).items)
        if default is not None:
            attrs.obj.setdefault("spec", {})["storageClassName"] = default["metadata"]["name"]


def standard_storage_class() -> Obj:
    """kind's and minikube's default class, served by the local-path provisioner."""
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STANDARD_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


async def ensure_default_storage_class(server: Server) -> None:
    """Create the `standard` StorageClass if it does not exist; never change an existing one."""
    info = server.registry.lookup("storage.k8s.io", "v1", "storageclasses")
    if info is None or await server.store.try_get(info, None, STANDARD_CLASS) is not None:
        return
    desired = standard_storage_class()
    default_object("storage.k8s.io", "v1", "StorageClass", desired)

    async def create(current: Obj | None) -> Obj | None:
        if current is not None:
            return None  # created meanwhile (another API server): leave it
        strategy.prepare_for_create(info, desired)
        track_update(None, desired, schema=info.schema(), manager=MANAGER, api_version=desired["apiVersion"],
                     now=strategy.now_rfc3339())
        return desired

    await server.store.guaranteed_update(info, None, STANDARD_CLASS, create, allow_create=True)
