"""The local-path dynamic provisioner (`rancher.io/local-path`, the one kind ships).

It is an external provisioner, shaped like sig-storage-lib-external-provisioner and
rancher's local-path-provisioner on top of it: it talks to the cluster only through the
API and the PV controller only through annotations.

Claims (key `namespace/name`) are provisioned when all of these hold (shouldProvision):
no `spec.volumeName`; `volume.kubernetes.io/storage-provisioner` (or the beta one) names
`rancher.io/local-path`, which the PV controller writes; the claim's StorageClass uses
this provisioner; and for a WaitForFirstConsumer class the scheduler has written
`volume.kubernetes.io/selected-node`. Provisioning:

    Event Provisioning  External provisioner is provisioning volume for claim "ns/name"
    mkdir <dir>/pvc-<claim uid>_<namespace>_<claim>
    create PV pvc-<claim uid>: hostPath (DirectoryOrCreate), required node affinity to
      the node's kubernetes.io/hostname, capacity = the request, the claim's access
      modes, Filesystem, the class's reclaim policy and name, claimRef -> the claim,
      annotation pv.kubernetes.io/provisioned-by: rancher.io/local-path
    Event ProvisioningSucceeded  Successfully provisioned volume pvc-<uid>
    (failures: Event ProvisioningFailed  failed to provision volume with StorageClass ...)

The PV controller then sees a volume pre-bound to the claim and finishes the bind.
Volumes (key `name`) this provisioner made that are Released with reclaim policy Delete
lose their directory, then the PV is deleted (a failure: Event VolumeFailedDelete).

Real local-path creates and removes directories with a helper pod on the node; here the
provisioner does it itself, in the directory given (by default the cluster's state
directory, `$MKP_CLUSTER_HOME/storage`), which every node of the cluster shares.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from controllers.common import objects
from controllers.volume.matching import claim_class
from controllers.volume.writes import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_DYNAMICALLY_PROVISIONED,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    claim_reference,
)
from minikube_py.client import (
    NODES,
    NORMAL,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    SharedInformerFactory,
    WorkQueue,
    enqueue_object,
    key_of,
)

Obj = dict[str, Any]
PROVISIONER = "rancher.io/local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"
SUPPORTED_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


def default_local_path_dir() -> Path:
    """$MKP_LOCAL_PATH_DIR, else <cluster state dir>/storage, else ~/.mkp/local-path-provisioner."""
    if os.environ.get("MKP_LOCAL_PATH_DIR"):
        return Path(os.environ["MKP_LOCAL_PATH_DIR"])
    if os.environ.get("MKP_CLUSTER_HOME"):
        return Path(os.environ["MKP_CLUSTER_HOME"]) / "storage"
    return Path.home() / ".mkp" / "local-path-provisioner"


class ProvisioningError(Exception):
    """Provision refused or failed; the message goes into the ProvisioningFailed event."""


def volume_name(claim: Obj) -> str:
    return f"pvc-{objects.uid(claim)}"


def volume_path(base: Path, claim: Obj) -> Path:
    return base / f"{volume_name(claim)}_{objects.namespace(claim)}_{objects.name(claim)}"


def build_volume(claim: Obj, storage_class: Obj, node: Obj, path: Path) -> Obj:
    """The PV local-path's Provision returns, with what the provisioner library adds."""
    for mode in objects.spec(claim).get("accessModes") or []:
        if mode not in SUPPORTED_MODES:
            raise ProvisioningError("NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")
    if objects.spec(claim).get("selector") is not None:
        raise ProvisioningError("claim.Spec.Selector is not supported")
    hostname = objects.labels(node).get(HOSTNAME_LABEL) or objects.name(node)
    request = ((objects.spec(claim).get("resources") or {}).get("requests") or {}).get("storage")
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER}},
        "spec": {
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "accessModes": list(objects.spec(claim).get("accessModes") or []),
            "volumeMode": "Filesystem",
            "capacity": {"storage": request},
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
            "claimRef": claim_reference(claim),
            "storageClassName": claim_class(claim),
        },
    }


