"""The ReplicaSet reconciler: creates, deletes in preference order, adoption and release,
expectations, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controllers.common import objects
from controllers.common.actions import (
    AdoptPod,
    CreatePods,
    DeletePods,
    ReleasePod,
    RequeueAfter,
    SetExpectations,
    UpdateStatus,
)
from controllers.common.expectations import ControlleeExpectations, ExpectationsStore
from controllers.replicaset import reconcile_replicaset
from controllers.replicaset.status import with_replica_failure

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
RS_UID = "rs-uid-1"


def replica_set(replicas: int = 3, **spec) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f7c9b4", "namespace": "default", "uid": RS_UID, "generation": 2},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b4"}},
                 "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f7c9b4"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
                 **spec},
    }


def pod(name: str, *, owned: bool = True, labels: dict | None = None, node: str = "node-1",
        phase: str = "Running", ready_for: float | None = 100, created_ago: float = 1000,
        restarts: int = 0, **meta) -> dict:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b4", "uid": RS_UID,
             "controller": True, "blockOwnerDeletion": True}] if owned else []
    status: dict = {"phase": phase, "containerStatuses": [{"name": "app", "restartCount": restarts}]}
    if ready_for is not None:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": objects.format_time(NOW - timedelta(seconds=ready_for))}]
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                     "labels": labels if labels is not None else {"app": "web", "pod-template-hash": "5d8f7c9b4"},
                     "creationTimestamp": objects.format_time(NOW - timedelta(seconds=created_ago)),
                     "ownerReferences": refs, **meta},
        "spec": {"nodeName": node} if node else {},
        "status": status,
    }


def of_type(actions: list, kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def test_too_few_pods_expects_then_creates() -> None:
    actions = reconcile_replicaset(replica_set(3), [pod("a")], now=NOW)
    assert actions[:2] == [SetExpectations(add=2), of_type(actions, CreatePods)[0]]
    create = of_type(actions, CreatePods)[0]
    assert create.count == 2 and create.generate_name == "web-5d8f7c9b4-"
    manifest = create.pod()
    assert manifest["metadata"]["generateName"] == "web-5d8f7c9b4-"
    assert manifest["metadata"]["labels"] == {"app": "web", "pod-template-hash": "5d8f7c9b4"}
    assert manifest["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b4", "uid": RS_UID,
        "controller": True, "blockOwnerDeletion": True}]
    assert create.success_event("web-5d8f7c9b4-abcde").message == "Created pod: web-5d8f7c9b4-abcde"
    assert create.success_event("x").reason == "SuccessfulCreate"


def test_reconcile_right_after_creating_does_not_create_twice() -> None:
    store, key = ExpectationsStore(), "default/web-5d8f7c9b4"
    first = reconcile_replicaset(replica_set(3), [], now=NOW, expectations=store.get(key))
    store.apply(key, of_type(first, SetExpectations)[0], NOW)
    # The informer has not delivered the pods yet: nothing new is created.
    again = reconcile_replicaset(replica_set(3), [], now=NOW, expectations=store.get(key))
    assert of_type(again, CreatePods) == []
    for _ in range(3):
        store.creation_observed(key)
    seen = [pod(n) for n in "abc"]
    after = reconcile_replicaset(replica_set(3), seen, now=NOW, expectations=store.get(key))
    assert of_type(after, CreatePods) == [] and of_type(after, DeletePods) == []


def test_expectations_expire_after_five_minutes() -> None:
    stale = ControlleeExpectations(NOW - timedelta(minutes=5, seconds=1), add=3)
    actions = reconcile_replicaset(replica_set(3), [], now=NOW, expectations=stale)
    assert of_type(actions, CreatePods)[0].count == 3


def test_deletion_expectations_track_pod_keys() -> None:
    store, key = ExpectationsStore(), "default/web-5d8f7c9b4"
    actions = reconcile_replicaset(replica_set(1), [pod("a"), pod("b")], now=NOW)
    store.apply(key, of_type(actions, SetExpectations)[0], NOW)
    doomed = of_type(actions, DeletePods)[0]
    store.deletion_observed(key, "default/not-this-one")
    assert not store.get(key).fulfilled()
    store.deletion_observed(key, f"default/{doomed.names[0]}")
    assert store.get(key).fulfilled()


DELETION_ORDER_CASES = [
    pytest.param([pod("assigned", phase="Pending", ready_for=None), pod("unassigned", node="", phase="Pending",
                  ready_for=None)], ["unassigned", "assigned"], id="unassigned<assigned"),
    pytest.param([pod("running"), pod("unknown", phase="Unknown"), pod("pending", phase="Pending", ready_for=None)],
                 ["pending", "unknown", "running"], id="pending<unknown<running"),
    pytest.param([pod("ready"), pod("not-ready", ready_for=None)], ["not-ready", "ready"], id="not-ready<ready"),
    pytest.param([pod("cheap", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"}), pod("normal")],
                 ["cheap", "normal"], id="lower-deletion-cost-first"),
    pytest.param([pod("long", ready_for=10_000), pod("short", ready_for=10)], ["short", "long"],
                 id="ready-for-less-time-first"),
    pytest.param([pod("calm", restarts=0), pod("flappy", restarts=4)], ["flappy", "calm"],
                 id="more-restarts-first"),
    pytest.param([pod("older", created_ago=100_000, ready_for=5), pod("newer", created_ago=10, ready_for=5)],
                 ["newer", "older"], id="newer-first"),
    pytest.param([pod("b-newer", created_ago=1000, ready_for=5), pod("a-older", created_ago=1010, ready_for=5)],
                 ["a-older", "b-newer"], id="same-log2-age-bucket-ordered-by-uid"),
]


@pytest.mark.parametrize(("pods", "order"), DELETION_ORDER_CASES)
def test_scale_down_deletes_in_active_pods_order(pods: list[dict], order: list[str]) -> None:
    actions = reconcile_replicaset(replica_set(len(pods) - 1), pods, now=NOW)
    assert of_type(actions, DeletePods)[0].names == (order[0],)
    from controllers.common.pods import rank_for_deletion
    assert [p["metadata"]["name"] for p in rank_for_deletion(pods, now=NOW)] == order


def test_doubled_up_pods_are_deleted_before_lonely_ones() -> None:
    pods = [pod("lonely", node="node-a"), pod("pair-1", node="node-b"), pod("pair-2", node="node-b")]
    actions = reconcile_replicaset(replica_set(2), pods, now=NOW)
    assert of_type(actions, DeletePods)[0].names[0] in ("pair-1", "pair-2")


def test_scale_to_zero_deletes_all_with_events() -> None:
    actions = reconcile_replicaset(replica_set(0), [pod("a"), pod("b")], now=NOW)
    delete = of_type(actions, DeletePods)[0]
    assert sorted(delete.names) == ["a", "b"] and delete.keys == ("default/a", "default/b")
    assert delete.success_event("a").message == "Deleted pod: a"
    assert of_type(actions, SetExpectations)[0].deletes == frozenset({"default/a", "default/b"})


def test_orphans_are_adopted_and_strays_released() -> None:
    orphan = pod("orphan", owned=False)
    stray = pod("stray", labels={"app": "other"})
    others = pod("others", owned=False)
    others["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    terminating_orphan = pod("dying", owned=False, deletionTimestamp="2025-03-01T11:59:00Z")
    actions = reconcile_replicaset(replica_set(1), [orphan, stray, others, terminating_orphan], now=NOW)
    (adopt,) = of_type(actions, AdoptPod)
    assert adopt.name == "orphan"
    assert adopt.patch == {"metadata": {"uid": "uid-orphan", "ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b4", "uid": RS_UID,
        "controller": True, "blockOwnerDeletion": True}]}}
    (release,) = of_type(actions, ReleasePod)
    assert release.name == "stray"
    assert release.patch == {"metadata": {"uid": "uid-stray",
                                          "ownerReferences": [{"$patch": "delete", "uid": RS_UID}]}}
    assert of_type(actions, CreatePods) == [] and of_type(actions, DeletePods) == []


def test_replica_set_being_deleted_neither_adopts_nor_creates() -> None:
    rs = replica_set(3)
    rs["metadata"]["deletionTimestamp"] = "2025-03-01T11:59:00Z"
    actions = reconcile_replicaset(rs, [pod("orphan", owned=False)], now=NOW)
    assert of_type(actions, AdoptPod) == [] and of_type(actions, CreatePods) == []


@pytest.mark.parametrize(("min_ready", "pods", "expected"), [
    pytest.param(0, [pod("a"), pod("b", ready_for=None)],
                 {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                  "observedGeneration": 2}, id="ready-is-available"),
    pytest.param(30, [pod("a", ready_for=10), pod("b", ready_for=60)],
                 {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
                  "observedGeneration": 2}, id="min-ready-seconds"),
    pytest.param(0, [pod("a", labels={"app": "web", "pod-template-hash": "5d8f7c9b4", "extra": "x"}),
                     pod("b", ready_for=None, phase="Pending")],
                 {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                  "observedGeneration": 2}, id="extra-labels-still-fully-labeled"),
    pytest.param(0, [], {"replicas": 0, "observedGeneration": 2}, id="zero-counts-omitted"),
])
def test_status(min_ready: int, pods: list[dict], expected: dict) -> None:
    rs = replica_set(len(pods), minReadySeconds=min_ready)
    (update,) = of_type(reconcile_replicaset(rs, pods, now=NOW), UpdateStatus)
    assert update.status == expected


def test_unchanged_status_is_not_written() -> None:
    rs = replica_set(1)
    rs["status"] = {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                    "observedGeneration": 2}
    assert reconcile_replicaset(rs, [pod("a")], now=NOW) == []


def test_terminating_and_finished_pods_do_not_count() -> None:
    pods = [pod("done", phase="Succeeded"), pod("going", deletionTimestamp="2025-03-01T11:59:00Z")]
    actions = reconcile_replicaset(replica_set(1), pods, now=NOW)
    assert of_type(actions, CreatePods)[0].count == 1


def test_requeue_when_a_ready_pod_turns_available() -> None:
    actions = reconcile_replicaset(replica_set(1, minReadySeconds=30), [pod("a", ready_for=10)], now=NOW)
    assert of_type(actions, RequeueAfter) == [RequeueAfter(21.0)]


def test_burst_limits_creations_per_sync() -> None:
    actions = reconcile_replicaset(replica_set(800), [], now=NOW)
    assert of_type(actions, CreatePods)[0].count == 500


def test_failed_create_sets_replica_failure() -> None:
    rs = replica_set(3)
    (update,) = of_type(reconcile_replicaset(rs, [], now=NOW), UpdateStatus)
    failed = with_replica_failure(rs, update.status, 'pods "x" is forbidden: exceeded quota', NOW)
    (cond,) = failed["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
    rs["status"] = failed
    (cleared,) = of_type(reconcile_replicaset(rs, [pod("a"), pod("b"), pod("c")], now=NOW), UpdateStatus)
    assert "conditions" not in cleared.status
