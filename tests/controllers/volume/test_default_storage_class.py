"""DefaultStorageClass admission and the bootstrap `standard` class (apiserver side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apiserver.admission.storageclass_default import needs_default_class, pick_default_class
from minikube_py.client import PERSISTENTVOLUMECLAIMS, STORAGECLASSES
from tests.controllers.manager.harness import api_server
from tests.controllers.volume.world import make_class, make_pvc

Obj = dict[str, Any]


def test_newest_default_class_wins_and_unmarked_classes_never_do() -> None:
    classes = [make_class("a", default=True, created="2026-01-01T00:00:00Z"),
               make_class("b", default=True, created="2026-03-01T00:00:00Z"),
               make_class("c", created="2026-06-01T00:00:00Z")]
    assert pick_default_class(classes)["metadata"]["name"] == "b"
    assert pick_default_class([make_class("c")]) is None


def test_equal_timestamps_pick_by_name() -> None:
    classes = [make_class("zeta", default=True), make_class("alpha", default=True)]
    assert pick_default_class(classes)["metadata"]["name"] == "alpha"


def test_beta_default_annotation_counts() -> None:
    sc = make_class("old")
    sc["metadata"]["annotations"] = {"storageclass.beta.kubernetes.io/is-default-class": "true"}
    assert pick_default_class([sc]) is sc


@pytest.mark.parametrize(("claim", "needs"), [
    pytest.param(make_pvc("c", cls=None), True, id="nil"),
    pytest.param(make_pvc("c", cls=""), False, id="empty-string-means-no-class"),
    pytest.param(make_pvc("c", cls="fast"), False, id="named"),
    pytest.param(make_pvc("c", cls=None, annotations={"volume.beta.kubernetes.io/storage-class": "x"}), False,
                 id="beta-annotation"),
])
def test_only_claims_without_any_class_get_the_default(claim: Obj, needs: bool) -> None:
    assert needs_default_class(claim) is needs


async def test_admission_assigns_the_default_class_and_leaves_explicit_classes(tmp_path: Path) -> None:
    from minikube_py.client import ApiClient

    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        first = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("a", cls=None))
        assert first["spec"]["storageClassName"] == "standard"
        await client.patch(STORAGECLASSES, "standard", {"metadata": {"annotations": {
            "storageclass.kubernetes.io/is-default-class": "false"}}})
        await client.create(STORAGECLASSES, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                             "metadata": {"name": "fast", "annotations": {
                                                 "storageclass.kubernetes.io/is-default-class": "true"}},
                                             "provisioner": "example.com/fast"})
        second = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("b", cls=None))
        assert second["spec"]["storageClassName"] == "fast"
        named = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("c", cls="slow"))
        assert named["spec"]["storageClassName"] == "slow"


async def test_standard_class_is_not_overwritten_on_restart(tmp_path: Path) -> None:
    from minikube_py.client import ApiClient

    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        await client.patch(STORAGECLASSES, "standard", {"metadata": {"annotations": {
            "storageclass.kubernetes.io/is-default-class": "false"}}})
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        sc = await client.get(STORAGECLASSES, "standard")
        assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
        plain = await client.create(PERSISTENTVOLUMECLAIMS, make_pvc("c", cls=None))
        assert "storageClassName" not in plain["spec"]
