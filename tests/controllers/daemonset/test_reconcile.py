"""One DaemonSet sync as a pure function: creates, deletes, adoption, status, expectations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controllers.common.actions import (
    AdoptPod,
    DeletePods,
    Event,
    RequeueAfter,
    SetExpectations,
    UpdateStatus,
)
from controllers.common.expectations import ControlleeExpectations
from controllers.daemonset.backoff import FailedPodsBackoff
from controllers.daemonset.reconcile import CreateDaemonPods, reconcile_daemonset
from tests.controllers.daemonset.fixtures import NOW, daemon_pod, daemon_set, node, taint

Obj = dict[str, Any]


def sync(ds: Obj, nodes: list[Obj], pods: list[Obj], *, hash_value: str = "h1", backoff: FailedPodsBackoff | None = None,
         expectations: ControlleeExpectations | None = None, now=NOW, **kwargs: Any) -> list[Any]:
    return reconcile_daemonset(ds, nodes, pods, hash_value=hash_value, now=now, backoff=backoff or FailedPodsBackoff(),
                               expectations=expectations, **kwargs)


def of(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def created_nodes(actions: list[Any]) -> list[str]:
    creates = of(actions, CreateDaemonPods)
    return [] if not creates else list(creates[0].node_names)


def deleted(actions: list[Any]) -> list[str]:
    deletes = of(actions, DeletePods)
    return [] if not deletes else list(deletes[0].names)


def status_of(actions: list[Any]) -> Obj:
    [update] = of(actions, UpdateStatus)
    return update.status


def test_one_pod_per_node_pinned_with_labels_and_tolerations() -> None:
    actions = sync(daemon_set(), [node("n2"), node("n1"), node("n3")], [])
    assert of(actions, SetExpectations) == [SetExpectations(add=3)]
    [create] = of(actions, CreateDaemonPods)
    assert create.count == 3 and create.generate_name == "agent-"
    assert create.owner_ref["kind"] == "DaemonSet" and create.owner_ref["controller"] is True
    built = [create.pod() for _ in range(3)]
    pinned = [p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
              ["nodeSelectorTerms"][0]["matchFields"][0]["values"] for p in built]
    assert pinned == [["n1"], ["n2"], ["n3"]]
    assert built[0]["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": "h1",
                                              "pod-template-generation": "1"}
    assert "nodeName" not in built[0]["spec"]  # the scheduler binds it
    assert {t["key"] for t in built[0]["spec"]["tolerations"]} >= {"node.kubernetes.io/not-ready",
                                                                  "node.kubernetes.io/unschedulable"}
    status = status_of(actions)
    assert status["desiredNumberScheduled"] == 3 and status["currentNumberScheduled"] == 0
    assert status["numberUnavailable"] == 3 and status["observedGeneration"] == 1


def test_new_node_gets_a_pod_and_status_counts_are_exact() -> None:
    pods = [daemon_pod("a", "n1"), daemon_pod("b", "n2", ready=False)]
    actions = sync(daemon_set(), [node("n1"), node("n2"), node("n3")], pods)
    assert created_nodes(actions) == ["n3"]
    assert status_of(actions) == {"currentNumberScheduled": 2, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
                                  "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1,
                                  "numberUnavailable": 2, "observedGeneration": 1}


def test_steady_state_writes_nothing() -> None:
    pods = [daemon_pod("a", "n1")]
    status = {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1, "numberReady": 1,
              "updatedNumberScheduled": 1, "numberAvailable": 1, "observedGeneration": 1}
    assert sync(daemon_set(status=status), [node("n1")], pods) == []


def test_removed_node_unbound_pod_is_deleted_bound_pod_left_to_pod_gc() -> None:
    pods = [daemon_pod("a", "n1"), daemon_pod("gone-unbound", "n9", bound=False), daemon_pod("gone-bound", "n8")]
    actions = sync(daemon_set(), [node("n1")], pods)
    assert deleted(actions) == ["gone-unbound"]
    assert status_of(actions)["desiredNumberScheduled"] == 1


def test_noexecute_taint_deletes_pod_noschedule_keeps_it_as_misscheduled() -> None:
    nodes = [node("n1", taints=[taint("dedicated", "NoSchedule")]), node("n2", taints=[taint("dedicated", "NoExecute")])]
    actions = sync(daemon_set(), nodes, [daemon_pod("a", "n1"), daemon_pod("b", "n2")])
    assert deleted(actions) == ["b"] and not created_nodes(actions)
    status = status_of(actions)
    assert status["desiredNumberScheduled"] == 0 and status["numberMisscheduled"] == 2


def test_node_no_longer_selected_loses_its_pod() -> None:
    ds = daemon_set(pod_spec={"nodeSelector": {"role": "edge"}})
    actions = sync(ds, [node("n1", labels={"role": "edge"}), node("n2")],
                   [daemon_pod("a", "n1"), daemon_pod("b", "n2")])
    assert deleted(actions) == ["b"]


def test_failed_pod_is_deleted_with_event_then_backoff_limits_the_next_one() -> None:
    backoff = FailedPodsBackoff()
    failed = daemon_pod("a", "n1", phase="Failed", ready=False)
    actions = sync(daemon_set(), [node("n1")], [failed], backoff=backoff)
    assert deleted(actions) == ["a"]
    assert Event("Warning", "FailedDaemonPod",
                 "Found failed daemon pod default/a on node n1, will try to kill it") in actions
    again = sync(daemon_set(), [node("n1")], [daemon_pod("b", "n1", phase="Failed", ready=False)], backoff=backoff,
                 now=NOW + timedelta(milliseconds=500))
    assert deleted(again) == [] and RequeueAfter(1) in again
    later = sync(daemon_set(), [node("n1")], [daemon_pod("b", "n1", phase="Failed", ready=False)], backoff=backoff,
                 now=NOW + timedelta(seconds=2))
    assert deleted(later) == ["b"] and backoff.delay("ds-uid/0/n1") == timedelta(seconds=2)


def test_succeeded_pod_is_deleted_and_next_sync_recreates() -> None:
    actions = sync(daemon_set(), [node("n1")], [daemon_pod("a", "n1", phase="Succeeded", ready=False)])
    assert deleted(actions) == ["a"] and not created_nodes(actions)
    assert Event("Normal", "SucceededDaemonPod",
                 "Found succeeded daemon pod default/a on node n1, will try to delete it") in actions
    assert created_nodes(sync(daemon_set(), [node("n1")], [])) == ["n1"]


def test_excess_pods_on_a_node_keep_the_oldest() -> None:
    pods = [daemon_pod("young", "n1", age=10), daemon_pod("old", "n1", age=1000), daemon_pod("mid", "n1", age=100)]
    assert sorted(deleted(sync(daemon_set(), [node("n1")], pods))) == ["mid", "young"]


def test_unsatisfied_expectations_only_update_status_without_observed_generation() -> None:
    pending = ControlleeExpectations(NOW, add=1)
    actions = sync(daemon_set(generation=2, status={"observedGeneration": 1}), [node("n1"), node("n2")],
                   [daemon_pod("a", "n1")], expectations=pending)
    assert not created_nodes(actions) and not of(actions, SetExpectations)
    status = status_of(actions)
    assert status["observedGeneration"] == 1 and status["desiredNumberScheduled"] == 2


def test_orphan_matching_selector_is_adopted_and_counted() -> None:
    orphan = daemon_pod("stray", "n1")
    orphan["metadata"]["ownerReferences"] = []
    actions = sync(daemon_set(), [node("n1")], [orphan])
    [adopt] = of(actions, AdoptPod)
    assert adopt.name == "stray" and adopt.patch["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"
    assert not created_nodes(actions)


def test_burst_limits_creates() -> None:
    nodes = [node(f"n{i}") for i in range(5)]
    actions = sync(daemon_set(), nodes, [], burst_replicas=2)
    assert of(actions, SetExpectations) == [SetExpectations(add=2)] and created_nodes(actions) == ["n0", "n1"]


def test_min_ready_seconds_requeues_until_available() -> None:
    ds = daemon_set(min_ready=30)
    actions = sync(ds, [node("n1")], [daemon_pod("a", "n1", ready_for=5)])
    assert RequeueAfter(30.0) in actions
    assert status_of(actions)["numberReady"] == 1 and "numberAvailable" not in status_of(actions)


def test_selector_selecting_everything_is_refused_with_event() -> None:
    ds = daemon_set()
    ds["spec"]["selector"] = {}
    assert sync(ds, [node("n1")], []) == [
        Event("Warning", "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")]
