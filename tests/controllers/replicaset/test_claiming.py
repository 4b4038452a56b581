"""Claiming objects: adopt orphans that match, release ours that stopped matching."""

from __future__ import annotations

import pytest

from controllers.common import ownership

OWNER = {"metadata": {"name": "web", "namespace": "default", "uid": "owner"}}


def obj(name: str, *, app: str = "web", controller: str | None = None, namespace: str = "default",
        deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": {"app": app}}
    if controller:
        meta["ownerReferences"] = [{"uid": controller, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta}


def match(o: dict) -> bool:
    return o["metadata"]["labels"]["app"] == "web"


@pytest.mark.parametrize(("candidate", "outcome"), [
    pytest.param(obj("ours", controller="owner"), "owned", id="ours-matching"),
    pytest.param(obj("stray", app="db", controller="owner"), "release", id="ours-not-matching"),
    pytest.param(obj("orphan"), "adopt", id="orphan-matching"),
    pytest.param(obj("orphan-db", app="db"), "ignored", id="orphan-not-matching"),
    pytest.param(obj("theirs", controller="other"), "ignored", id="someone-elses"),
    pytest.param(obj("dying", deleting=True), "ignored", id="orphan-being-deleted"),
    pytest.param(obj("far", namespace="prod"), "ignored", id="other-namespace"),
])
def test_claim(candidate: dict, outcome: str) -> None:
    result = ownership.claim(OWNER, [candidate], match)
    got = ("adopt" if result.adopt else "release" if result.release
           else "owned" if result.owned else "ignored")
    assert got == outcome
    if outcome == "adopt":
        assert result.owned == [candidate]


def test_owner_being_deleted_keeps_what_it_owns_and_claims_nothing_new() -> None:
    owner = {"metadata": {**OWNER["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    result = ownership.claim(owner, [obj("ours", controller="owner"), obj("orphan"),
                                     obj("stray", app="db", controller="owner")], match)
    assert [o["metadata"]["name"] for o in result.owned] == ["ours"]
    assert result.adopt == [] and result.release == []


def test_controller_ref_sets_controller_and_block_owner_deletion() -> None:
    assert ownership.controller_ref(OWNER, api_version="apps/v1", kind="Deployment") == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "owner",
        "controller": True, "blockOwnerDeletion": True}
