"""Score plugins: Kubernetes' formulas, raw and normalized, computed by hand below."""

from __future__ import annotations

import pytest

from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import (
    ImageLocality,
    InterPodAffinity,
    NodeAffinity,
    NodeResourcesBalancedAllocation,
    NodeResourcesFit,
    PodTopologySpread,
    TaintToleration,
)
from controllers.scheduler.plugins.helper import default_normalize_score
from tests.controllers.scheduler.builders import container, make_node, make_pod, run_score, taint

ZONE = "topology.kubernetes.io/zone"
MB = 1024 * 1024


@pytest.mark.parametrize(("pod", "existing", "expected"), [
    # 100m/4000m -> 97; 200Mi/8Gi -> 97 (integer division); the defaults make best-effort pods count.
    pytest.param(make_pod("p"), [], {"a": 97, "b": 97}, id="best-effort-counts-as-100m-200Mi"),
    # a: cpu (1000+1000)/4000 -> 50, mem 4Gi/8Gi -> 50; b: 1000/4000 -> 75, 2Gi/8Gi -> 75.
    pytest.param(make_pod("p", cpu="1", memory="2Gi"), [make_pod("e", cpu="1", memory="2Gi", node_name="a")],
                 {"a": 50, "b": 75}, id="least-allocated-prefers-emptier"),
    # cpu over capacity scores 0 for that resource: (0 + 75) / 2.
    pytest.param(make_pod("p", cpu="5", memory="2Gi"), [], {"a": 37, "b": 37}, id="over-capacity-resource-scores-zero"),
])
def test_least_allocated(pod: dict, existing: list, expected: dict) -> None:
    snapshot = Snapshot([make_node("a"), make_node("b")], existing)
    raw, normalized = run_score(NodeResourcesFit(), pod, snapshot)
    assert raw == normalized == expected


def test_least_allocated_resource_weights() -> None:
    snapshot = Snapshot([make_node("a")])
    # cpu 1000/4000 -> 75 (weight 3), memory 6Gi/8Gi -> 25 (weight 1): (225 + 25) / 4 = 62.
    raw, _ = run_score(NodeResourcesFit(resources=(("cpu", 3), ("memory", 1))),
                       make_pod("p", cpu="1", memory="6Gi"), snapshot)
    assert raw == {"a": 62}


@pytest.mark.parametrize(("pod", "expected"), [
    pytest.param(make_pod("p", cpu="1", memory="3Gi"), 100, id="fractions-equal"),   # 2/4 and 4/8
    pytest.param(make_pod("p", cpu="2", memory="1Gi"), 75, id="fractions-apart"),    # 3/4, 2/8: std 0.25
    pytest.param(make_pod("p", cpu="9", memory="1Gi"), 62, id="fraction-capped-at-one"),  # 1, 2/8: std .375
    pytest.param(make_pod("p"), 93, id="best-effort-uses-real-requests"),           # 1/4, 1/8: std .0625
])
def test_balanced_allocation(pod: dict, expected: int) -> None:
    existing = [make_pod("e", cpu="1", memory="1Gi", node_name="a")]
    snapshot = Snapshot([make_node("a", cpu="4", memory="8Gi")], existing)
    raw, _ = run_score(NodeResourcesBalancedAllocation(), pod, snapshot)
    assert raw == {"a": expected}


def test_taint_toleration_score_prefers_fewer_untolerated_soft_taints() -> None:
    soft = [taint("x", effect="PreferNoSchedule"), taint("y", effect="PreferNoSchedule")]
    snapshot = Snapshot([make_node("a"), make_node("b", taints=soft[:1]), make_node("c", taints=soft)])
    assert run_score(TaintToleration(), make_pod("p"), snapshot) == ({"a": 0, "b": 1, "c": 2},
                                                                     {"a": 100, "b": 50, "c": 0})
    tolerant = make_pod("p", tolerations=[{"key": "x", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert run_score(TaintToleration(), tolerant, snapshot)[1] == {"a": 100, "b": 100, "c": 0}


def test_node_affinity_score_sums_matching_preferred_weights() -> None:
    preferred = [{"weight": 2, "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z1"]}]}},
                 {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
    pod = make_pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}})
    snapshot = Snapshot([make_node("a", labels={ZONE: "z1", "disk": "ssd"}), make_node("b", labels={ZONE: "z1"}),
                         make_node("c")])
    assert run_score(NodeAffinity(), pod, snapshot) == ({"a": 7, "b": 2, "c": 0}, {"a": 100, "b": 28, "c": 0})
    assert run_score(NodeAffinity(), make_pod("q"), snapshot) == ({}, {})


def _weighted(weight: int, key: str, labels: dict) -> dict:
    return {"weight": weight, "podAffinityTerm": {"labelSelector": {"matchLabels": labels}, "topologyKey": key}}


