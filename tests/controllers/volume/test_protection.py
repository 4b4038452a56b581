"""StorageObjectInUseProtection: claims in use and bound volumes are only marked for
deletion until nothing uses them (admission finalizers + the protection controllers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.volume.protection import claims_of, finalizer_patch, pod_uses_claim
from minikube_py.client import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, ApiError
from tests.controllers.manager.harness import NS, ControlPlane, control_plane, eventually
from tests.controllers.volume.world import make_pv, make_pvc

Obj = dict[str, Any]
PROTECTION = ["persistentvolumeclaim-protection-controller", "persistentvolume-protection-controller"]


def pod(name: str = "app", *, claim: str = "data", node: str = "n1", phase: str = "Running",
        ephemeral: bool = False) -> Obj:
    volume: Obj = ({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} if ephemeral
                   else {"name": "v", "persistentVolumeClaim": {"claimName": claim}})
    spec: Obj = {"containers": [{"name": "c", "image": "nginx"}], "volumes": [volume]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec,
            "status": {"phase": phase}}


@pytest.mark.parametrize(("obj", "claim", "used"), [
    pytest.param(pod(), "data", True, id="scheduled-running"),
    pytest.param(pod(node=""), "data", False, id="unscheduled"),
    pytest.param(pod(phase="Succeeded"), "data", False, id="succeeded"),
    pytest.param(pod(phase="Failed"), "data", False, id="failed"),
    pytest.param(pod(phase="Pending"), "data", True, id="pending-on-node"),
    pytest.param(pod(), "other", False, id="other-claim"),
    pytest.param(pod(ephemeral=True), "app-scratch", True, id="generic-ephemeral"),
])
def test_pod_uses_claim(obj: Obj, claim: str, used: bool) -> None:
    assert pod_uses_claim(obj, claim) is used


def test_claims_of_and_the_guarded_patch() -> None:
    assert claims_of(pod(ephemeral=True)) == ["app-scratch"]
    obj = {"metadata": {"resourceVersion": "7", "finalizers": ["a", "kubernetes.io/pvc-protection"]}}
    assert finalizer_patch(obj, "kubernetes.io/pvc-protection", add=False) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["a"]}]


async def _exists(plane: ControlPlane, resource: Any, name: str, ns: str | None = NS) -> Obj | None:
    try:
        return await plane.client.get(resource, name, ns)
    except ApiError as exc:
        if exc.is_not_found():
            return None
        raise


async def test_new_claims_and_volumes_carry_the_protection_finalizers(tmp_path: Path) -> None:
    async with control_plane(tmp_path, manager=False) as plane:
        claim = await plane.client.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"), NS)
        volume = await plane.client.create(PERSISTENTVOLUMES, make_pv("pv1"))
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]


async def test_claim_in_use_waits_for_its_pod(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=PROTECTION) as plane:
        c = plane.client
        await c.create(PERSISTENTVOLUMECLAIMS, make_pvc("data"), NS)
        await c.create(PODS, pod(), NS)
        await c.delete(PERSISTENTVOLUMECLAIMS, "data", NS)
        held = await _exists(plane, PERSISTENTVOLUMECLAIMS, "data")
        assert held is not None and held["metadata"].get("deletionTimestamp")
        assert held["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        await c.delete(PODS, "app", NS, grace_period_seconds=0)
        await eventually(lambda: _gone(plane, PERSISTENTVOLUMECLAIMS, "data"), plane)


async def test_unused_claim_goes_at_once_and_a_removed_finalizer_comes_back(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=PROTECTION) as plane:
        c = plane.client
        await c.create(PERSISTENTVOLUMECLAIMS, make_pvc("free"), NS)
        await c.patch(PERSISTENTVOLUMECLAIMS, "free", {"metadata": {"finalizers": None}}, NS)

        async def protected() -> bool:
            obj = await _exists(plane, PERSISTENTVOLUMECLAIMS, "free")
            return bool(obj) and obj["metadata"].get("finalizers") == ["kubernetes.io/pvc-protection"]

        await eventually(protected, plane)
        await c.delete(PERSISTENTVOLUMECLAIMS, "free", NS)
        await eventually(lambda: _gone(plane, PERSISTENTVOLUMECLAIMS, "free"), plane)


async def test_bound_volume_waits_until_it_is_no_longer_bound(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=PROTECTION) as plane:
        c = plane.client
        await c.create(PERSISTENTVOLUMES, make_pv("pv1"))
        await c.patch(PERSISTENTVOLUMES, "pv1", {"status": {"phase": "Bound"}}, subresource="status")
        await c.delete(PERSISTENTVOLUMES, "pv1")
        held = await _exists(plane, PERSISTENTVOLUMES, "pv1", None)
        assert held is not None and held["metadata"].get("deletionTimestamp")
        await c.patch(PERSISTENTVOLUMES, "pv1", {"status": {"phase": "Released"}}, subresource="status")
        await eventually(lambda: _gone(plane, PERSISTENTVOLUMES, "pv1", None), plane)


async def _gone(plane: ControlPlane, resource: Any, name: str, ns: str | None = NS) -> bool:
    return await _exists(plane, resource, name, ns) is None
