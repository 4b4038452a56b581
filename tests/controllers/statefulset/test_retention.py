"""persistentVolumeClaimRetentionPolicy as owner references on the claims."""

from __future__ import annotations

import pytest

from controllers.common import objects
from controllers.statefulset import retention
from minikube_py.client import PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from tests.controllers.statefulset.fake import Cluster, stateful_set


def owner_kinds(c: Cluster, claim: str) -> list[tuple[str, str]]:
    refs = objects.metadata(c.api.get_obj(PERSISTENTVOLUMECLAIMS, claim)).get("ownerReferences") or []
    return sorted((r["kind"], r["name"]) for r in refs)


async def test_when_deleted_delete_gives_every_claim_a_set_reference() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=2, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Delete", "whenScaled": "Retain"}))
    await c.converge()
    assert owner_kinds(c, "www-web-0") == owner_kinds(c, "www-web-1") == [("StatefulSet", "web")]
    ref = objects.metadata(c.api.get_obj(PERSISTENTVOLUMECLAIMS, "www-web-0"))["ownerReferences"][0]
    assert "controller" not in ref and ref["uid"] == objects.uid(c.api.get_obj(STATEFULSETS, "web"))


async def test_when_scaled_delete_gives_the_condemned_pods_claim_a_pod_reference() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=2, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Retain", "whenScaled": "Delete"}))
    await c.converge()
    assert owner_kinds(c, "www-web-1") == []
    pod_uid = objects.uid(c.api.get_obj(PODS, "web-1"))
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=1))
    await c.sync()
    refs = objects.metadata(c.api.get_obj(PERSISTENTVOLUMECLAIMS, "www-web-1"))["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"]) for r in refs] == [("Pod", "web-1", pod_uid)]
    assert c.deleted_pods() == ["web-1"]
    assert owner_kinds(c, "www-web-0") == []


async def test_a_new_pod_waits_while_its_claim_still_belongs_to_the_previous_pod() -> None:
    c = Cluster()
    await c.api.create(STATEFULSETS, stateful_set(replicas=2, persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Retain", "whenScaled": "Delete"}))
    await c.converge()
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=1))
    await c.sync()  # web-1 deleted; its claim now owned by the old web-1 (the GC would delete it)
    c.api.edit_set("web", lambda s: s["spec"].update(replicas=2))
    c.api.calls.clear()
    await c.sync()
    assert c.created_pods() == []  # stale claim: wait for the garbage collector
    await c.api.delete(PERSISTENTVOLUMECLAIMS, "www-web-1")
    await c.sync()
    assert c.created_pods() == ["web-1"]


@pytest.mark.parametrize(("policy", "in_range", "want"), [
    pytest.param({}, True, (False, False), id="retain-retain"),
    pytest.param({"whenDeleted": "Delete"}, True, (True, False), id="deleted-delete"),
    pytest.param({"whenScaled": "Delete"}, True, (False, False), id="scaled-delete-in-range"),
    pytest.param({"whenScaled": "Delete"}, False, (False, True), id="scaled-delete-condemned"),
    pytest.param({"whenScaled": "Delete", "whenDeleted": "Delete"}, True, (True, False), id="both-in-range"),
    pytest.param({"whenScaled": "Delete", "whenDeleted": "Delete"}, False, (False, True), id="both-condemned"),
])
def test_desired_refs(policy: dict, in_range: bool, want: tuple[bool, bool]) -> None:
    sts = stateful_set(replicas=2, persistentVolumeClaimRetentionPolicy=policy)
    pod = {"metadata": {"name": "web-1" if in_range else "web-5"}}
    assert retention.desired_refs(sts, pod) == want
