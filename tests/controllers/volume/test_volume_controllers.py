"""The binder and the local-path provisioner against the real API server in process.

The controllers run on the test loop with their own informers; the scheduler is not
running, so the tests write `volume.kubernetes.io/selected-node` themselves, as the
scheduler's VolumeBinding PreBind does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controllers.volume.binder import PersistentVolumeBinderController
from controllers.volume.protection import PVCProtectionController, PVProtectionController
from controllers.volume.provisioner import LocalPathProvisioner
from minikube_py.client import (
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
    ApiClient,
    ApiError,
    EventRecorder,
    SharedInformerFactory,
)
from tests.controllers.manager.harness import NS, ControlPlane, control_plane
from tests.controllers.volume.world import make_pv, make_pvc

Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def volume_controllers(plane: ControlPlane, base: Path) -> AsyncIterator[None]:
    async with ApiClient(plane.url, field_manager="kube-controller-manager") as client:
        factory = SharedInformerFactory(client)
        recorders = [EventRecorder(client, "persistentvolume-controller"),
                     EventRecorder(client, "rancher.io/local-path_test")]
        binder = PersistentVolumeBinderController(client, factory, recorders[0], sync_period=0.5)
        provisioner = LocalPathProvisioner(client, factory, recorders[1], base_dir=base)
        # The protection finalizers (admission) need their controllers, as in the manager.
        protection = [PVCProtectionController(client, factory, recorders[0]),
                      PVProtectionController(client, factory, recorders[0])]
        factory.start()
        tasks = [asyncio.create_task(c.run()) for c in (binder, provisioner, *protection)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for recorder in recorders:
                await recorder.close()
            await factory.shutdown()


async def _node(plane: ControlPlane, name: str) -> None:
    await plane.client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                      "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})


async def _phase(plane: ControlPlane, resource: Any, name: str, phase: str, ns: str | None = None) -> Obj | None:
    try:
        obj = await plane.client.get(resource, name, ns)
    except ApiError:
        return None
    return obj if (obj.get("status") or {}).get("phase") == phase else None


async def _gone(plane: ControlPlane, name: str) -> bool:
    try:
        await plane.client.get(PERSISTENTVOLUMES, name)
    except ApiError as exc:
        return exc.is_not_found()
    return False


async def test_cluster_has_the_standard_default_class_and_new_claims_get_it(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane:
        sc = await plane.client.get(STORAGECLASSES, "standard")
        assert sc["provisioner"] == "rancher.io/local-path"
        assert sc["reclaimPolicy"] == "Delete" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
        assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
        pvc = await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls=None))
        assert pvc["spec"]["storageClassName"] == "standard"
        explicit = await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("none", cls=""))
        assert explicit["spec"]["storageClassName"] == ""


async def test_dynamic_claim_is_provisioned_bound_and_deleted_with_its_directory(tmp_path: Path) -> None:
    base = tmp_path / "storage"
    async with control_plane(tmp_path, manager=False) as plane, volume_controllers(plane, base):
        await _node(plane, "node-1")
        claim = await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", "2Gi", cls=None))
        waiting = await plane.wait_for(lambda: plane.events("WaitForFirstConsumer"), message="WaitForFirstConsumer")
        assert waiting[0]["message"] == "waiting for first consumer to be created before binding"
        await plane.client.patch(PERSISTENTVOLUMECLAIMS, "data", {"metadata": {"annotations": {
            "volume.kubernetes.io/selected-node": "node-1"}}}, NS)
        bound = await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMECLAIMS, "data", "Bound", NS), timeout=15,
                                     message="claim Bound")
        uid = claim["metadata"]["uid"]
        assert bound["spec"]["volumeName"] == f"pvc-{uid}"
        assert bound["status"]["capacity"] == {"storage": "2Gi"}
        assert bound["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
        assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
        pv = await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMES, f"pvc-{uid}", "Bound"), message="PV Bound")
        path = base / f"pvc-{uid}_{NS}_data"
        assert pv["spec"]["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert pv["spec"]["storageClassName"] == "standard"
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
        assert path.is_dir()
        reasons = {e["reason"] for e in await plane.events(kind="PersistentVolumeClaim")}
        assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= reasons
        await plane.client.delete(PERSISTENTVOLUMECLAIMS, "data", NS)
        await plane.wait_for(lambda: _gone(plane, f"pvc-{uid}"), timeout=15, message="PV deleted")
        assert not path.exists()


async def test_static_volume_binds_by_selector_and_is_released_when_retained(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane, volume_controllers(plane, tmp_path / "s"):
        pv = make_pv("gold", "5Gi", labels={"tier": "gold"})
        del pv["status"]
        await plane.client.create(PERSISTENTVOLUMES, pv)
        await plane.client.create(PERSISTENTVOLUMES, {**make_pv("other", "1Gi"), "status": {}})
        await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data", "1Gi", selector={
            "matchLabels": {"tier": "gold"}}))
        bound = await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMECLAIMS, "data", "Bound", NS), timeout=15,
                                     message="claim Bound")
        assert bound["spec"]["volumeName"] == "gold"
        assert bound["status"]["capacity"] == {"storage": "5Gi"}
        await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMES, "gold", "Bound"), message="PV Bound")
        assert await _phase(plane, PERSISTENTVOLUMES, "other", "Available")
        await plane.client.delete(PERSISTENTVOLUMECLAIMS, "data", NS)
        released = await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMES, "gold", "Released"), timeout=15,
                                        message="PV Released")
        assert released["spec"]["claimRef"]["name"] == "data"


async def test_claim_whose_volume_is_deleted_is_lost(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane, volume_controllers(plane, tmp_path / "s"):
        await plane.client.create(PERSISTENTVOLUMES, {**make_pv("pv1"), "status": {}})
        await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
        await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMECLAIMS, "data", "Bound", NS), timeout=15,
                             message="claim Bound")
        await plane.client.delete(PERSISTENTVOLUMES, "pv1")
        # pv-protection holds a Bound volume; the claim stays Bound until an admin
        # strips the finalizer (kubectl patch pv pv1 -p '{"metadata":{"finalizers":null}}').
        held = await plane.client.get(PERSISTENTVOLUMES, "pv1")
        assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
        assert await _phase(plane, PERSISTENTVOLUMECLAIMS, "data", "Bound", NS)
        await plane.client.patch(PERSISTENTVOLUMES, "pv1", {"metadata": {"finalizers": None}})
        await plane.wait_for(lambda: _phase(plane, PERSISTENTVOLUMECLAIMS, "data", "Lost", NS), timeout=15,
                             message="claim Lost")
        lost = await plane.wait_for(lambda: plane.events("ClaimLost"), message="ClaimLost event")
        assert lost[0]["type"] == "Warning"
        assert lost[0]["source"]["component"] == "persistentvolume-controller"
