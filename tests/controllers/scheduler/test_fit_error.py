"""The FailedScheduling message, character for character as Kubernetes 1.32 builds it."""

from __future__ import annotations

from controllers.scheduler.fit_error import NOTE_LENGTH_LIMIT, fit_error_message, truncate_message
from controllers.scheduler.framework import Diagnosis, Status
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import default_framework
from tests.controllers.scheduler.builders import make_node, make_pod, taint

CONTROL_PLANE = taint("node-role.kubernetes.io/control-plane")


def issue_cluster(existing: list[dict] = ()) -> Snapshot:
    """The issue's example: a tainted control plane and two nodes too small for the pod."""
    nodes = [make_node("control-plane", taints=[CONTROL_PLANE]), make_node("w1", cpu="1"), make_node("w2", cpu="1")]
    return Snapshot(nodes, existing)


def test_tainted_and_too_small_nodes_with_nothing_to_preempt() -> None:
    result = default_framework().schedule(make_pod("web", cpu="2"), issue_cluster())
    # In 1.32 "Insufficient cpu" is Unschedulable, so preemption tries those nodes and,
    # with no lower-priority pods there, says so. (1.34+ would say "3 Preemption is not
    # helpful for scheduling" because the pod exceeds the nodes' allocatable.)
    assert result.message() == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod.")
    assert result.diagnosis.unschedulable_plugins == {"TaintToleration", "NodeResourcesFit"}


def test_preemption_that_would_not_free_enough_counts_the_remaining_reason() -> None:
    low = [make_pod("batch-1", cpu="500m", node_name="w1", priority=0),
           make_pod("batch-2", cpu="500m", node_name="w2", priority=0)]
    result = default_framework().schedule(make_pod("web", cpu="2", priority=1000), issue_cluster(low))
    assert result.message() == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 Insufficient cpu.")


def test_preemption_candidates_end_the_message_without_a_suffix() -> None:
    nodes = [make_node("n", cpu="2")]
    low = [make_pod("batch", cpu="1500m", node_name="n", priority=0)]
    result = default_framework().schedule(make_pod("web", cpu="1", priority=1000), Snapshot(nodes, low))
    assert result.message() == "0/1 nodes are available: 1 Insufficient cpu."
    assert result.post_filter_result is not None
    assert [p["metadata"]["name"] for p in result.post_filter_result.candidates["n"]] == ["batch"]


def test_preemption_policy_never() -> None:
    result = default_framework().schedule(make_pod("web", cpu="2", preemptionPolicy="Never"), issue_cluster())
    assert result.message().endswith("2 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")


def test_every_node_unresolvable() -> None:
    nodes = [make_node(n) for n in ("a", "b", "c")]
    result = default_framework().schedule(make_pod("p", nodeSelector={"disk": "ssd"}), Snapshot(nodes))
    assert result.message() == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_without_preemption_there_is_no_suffix() -> None:
    result = default_framework(preemption=False).schedule(make_pod("web", cpu="2"), issue_cluster())
    assert result.message() == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu.")


def test_every_reason_of_a_node_counts_and_entries_sort_as_strings() -> None:
    nodes = [make_node(f"t{i}", taints=[taint("dedicated", "gpu")]) for i in range(10)]
    nodes += [make_node("s1", cpu="1", memory="1Gi"), make_node("s2", cpu="1", memory="1Gi")]
    result = default_framework(preemption=False).schedule(make_pod("p", cpu="2", memory="2Gi"), Snapshot(nodes))
    # "10 ..." sorts before "2 ..." because the entries are compared as strings.
    assert result.message() == ("0/12 nodes are available: 10 node(s) had untolerated taint {dedicated: gpu}, "
                                "2 Insufficient cpu, 2 Insufficient memory.")


def test_pre_filter_rejection_replaces_the_per_node_counts() -> None:
    pod = make_pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}])
    result = default_framework().schedule(pod, Snapshot([make_node("a"), make_node("b"), make_node("c")]))
    assert result.message() == (
        '0/3 nodes are available: persistentvolumeclaim "data" not found. '
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_message_from_a_diagnosis() -> None:
    diagnosis = Diagnosis(node_to_status={"a": Status.unschedulable("Too many pods")},
                          absent_nodes_status=Status.unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]"),
                          post_filter_msg="preemption: not eligible due to preemptionPolicy=Never.")
    assert fit_error_message(4, diagnosis) == (
        "0/4 nodes are available: 1 Too many pods, 3 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: not eligible due to preemptionPolicy=Never.")
    assert fit_error_message(2, Diagnosis()) == "0/2 nodes are available:"


def test_event_note_is_truncated_at_1024_bytes() -> None:
    assert truncate_message("short") == "short"
    long = "x" * 2000
    cut = truncate_message(long)
    assert len(cut.encode()) == NOTE_LENGTH_LIMIT and cut.endswith("x ...")
    nodes = [make_node(f"node-{i}", taints=[taint(f"key-{i}", "v" * 40)]) for i in range(30)]
    result = default_framework().schedule(make_pod("p"), Snapshot(nodes))
    assert len(result.message()) > NOTE_LENGTH_LIMIT
    assert len(result.message(truncate=True).encode()) == NOTE_LENGTH_LIMIT


def test_unbound_immediate_claim_and_scheduler_errors() -> None:
    pod = make_pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}])
    claim = {"metadata": {"name": "data", "namespace": "default"}, "spec": {"storageClassName": "fast"}}
    fast = {"metadata": {"name": "fast"}, "provisioner": "x", "volumeBindingMode": "Immediate"}
    nodes = [make_node("a")]
    result = default_framework().schedule(pod, Snapshot(nodes, pvcs=[claim], storage_classes=[fast]))
    assert result.message() == ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                                "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
    assert result.diagnosis.unschedulable_plugins == {"VolumeBinding"}
    broken = default_framework().schedule(pod, Snapshot(nodes, pvcs=[claim]))
    assert broken.error is not None
    assert broken.message() == 'running PreFilter plugin "VolumeBinding": storageclass.storage.k8s.io "fast" not found'
