"""VolumeBinding: claims must exist, be bound or bindable, and their PVs reachable."""

from __future__ import annotations

import pytest

from controllers.scheduler.framework import SUCCESS, Code, CycleState, Status
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import VolumeBinding
from tests.controllers.scheduler.builders import make_node, make_pod, run_filter

NODES = [make_node("n1"), make_node("n2")]
NODE_CONFLICT = Status.unresolvable("node(s) had volume node affinity conflict")
BIND_CONFLICT = Status.unresolvable("node(s) didn't find available persistent volumes to bind")


def pod_with_claim(claim: str = "data") -> dict:
    return make_pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}])


def pvc(name: str = "data", *, volume: str = "", storage_class: str | None = "standard", bound: bool = True) -> dict:
    claim = {"metadata": {"name": name, "namespace": "default", "annotations": {}},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
             "status": {"phase": "Bound" if volume else "Pending"}}
    if storage_class is not None:
        claim["spec"]["storageClassName"] = storage_class
    if volume:
        claim["spec"]["volumeName"] = volume
        if bound:
            claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = "yes"
    return claim


def pv(name: str, node: str | None = None, *, storage_class: str = "standard", claim: str | None = None) -> dict:
    volume = {"metadata": {"name": name},
              "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": storage_class},
              "status": {"phase": "Available"}}
    if node:
        volume["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    if claim:
        volume["spec"]["claimRef"] = {"namespace": "default", "name": claim}
        volume["status"]["phase"] = "Bound"
    return volume


def storage_class(name: str = "standard", mode: str = "WaitForFirstConsumer",
                  provisioner: str = "rancher.io/local-path", **extra: object) -> dict:
    return {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode, **extra}


def per_node(snapshot: Snapshot, pod: dict) -> dict[str, tuple]:
    out = {}
    for name in ("n1", "n2"):
        status = run_filter(VolumeBinding(), pod, snapshot, name)
        out[name] = (status.code, status.reasons)
    return out


def both(n1: Status, n2: Status) -> dict[str, tuple]:
    return {"n1": (n1.code, n1.reasons), "n2": (n2.code, n2.reasons)}


@pytest.mark.parametrize(("objects", "expected"), [
    pytest.param({"pvcs": [pvc(volume="pv-1")], "pvs": [pv("pv-1", "n1", claim="data")]},
                 both(SUCCESS, NODE_CONFLICT), id="bound-local-pv-pins-node"),
    pytest.param({"pvcs": [pvc(volume="pv-1")], "pvs": [pv("pv-1", claim="data")]},
                 both(SUCCESS, SUCCESS), id="bound-pv-without-affinity"),
    pytest.param({"pvcs": [pvc(volume="gone")]},
                 both(*[Status.unresolvable("node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)")] * 2),
                 id="bound-to-missing-pv"),
    pytest.param({"pvcs": [pvc()], "storage_classes": [storage_class()]}, both(SUCCESS, SUCCESS),
                 id="wait-for-first-consumer-provisionable"),
    pytest.param({"pvcs": [pvc()], "storage_classes": [storage_class(allowedTopologies=[{"matchLabelExpressions": [
        {"key": "kubernetes.io/hostname", "values": ["n2"]}]}])]}, both(BIND_CONFLICT, SUCCESS),
                 id="allowed-topologies"),
    pytest.param({"pvcs": [pvc(storage_class="local")], "pvs": [pv("local-1", "n1", storage_class="local")],
                  "storage_classes": [storage_class("local", provisioner="kubernetes.io/no-provisioner")]},
                 both(SUCCESS, BIND_CONFLICT), id="static-local-pv-only-on-its-node"),
])
def test_volume_binding_filter(objects: dict, expected: dict) -> None:
    assert per_node(Snapshot(NODES, **objects), pod_with_claim()) == expected


@pytest.mark.parametrize(("objects", "code", "message"), [
    pytest.param({}, Code.UNSCHEDULABLE_AND_UNRESOLVABLE, 'persistentvolumeclaim "data" not found', id="missing-claim"),
    pytest.param({"pvcs": [pvc(storage_class="fast")], "storage_classes": [storage_class("fast", "Immediate")]},
                 Code.UNSCHEDULABLE_AND_UNRESOLVABLE, "pod has unbound immediate PersistentVolumeClaims",
                 id="unbound-immediate"),
    pytest.param({"pvcs": [pvc(storage_class="")]}, Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                 "pod has unbound immediate PersistentVolumeClaims", id="no-class-is-immediate"),
    pytest.param({"pvcs": [pvc(volume="pv-1", bound=False)], "storage_classes": [storage_class()]},
                 Code.UNSCHEDULABLE_AND_UNRESOLVABLE, "pod has unbound immediate PersistentVolumeClaims",
                 id="prebound-not-bind-completed"),
    pytest.param({"pvcs": [pvc(storage_class="nope")]}, Code.ERROR, 'storageclass.storage.k8s.io "nope" not found',
                 id="missing-storage-class-is-an-error"),
])
def test_volume_binding_pre_filter(objects: dict, code: Code, message: str) -> None:
    _, status = VolumeBinding().pre_filter(CycleState(Snapshot(NODES, **objects)), pod_with_claim())
    assert (status.code, status.message()) == (code, message)


def test_pod_without_claims_skips_and_delayed_claims_are_reported_for_binding() -> None:
    state = CycleState(Snapshot(NODES, pvcs=[pvc()], storage_classes=[storage_class()]))
    assert VolumeBinding().pre_filter(state, make_pod("p"))[1].is_skip()
    assert VolumeBinding().pre_filter(state, pod_with_claim())[1].is_success()
    assert VolumeBinding.claims_to_bind(state) == ["default/data"]
