"""The dependency graph as pure code: which uids it queues for attemptToDelete and
attemptToOrphan as informer events arrive."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.garbagecollector.graph import Graph, Identity

Obj = dict[str, Any]


def obj(kind: str, name: str, uid: str, *owners: Obj, namespace: str = "ns", deleting: bool = False,
        finalizers: list[str] | None = None, api_version: str = "v1") -> Obj:
    meta: Obj = {"name": name, "uid": uid, "namespace": namespace, "ownerReferences": list(owners)}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def ref(owner: Obj, *, block: bool = False) -> Obj:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"]}
    if block:
        r["blockOwnerDeletion"] = True
    return r


class Recorder:
    def __init__(self) -> None:
        self.deletes: list[str] = []
        self.orphans: list[str] = []
        self.invalid: list[tuple[str, str]] = []
        self.graph = Graph(attempt_to_delete=self.deletes.append, attempt_to_orphan=self.orphans.append,
                           invalid_namespace=lambda node, r: self.invalid.append((node.uid, r["uid"])))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def test_unseen_owner_becomes_a_virtual_node_queued_for_verification(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner)))
    node = rec.graph.get("u-o")
    assert node is not None and not node.observed and node.dependents == {"u-d"}
    assert rec.deletes == ["u-o"]
    rec.graph.observe(owner)
    assert rec.graph.get("u-o").observed


def test_deleted_owner_queues_its_dependents(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(owner)
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner)))
    rec.deletes.clear()
    rec.graph.observe_deleted(owner)
    assert rec.deletes == ["u-d"] and rec.graph.get("u-o") is None


def test_virtual_delete_records_absent_owner_and_queues_dependents(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner)))
    rec.deletes.clear()
    identity = Identity("v1", "ConfigMap", "ns", "o", "u-o")
    rec.graph.virtual_delete(identity)
    assert rec.graph.get("u-o") is None and rec.deletes == ["u-d"]
    assert identity in rec.graph.absent


def test_orphan_finalizer_queues_owner_for_orphaning_once(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(owner)
    deleting = obj("ConfigMap", "o", "u-o", deleting=True, finalizers=["orphan"])
    rec.graph.observe(deleting, owner)
    rec.graph.observe(deleting, deleting)  # a later update: no new transition
    assert rec.orphans == ["u-o"]


def test_foreground_marks_deleting_dependents_and_queues_owner_and_dependents(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(owner)
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner, block=True)))
    rec.deletes.clear()
    rec.graph.observe(obj("ConfigMap", "o", "u-o", deleting=True, finalizers=["foregroundDeletion"]), owner)
    node = rec.graph.get("u-o")
    assert node.deleting_dependents and node.being_deleted
    assert rec.deletes == ["u-d", "u-o"]
    assert [d.uid for d in rec.graph.blocking_dependents(node)] == ["u-d"]


def test_removing_a_blocking_reference_requeues_the_waiting_owner(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o")
    rec.graph.observe(owner)
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner, block=True)))
    rec.deletes.clear()
    rec.graph.observe(obj("ConfigMap", "d", "u-d"))
    assert rec.deletes == ["u-o"]
    assert rec.graph.get("u-o").dependents == set()


def test_observed_owner_in_another_namespace_is_reported_and_dependent_queued(rec: Recorder) -> None:
    owner = obj("ConfigMap", "o", "u-o", namespace="other")
    rec.graph.observe(owner)
    rec.graph.observe(obj("ConfigMap", "d", "u-d", ref(owner)))
    assert rec.invalid == [("u-d", "u-o")]
    assert rec.deletes == ["u-d"]


def test_cluster_scoped_owner_may_own_namespaced_dependents(rec: Recorder) -> None:
    node = obj("Node", "n1", "u-n", namespace="")
    rec.graph.observe(node)
    rec.graph.observe(obj("Pod", "p", "u-p", ref(node)))
    assert rec.invalid == [] and rec.deletes == []


def test_identity_string_is_kubernetes_object_reference_format() -> None:
    assert str(Identity("apps/v1", "Deployment", "ns", "web", "123")) == (
        "[apps/v1/Deployment, namespace: ns, name: web, uid: 123]")
