"""The local-path provisioner's decisions and writes, over an in-memory API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.volume.provisioner import LocalPathProvisioner, ProvisioningError, build_volume
from minikube_py.client import (
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    STORAGECLASSES,
    FakeClock,
    Resource,
    SharedInformerFactory,
)
from tests.controllers.volume.world import NS, FakeApi, FakeRecorder, make_class, make_pv, make_pvc

Obj = dict[str, Any]
SELECTED = {"volume.kubernetes.io/selected-node": "node-1",
            "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}


class Rig:
    def __init__(self, base: Path) -> None:
        self.api = FakeApi()
        self.recorder = FakeRecorder()
        self.factory = SharedInformerFactory(self.api, clock=FakeClock())  # type: ignore[arg-type]
        self.provisioner = LocalPathProvisioner(self.api, self.factory, self.recorder,  # type: ignore[arg-type]
                                                base_dir=base, clock=FakeClock())

    def add(self, resource: Resource, obj: Obj) -> Obj:
        created = self.api.put(resource, obj)
        self.factory.informer(resource).store.upsert(created)
        return created


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path / "storage")
    rig.add(STORAGECLASSES, make_class("standard"))
    rig.add(NODES, {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}}})
    return rig


async def test_claim_with_selected_node_gets_a_volume_and_a_directory(rig: Rig, tmp_path: Path) -> None:
    claim = rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", "3Gi", cls="standard", annotations=SELECTED))
    await rig.provisioner.reconcile_claim(f"{NS}/data")
    uid = claim["metadata"]["uid"]
    pv = rig.api.objects[("persistentvolumes", "", f"pvc-{uid}")]
    path = tmp_path / "storage" / f"pvc-{uid}_{NS}_data"
    assert path.is_dir()
    assert pv["metadata"]["annotations"] == {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
    assert pv["spec"]["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert pv["spec"]["capacity"] == {"storage": "3Gi"}
    assert pv["spec"]["claimRef"]["uid"] == uid and pv["spec"]["claimRef"]["name"] == "data"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["storageClassName"] == "standard" and pv["spec"]["volumeMode"] == "Filesystem"
    assert [e[2:] for e in rig.recorder.events] == [
        ("Provisioning", f'External provisioner is provisioning volume for claim "{NS}/data"'),
        ("ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}")]


@pytest.mark.parametrize("annotations", [
    pytest.param({"volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}, id="no-selected-node"),
    pytest.param({"volume.kubernetes.io/selected-node": "node-1"}, id="not-handed-over-by-the-binder"),
    pytest.param({**SELECTED, "volume.kubernetes.io/storage-provisioner": "other.io/x"}, id="other-provisioner"),
])
async def test_claim_not_handed_to_local_path_is_left_alone(rig: Rig, annotations: dict[str, str]) -> None:
    rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard", annotations=annotations))
    await rig.provisioner.reconcile_claim(f"{NS}/data")
    assert rig.api.writes == [] and rig.recorder.events == []


async def test_immediate_class_without_a_selected_node_fails_to_provision(rig: Rig) -> None:
    rig.add(STORAGECLASSES, make_class("now", mode="Immediate"))
    rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="now", annotations={
        "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}))
    with pytest.raises(ProvisioningError):
        await rig.provisioner.reconcile_claim(f"{NS}/data")
    assert [e[2:] for e in rig.recorder.events] == [
        ("Provisioning", f'External provisioner is provisioning volume for claim "{NS}/data"'),
        ("ProvisioningFailed",
         'failed to provision volume with StorageClass "now": configuration error, no node was specified')]


async def test_selected_node_that_does_not_exist_fails_to_provision(rig: Rig) -> None:
    rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard", annotations={
        **SELECTED, "volume.kubernetes.io/selected-node": "ghost"}))
    with pytest.raises(ProvisioningError):
        await rig.provisioner.reconcile_claim(f"{NS}/data")
    assert rig.recorder.events == [("data", "Warning", "ProvisioningFailed",
                                    'Failed to get target node: nodes "ghost" not found')]


async def test_read_write_many_is_refused(rig: Rig) -> None:
    rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard", modes=("ReadWriteMany",), annotations=SELECTED))
    with pytest.raises(ProvisioningError):
        await rig.provisioner.reconcile_claim(f"{NS}/data")
    assert rig.recorder.events[-1][2:] == (
        "ProvisioningFailed", 'failed to provision volume with StorageClass "standard": '
        "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")


async def test_already_provisioned_claim_is_not_provisioned_again(rig: Rig) -> None:
    claim = rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard", annotations=SELECTED))
    rig.add(PERSISTENTVOLUMES, make_pv(f"pvc-{claim['metadata']['uid']}", cls="standard"))
    await rig.provisioner.reconcile_claim(f"{NS}/data")
    assert rig.api.writes == []


async def test_released_delete_volume_loses_its_directory_and_object(rig: Rig, tmp_path: Path) -> None:
    claim = rig.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard", annotations=SELECTED))
    await rig.provisioner.reconcile_claim(f"{NS}/data")
    name = f"pvc-{claim['metadata']['uid']}"
    pv = rig.api.objects[("persistentvolumes", "", name)]
    path = Path(pv["spec"]["hostPath"]["path"])
    (path / "file").write_text("data")
    rig.add(PERSISTENTVOLUMES, {**pv, "status": {"phase": "Bound"}})
    await rig.provisioner.reconcile_volume(name)
    assert path.exists()  # still bound
    rig.add(PERSISTENTVOLUMES, {**pv, "status": {"phase": "Released"}})
    await rig.provisioner.reconcile_volume(name)
    assert not path.exists()
    assert ("persistentvolumes", "", name) not in rig.api.objects


async def test_volume_outside_the_base_directory_is_never_removed(rig: Rig, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    pv = make_pv("pvc-x", phase="Released", policy="Delete", hostPath={"path": str(outside), "type": ""})
    pv["metadata"]["annotations"] = {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
    rig.add(PERSISTENTVOLUMES, pv)
    with pytest.raises(ValueError):
        await rig.provisioner.reconcile_volume("pvc-x")
    assert outside.is_dir()
    assert rig.recorder.events[-1][2] == "VolumeFailedDelete"


def test_node_affinity_uses_the_hostname_label() -> None:
    claim = make_pvc("c")
    claim["metadata"]["uid"] = "u"
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "host-a"}}}
    volume = build_volume(claim, make_class("standard"), node, Path("/x"))
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-a"]}]}]
