"""The framework runs filters, scores and selection as schedule_one.go does, and keeps a
per-node record of all of it for `mkp explain schedule`."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from controllers.scheduler.cycle import num_feasible_nodes_to_find
from controllers.scheduler.framework import SUCCESS, Code, CycleState, Framework, NodeInfo, Status
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import NodeResourcesFit, TaintToleration, default_framework
from tests.controllers.scheduler.builders import make_node, make_pod, taint


class FirstChoice(random.Random):
    """An RNG that always picks the first candidate, to pin tie-breaks."""

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[0]


class FixedScore:
    """A score plugin with given raw scores and an optional normalization."""

    def __init__(self, name: str, scores: dict[str, int], *, double: bool = False) -> None:
        self.name, self.scores, self.double = name, scores, double

    def score(self, state: CycleState, pod: Any, node: NodeInfo) -> int:
        return self.scores[node.name]

    def normalize_score(self, state: CycleState, pod: Any, scores: dict[str, int]) -> None:
        if self.double:
            for name in scores:
                scores[name] *= 2


class Broken:
    name = "Broken"

    def filter(self, state: CycleState, pod: Any, node: NodeInfo) -> Status:
        return Status.error("disk on fire")


def test_highest_total_wins_and_every_score_is_explained() -> None:
    nodes = [make_node("busy"), make_node("idle")]
    busy = [make_pod("e", cpu="3", memory="6Gi", node_name="busy")]
    result = default_framework(rng=random.Random(0)).schedule(make_pod("p", cpu="500m"), Snapshot(nodes, busy))
    assert result.suggested_host == "idle" and result.message() == ""
    idle = result.nodes["idle"]
    assert [s.plugin for s in idle.scores] == ["TaintToleration", "NodeResourcesFit",
                                               "NodeResourcesBalancedAllocation", "ImageLocality"]
    assert idle.total_score == sum(s.normalized * s.weight for s in idle.scores)
    assert idle.total_score > result.nodes["busy"].total_score
    assert result.nodes["idle"].scores[0].weight == 3   # TaintToleration's default weight


def test_weights_multiply_normalized_scores() -> None:
    fw = Framework([FixedScore("A", {"x": 10, "y": 40}, double=True), FixedScore("B", {"x": 50, "y": 0})],
                   weights={"A": 1, "B": 2})
    result = fw.schedule(make_pod("p"), Snapshot([make_node("x"), make_node("y")]))
    assert [(s.plugin, s.raw, s.normalized, s.weighted) for s in result.nodes["x"].scores] == [
        ("A", 10, 20, 20), ("B", 50, 50, 100)]
    assert (result.nodes["x"].total_score, result.nodes["y"].total_score) == (120, 80)
    assert result.suggested_host == "x"


def test_out_of_range_normalized_score_is_an_error() -> None:
    fw = Framework([FixedScore("A", {"x": 80, "y": 0}, double=True)])
    result = fw.schedule(make_pod("p"), Snapshot([make_node("x"), make_node("y")]))
    assert not result.scheduled
    assert result.message() == ('plugin "A" returns an invalid score 160, it should in the range of [0, 100] '
                                "after normalizing")


def test_ties_are_broken_by_the_injected_rng() -> None:
    nodes = [make_node(n) for n in ("a", "b", "c", "d")]
    picks = {default_framework(rng=random.Random(seed)).schedule(make_pod("p"), Snapshot(nodes)).suggested_host
             for seed in range(40)}
    assert picks == {"a", "b", "c", "d"}
    assert default_framework(rng=FirstChoice()).schedule(make_pod("p"), Snapshot(nodes)).suggested_host == "a"


def test_single_feasible_node_is_chosen_without_scoring_unless_explaining() -> None:
    nodes = [make_node("ok"), make_node("tainted", taints=[taint("dedicated", "gpu")])]
    result = default_framework().schedule(make_pod("p"), Snapshot(nodes))
    assert result.suggested_host == "ok" and result.nodes["ok"].scores == []
    explained = default_framework().schedule(make_pod("p"), Snapshot(nodes), explain=True)
    assert explained.suggested_host == "ok" and explained.nodes["ok"].total_score is not None


def test_filters_stop_at_first_failure_but_explain_runs_them_all() -> None:
    nodes = [make_node("small", cpu="1", taints=[taint("dedicated", "gpu")]), make_node("big", cpu="8")]
    pod = make_pod("p", cpu="2")
    plain = default_framework().schedule(pod, Snapshot(nodes)).nodes["small"]
    assert [name for name, _ in plain.filters] == ["NodeUnschedulable", "NodeName", "TaintToleration"]
    full = default_framework().schedule(pod, Snapshot(nodes), explain=True).nodes["small"]
    failed = {name: s.reasons for name, s in full.filters if not s.is_success()}
    assert failed == {"TaintToleration": ("node(s) had untolerated taint {dedicated: gpu}",),
                      "NodeResourcesFit": ("Insufficient cpu",)}
    assert full.status is not None and full.status.plugin == "TaintToleration"


def test_pre_filter_skips_are_recorded_and_their_filters_not_run() -> None:
    result = default_framework().schedule(make_pod("p"), Snapshot([make_node("n")]), explain=True)
    skipped = {name for name, status in result.pre_filter if status.is_skip()}
    assert skipped == {"NodeAffinity", "NodePorts", "VolumeBinding", "PodTopologySpread", "InterPodAffinity"}
    assert [name for name, _ in result.nodes["n"].filters] == ["NodeUnschedulable", "NodeName", "TaintToleration",
                                                               "NodeResourcesFit"]


def test_daemonset_pinning_leaves_other_nodes_unfiltered() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}
    nodes = [make_node("a"), make_node("b", cpu="1"), make_node("c")]
    result = default_framework().schedule(make_pod("ds-x", cpu="2", affinity=affinity), Snapshot(nodes))
    assert result.message() == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.")
    assert result.nodes["a"].filters == [] and result.evaluated_nodes == 1
    assert result.diagnosis.unschedulable_plugins == {"NodeAffinity", "NodeResourcesFit"}


def test_no_nodes_at_all() -> None:
    result = default_framework().schedule(make_pod("p"), Snapshot([]))
    assert result.message() == "no nodes available to schedule pods"
    assert result.error is not None and result.error.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_filter_error_is_a_scheduler_error() -> None:
    result = Framework([Broken()]).schedule(make_pod("p"), Snapshot([make_node("n")]))
    assert result.message() == 'running "Broken" filter plugin: disk on fire'


@pytest.mark.parametrize(("percentage", "nodes", "expected"), [
    pytest.param(0, 50, 50, id="small-cluster-all"),
    pytest.param(0, 500, 230, id="adaptive-46-percent"),
    pytest.param(0, 5000, 500, id="adaptive-10-percent"),
    pytest.param(0, 10000, 500, id="adaptive-floor-5-percent"),
    pytest.param(0, 150, 100, id="at-least-100"),
    pytest.param(30, 1000, 300, id="configured"),
])
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_search_stops_after_enough_feasible_nodes_and_resumes_round_robin() -> None:
    nodes = [make_node(f"n{i:03}") for i in range(150)]
    fw = Framework([NodeResourcesFit(), TaintToleration()], rng=FirstChoice())
    first = fw.schedule(make_pod("p"), Snapshot(nodes))
    assert first.evaluated_nodes == 100 and fw.next_start_node_index == 100
    assert sum(1 for n in first.nodes.values() if n.status is not None) == 100
    second = fw.schedule(make_pod("q"), Snapshot(nodes))
    assert "n100" in second.nodes and second.suggested_host == "n100"
    assert fw.next_start_node_index == 50


def test_snapshot_assume_makes_the_next_pod_see_the_first() -> None:
    snapshot = Snapshot([make_node("n", cpu="1")])
    fw = default_framework()
    first = fw.schedule(make_pod("a", cpu="600m"), snapshot)
    assert first.suggested_host == "n"
    snapshot.add_pod(make_pod("a", cpu="600m", node_name="n"), "n")
    assert fw.schedule(make_pod("b", cpu="600m"), snapshot).message().startswith(
        "0/1 nodes are available: 1 Insufficient cpu.")
    snapshot.remove_pod("default/a", "n")
    assert fw.schedule(make_pod("b", cpu="600m"), snapshot).suggested_host == "n"


def test_status_helpers() -> None:
    assert SUCCESS.is_success() and not SUCCESS.is_rejected()
    status = Status.unschedulable("a", "b").with_plugin("P")
    assert status.is_rejected() and status.message() == "a, b" and status.plugin == "P"
