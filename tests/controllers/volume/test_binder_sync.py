"""syncClaim / syncVolume against an in-memory API (no sleeps, FakeClock)."""

from __future__ import annotations

import pytest

from controllers.volume.sync_claims import external_provisioning_message
from minikube_py.client import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, STORAGECLASSES, ApiError
from tests.controllers.volume.world import NS, World, make_class, make_pv, make_pvc


async def test_static_bind_writes_volume_then_claim_in_kubernetes_order() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1", "5Gi"))
    claim = world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", "2Gi"))
    await world.sync_claim("data")
    assert world.api.writes == [("update", "persistentvolumes", "pv1"), ("status", "persistentvolumes", "pv1"),
                                ("update", "persistentvolumeclaims", "data"),
                                ("status", "persistentvolumeclaims", "data")]
    pv, pvc = world.pv("pv1"), world.pvc("data")
    assert pv["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": NS, "name": "data",
                                      "uid": claim["metadata"]["uid"], "apiVersion": "v1",
                                      "resourceVersion": claim["metadata"]["resourceVersion"]}
    assert pv["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    assert pv["status"]["phase"] == "Bound" and "lastPhaseTransitionTime" in pv["status"]
    assert pvc["spec"]["volumeName"] == "pv1"
    assert pvc["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                              "pv.kubernetes.io/bound-by-controller": "yes"}
    assert pvc["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}}


async def test_bound_claim_resync_writes_nothing() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_claim("data")
    world.api.writes.clear()
    await world.sync_claim("data")
    await world.sync_volume("pv1")
    assert world.api.writes == []


async def test_user_prebound_volume_is_not_marked_bound_by_controller() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1", phase="Pending", claim_ref={"namespace": NS, "name": "data"}))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_volume("pv1")
    assert world.pv("pv1")["status"]["phase"] == "Available"  # pre-bound, waiting for its claim
    await world.sync_claim("data")
    assert "annotations" not in world.pv("pv1")["metadata"] or not world.pv("pv1")["metadata"]["annotations"]
    assert world.pv("pv1")["spec"]["claimRef"]["uid"] == world.pvc("data")["metadata"]["uid"]
    assert world.pvc("data")["status"]["phase"] == "Bound"


async def test_claim_naming_a_volume_too_small_gets_volume_mismatch() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1", "1Gi"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", "2Gi", volume_name="pv1"))
    await world.sync_claim("data")
    assert world.recorder.events == [("data", "Warning", "VolumeMismatch",
                                      'Cannot bind to requested volume "pv1": requested PV is too small')]
    assert world.pvc("data")["status"]["phase"] == "Pending"


async def test_claim_naming_a_free_volume_binds_without_bound_by_controller_on_the_claim() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", volume_name="pv1"))
    await world.sync_claim("data")
    assert world.pvc("data")["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes"}
    assert world.pv("pv1")["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}


async def test_claim_without_class_and_without_volume_gets_failed_binding() -> None:
    world = World()
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_claim("data")
    assert world.recorder.events == [("data", "Normal", "FailedBinding",
                                      "no persistent volumes available for this claim and no storage class is set")]


async def test_wait_for_first_consumer_claim_waits_and_names_unscheduled_pods() -> None:
    world = World()
    world.add(STORAGECLASSES, make_class("standard"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard"))
    await world.sync_claim("data")
    assert world.recorder.events[-1][2:] == ("WaitForFirstConsumer",
                                             "waiting for first consumer to be created before binding")
    world.add(PODS, {"metadata": {"name": "app"}, "spec": {"volumes": [
        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    await world.sync_claim("data")
    assert world.recorder.events[-1][2:] == ("WaitForPodScheduled", "waiting for pod app to be scheduled")
    assert world.pvc("data")["status"]["phase"] == "Pending"
    assert "volume.kubernetes.io/storage-provisioner" not in world.pvc("data")["metadata"]["annotations"]


async def test_selected_node_hands_the_claim_to_its_external_provisioner() -> None:
    world = World()
    world.add(STORAGECLASSES, make_class("standard"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard",
                                               annotations={"volume.kubernetes.io/selected-node": "node-1"}))
    await world.sync_claim("data")
    annotations = world.pvc("data")["metadata"]["annotations"]
    assert annotations["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert annotations["volume.beta.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert world.recorder.events == [("data", "Normal", "ExternalProvisioning",
                                      external_provisioning_message("rancher.io/local-path"))]
    assert "Waiting for a volume to be created either by the external provisioner 'rancher.io/local-path'" \
        in world.recorder.events[0][3]


async def test_missing_class_is_provisioning_failed() -> None:
    world = World()
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="nope"))
    with pytest.raises(Exception, match="not found"):
        await world.sync_claim("data")
    assert world.recorder.events == [("data", "Warning", "ProvisioningFailed",
                                      'storageclass.storage.k8s.io "nope" not found')]


async def test_claim_with_nil_class_gets_the_newest_default_class_retroactively() -> None:
    world = World()
    world.add(STORAGECLASSES, make_class("old", default=True, created="2026-01-01T00:00:00Z"))
    world.add(STORAGECLASSES, make_class("new", default=True, created="2026-02-01T00:00:00Z"))
    world.add(STORAGECLASSES, make_class("other", created="2026-03-01T00:00:00Z"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls=None))
    await world.sync_claim("data")
    assert world.pvc("data")["spec"]["storageClassName"] == "new"
    assert world.recorder.events == []


async def test_provisioned_volume_prebound_to_the_claim_completes_the_bind() -> None:
    world = World()
    world.add(STORAGECLASSES, make_class("standard"))
    claim = world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls="standard"))
    ref = {"kind": "PersistentVolumeClaim", "namespace": NS, "name": "data", "uid": claim["metadata"]["uid"]}
    world.add(PERSISTENTVOLUMES, make_pv("pvc-x", cls="standard", phase="Pending", policy="Delete", claim_ref=ref))
    await world.sync_volume("pvc-x")
    assert world.enqueued == [f"{NS}/data"]  # the claim finishes the bind
    await world.sync_claim("data")
    assert world.pvc("data")["spec"]["volumeName"] == "pvc-x"
    assert world.pv("pvc-x")["status"]["phase"] == "Bound"


async def test_deleted_claim_releases_a_retained_volume_and_keeps_its_claim_ref() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1", policy="Retain"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_claim("data")
    await world.api.delete(PERSISTENTVOLUMECLAIMS, "data", NS)
    world.refresh()
    await world.sync_volume("pv1")
    assert world.pv("pv1")["status"]["phase"] == "Released"
    assert world.pv("pv1")["spec"]["claimRef"]["name"] == "data"


async def test_released_external_volume_is_left_to_its_provisioner() -> None:
    world = World()
    pv = make_pv("pvc-1", policy="Delete", claim_ref={"namespace": NS, "name": "gone", "uid": "u"})
    pv["metadata"]["annotations"] = {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
    world.add(PERSISTENTVOLUMES, pv)
    await world.sync_volume("pvc-1")
    assert world.pv("pvc-1")["status"]["phase"] == "Released"
    assert world.recorder.events == []


async def test_static_delete_volume_outside_tmp_fails_to_delete() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1", policy="Delete", claim_ref={"namespace": NS, "name": "g", "uid": "u"}))
    await world.sync_volume("pv1")
    assert world.pv("pv1")["status"]["phase"] == "Failed"
    assert world.recorder.events == [("pv1", "Warning", "VolumeFailedDelete",
                                      "host_path deleter only supports /tmp/.+ but received provided /data/pv1")]


async def test_claim_whose_volume_is_gone_is_lost() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_claim("data")
    await world.api.delete(PERSISTENTVOLUMES, "pv1")
    world.refresh()
    await world.sync_claim("data")
    assert world.pvc("data")["status"] == {"phase": "Lost"}
    assert world.recorder.events == [("data", "Warning", "ClaimLost",
                                      "Bound claim has lost its PersistentVolume. Data on the volume is lost!")]
    await world.sync_claim("data")
    assert len(world.recorder.events) == 1  # the event comes with the phase change only


async def test_volume_bound_by_controller_to_a_claim_bound_elsewhere_is_unbound() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv2"))
    claim = world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data"))
    await world.sync_claim("data")
    ref = {"kind": "PersistentVolumeClaim", "namespace": NS, "name": "data", "uid": claim["metadata"]["uid"]}
    pv = make_pv("pv1", phase="Bound", claim_ref=ref)
    pv["metadata"]["annotations"] = {"pv.kubernetes.io/bound-by-controller": "yes"}
    world.add(PERSISTENTVOLUMES, pv)
    await world.sync_volume("pv1")
    assert "claimRef" not in world.pv("pv1")["spec"]
    assert world.pv("pv1")["status"]["phase"] == "Available"


async def test_stale_cache_conflicts_instead_of_double_binding() -> None:
    world = World()
    world.add(PERSISTENTVOLUMES, make_pv("pv1"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("a"))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("b"))
    claim_b = world.lister(PERSISTENTVOLUMECLAIMS).get("b", NS)
    await world.sync_claim("a")
    stale_pv = make_pv("pv1")  # what b's sync would see with a cache from before a's bind
    stale_pv["metadata"]["resourceVersion"] = "1"
    world.stores["persistentvolumes"].replace([stale_pv])
    with pytest.raises(Exception, match="409"):
        await world.claims.sync(claim_b)
    world.refresh()
    assert world.pv("pv1")["spec"]["claimRef"]["name"] == "a"


async def test_refused_default_class_assignment_leaves_a_class_less_claim_pending() -> None:
    world = World()
    world.add(STORAGECLASSES, make_class("standard", default=True))
    world.add(PERSISTENTVOLUMECLAIMS, make_pvc("data", cls=None))
    original = world.api.update

    async def refuse(resource, obj, namespace=None):  # an API server without the 1.28 rule
        if resource is PERSISTENTVOLUMECLAIMS and obj["spec"].get("storageClassName") is not None:
            raise ApiError({"code": 422, "reason": "Invalid", "message": "spec: Forbidden: spec is immutable"})
        return await original(resource, obj, namespace)

    world.api.update = refuse  # type: ignore[method-assign]
    await world.sync_claim("data")
    assert world.recorder.reasons() == ["FailedBinding"]
    assert world.pvc("data")["status"]["phase"] == "Pending"