def test_inter_pod_affinity_score() -> None:
    nodes = [make_node("a", labels={ZONE: "z1"}), make_node("b", labels={ZONE: "z1"}), make_node("c", labels={ZONE: "z2"})]
    existing = [
        make_pod("db", labels={"app": "db"}, node_name="a"),
        make_pod("web-0", labels={"app": "web"}, node_name="b"),
        make_pod("cache", node_name="c", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": ZONE}]}}),
    ]
    pod = make_pod("web-1", labels={"app": "web"}, affinity={
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [_weighted(10, ZONE, {"app": "db"})]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            _weighted(5, "kubernetes.io/hostname", {"app": "web"})]}})
    # z1 +10 (db), host b -5 (web-0), z2 +1 (cache's required affinity, hardPodAffinityWeight 1)
    raw, normalized = run_score(InterPodAffinity(), pod, Snapshot(nodes, existing))
    assert raw == {"a": 10, "b": 5, "c": 1}
    assert normalized == {"a": 100, "b": 44, "c": 0}   # 100 * (score - 1) / 9, truncated


def test_inter_pod_affinity_score_skips_without_any_terms() -> None:
    snapshot = Snapshot([make_node("a")], [make_pod("e", node_name="a")])
    assert run_score(InterPodAffinity(), make_pod("p"), snapshot) == ({}, {})


NODES3 = [make_node("a", labels={ZONE: "z1"}), make_node("b", labels={ZONE: "z1"}), make_node("c", labels={ZONE: "z2"})]


def test_topology_spread_score_schedule_anyway() -> None:
    constraint = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway",
                  "labelSelector": {"matchLabels": {"app": "web"}}}
    existing = [make_pod(f"w{i}", labels={"app": "web"}, node_name="a") for i in range(2)]
    pod = make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[constraint])
    # weight ln(2 zones + 2); z1 holds 2 -> 2 * 1.386 = 2.77 -> 3; z2 -> 0; reversed min-max.
    assert run_score(PodTopologySpread(), pod, Snapshot(NODES3, existing)) == (
        {"a": 3, "b": 3, "c": 0}, {"a": 0, "b": 0, "c": 100})


def test_topology_spread_default_constraints_spread_a_replicaset() -> None:
    rs = {"metadata": {"name": "web-1", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "web"}}}}
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "controller": True}]

    def replica(name: str, node: str | None = None) -> dict:
        pod = make_pod(name, labels={"app": "web"}, node_name=node)
        pod["metadata"]["ownerReferences"] = owner
        return pod

    snapshot = Snapshot(NODES3, [replica("w0", "a")], replica_sets=[rs])
    # hostname: ln(3 + 2) per pod + (3 - 1); zone: ln(2 + 2) per pod + (5 - 1)
    # a: 1.609 + 2 + 1.386 + 4 = 9.0 -> 9; b: 2 + 5.386 -> 7; c: 2 + 4 -> 6
    raw, normalized = run_score(PodTopologySpread(), replica("w1"), snapshot)
    assert raw == {"a": 9, "b": 7, "c": 6}
    assert normalized == {"a": 66, "b": 88, "c": 100}
    assert run_score(PodTopologySpread(), make_pod("lonely", labels={"app": "web"}), snapshot) == ({}, {})


def test_topology_spread_default_selector_from_services() -> None:
    service = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}
    existing = [make_pod("w0", labels={"app": "web"}, node_name="a")]
    raw, _ = run_score(PodTopologySpread(), make_pod("p", labels={"app": "web"}),
                       Snapshot(NODES3, existing, services=[service]))
    assert raw == {"a": 9, "b": 7, "c": 6}


def test_image_locality_prefers_nodes_with_the_image() -> None:
    images = [{"names": ["nginx:1.27"], "sizeBytes": 500 * MB}]
    snapshot = Snapshot([make_node("a", images=images), make_node("b")])
    pod = make_pod("p", containers=[container(image="nginx:1.27")])
    # 500MB spread over 1 of 2 nodes = 250MB; 100 * (250 - 23) / (1000 - 23) = 23
    assert run_score(ImageLocality(), pod, snapshot)[0] == {"a": 23, "b": 0}


@pytest.mark.parametrize(("scores", "reverse", "expected"), [
    pytest.param({"a": 0, "b": 5, "c": 10}, False, {"a": 0, "b": 50, "c": 100}, id="scale"),
    pytest.param({"a": 0, "b": 5, "c": 10}, True, {"a": 100, "b": 50, "c": 0}, id="reverse"),
    pytest.param({"a": 0, "b": 0}, True, {"a": 100, "b": 100}, id="all-zero-reversed"),
    pytest.param({"a": 0, "b": 0}, False, {"a": 0, "b": 0}, id="all-zero"),
    pytest.param({"a": 1, "b": 3}, False, {"a": 33, "b": 100}, id="integer-division"),
])
def test_default_normalize_score(scores: dict, reverse: bool, expected: dict) -> None:
    default_normalize_score(scores, reverse=reverse)
    assert scores == expected