class LocalPathProvisioner:
    """Provisions and deletes local-path volumes (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 base_dir: Path | None = None, workers: int = 1, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.base_dir = base_dir or default_local_path_dir()
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = informers.informer(PERSISTENTVOLUMES)
        self.classes = informers.informer(STORAGECLASSES)
        self.nodes = informers.informer(NODES)
        self.claim_queue: WorkQueue[str] = WorkQueue("local-path claims", clock=self.clock)
        self.volume_queue: WorkQueue[str] = WorkQueue("local-path volumes", clock=self.clock)
        self.claims.add_event_handler(enqueue_object(self.claim_queue))
        self.volumes.add_event_handler(enqueue_object(self.volume_queue))
        caches = [self.claims, self.volumes, self.classes, self.nodes]
        self.controllers = [
            Controller("local-path claims", self.claim_queue, self.reconcile_claim, workers=workers, wait_for=caches),
            Controller("local-path volumes", self.volume_queue, self.reconcile_volume, workers=workers,
                       wait_for=caches),
        ]

    @classmethod
    def from_context(cls, ctx: Any) -> LocalPathProvisioner:
        """Built by the controller-manager; Events come from `rancher.io/local-path_<host>`."""
        return cls(ctx.client, ctx.informers, ctx.recorder(f"{PROVISIONER}_{socket.gethostname()}"),
                   clock=ctx.clock)

    async def run(self) -> None:
        await asyncio.gather(*(controller.run() for controller in self.controllers))

    # -- claims -------------------------------------------------------------------------

    def should_provision(self, claim: Obj) -> Obj | None:
        """shouldProvision: the claim's StorageClass when this provisioner should act."""
        if objects.spec(claim).get("volumeName") or objects.being_deleted(claim):
            return None
        annotations = objects.annotations(claim)
        if annotations.get(ANN_STORAGE_PROVISIONER, annotations.get(ANN_BETA_STORAGE_PROVISIONER)) != PROVISIONER:
            return None
        storage_class = self.classes.lister.get(claim_class(claim))
        if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
            return None
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and ANN_SELECTED_NODE not in annotations:
            return None
        return storage_class

    async def reconcile_claim(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        claim = self.claims.lister.get(name, namespace)
        if claim is None:
            return
        storage_class = self.should_provision(claim)
        if storage_class is None or self.volumes.lister.get(volume_name(claim)) is not None:
            return  # nothing to do, or already provisioned (the binder finishes the bind)
        await self.provision(claim, storage_class)

    async def provision(self, claim: Obj, storage_class: Obj) -> None:
        """provisionClaimOperation: directory, PV, Events."""
        node_name = objects.annotations(claim).get(ANN_SELECTED_NODE)
        node = self.nodes.lister.get(node_name) if node_name else None
        if node_name and node is None:
            message = f'Failed to get target node: nodes "{node_name}" not found'
            self.recorder.event(claim, WARNING, "ProvisioningFailed", message)
            raise ProvisioningError(message)
        self.recorder.event(claim, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{key_of(claim)}"')
        path = volume_path(self.base_dir, claim)
        try:
            if node is None:
                raise ProvisioningError("configuration error, no node was specified")
            volume = build_volume(claim, storage_class, node, path)
            path.mkdir(parents=True, exist_ok=True)
        except (ProvisioningError, OSError) as exc:
            message = f'failed to provision volume with StorageClass "{objects.name(storage_class)}": {exc}'
            self.recorder.event(claim, WARNING, "ProvisioningFailed", message)
            raise ProvisioningError(message) from exc
        try:
            created = await self.client.create(PERSISTENTVOLUMES, volume)
        except ApiError as exc:
            if not exc.is_already_exists():
                raise
            return
        self.recorder.event(claim, NORMAL, "ProvisioningSucceeded",
                            f"Successfully provisioned volume {objects.name(created)}")

    # -- volumes ------------------------------------------------------------------------

    def should_delete(self, volume: Obj) -> bool:
        return (objects.status(volume).get("phase") == "Released"
                and objects.spec(volume).get("persistentVolumeReclaimPolicy") == "Delete"
                and objects.annotations(volume).get(ANN_DYNAMICALLY_PROVISIONED) == PROVISIONER
                and not objects.being_deleted(volume))

    async def reconcile_volume(self, key: str) -> None:
        volume = self.volumes.lister.get(key)
        if volume is None or not self.should_delete(volume):
            return
        path = (objects.spec(volume).get("hostPath") or {}).get("path")
        try:
            self._remove_directory(path)
        except (OSError, ValueError) as exc:
            self.recorder.event(volume, WARNING, "VolumeFailedDelete",
                                f"failed to delete volume {objects.name(volume)}: {exc}")
            raise
        try:
            await self.client.delete(PERSISTENTVOLUMES, objects.name(volume))
        except ApiError as exc:
            if not exc.is_not_found():
                raise

    def _remove_directory(self, path: str | None) -> None:
        """Remove a volume's directory, refusing anything outside the base directory."""
        if not path:
            raise ValueError("no path set")
        target = Path(path).resolve()
        base = self.base_dir.resolve()
        if target == base or base not in target.parents:
            raise ValueError(f"path {path} is not under the provisioner's directory {self.base_dir}")
        if target.exists():
            shutil.rmtree(target)
