"""InterPodAffinity and PodTopologySpread filters: placement relative to other pods."""

from __future__ import annotations

import pytest

from controllers.scheduler.framework import SUCCESS, Status
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import InterPodAffinity, PodTopologySpread
from tests.controllers.scheduler.builders import make_node, make_pod, run_filter

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
NODES = [make_node("a", labels={ZONE: "z1"}), make_node("b", labels={ZONE: "z1"}),
         make_node("c", labels={ZONE: "z2"}), make_node("bare", labels={})]
AFFINITY = Status.unresolvable("node(s) didn't match pod affinity rules")
ANTI = Status.unschedulable("node(s) didn't match pod anti-affinity rules")
EXISTING_ANTI = Status.unschedulable("node(s) didn't satisfy existing pods anti-affinity rules")


def term(key: str, labels: dict[str, str], **extra: object) -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def affinity(*terms: dict, anti: bool = False) -> dict:
    kind = "podAntiAffinity" if anti else "podAffinity"
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def statuses(plugin: object, pod: dict, pods: list[dict], nodes: list[dict] = NODES, **objects: list) -> dict:
    snapshot = Snapshot(nodes, pods, **objects)
    out = {}
    for node in nodes:
        status = run_filter(plugin, pod, snapshot, node["metadata"]["name"])
        out[node["metadata"]["name"]] = (status.code, status.reasons)
    return out


def expect(**by_node: Status) -> dict:
    return {name: (s.code, s.reasons) for name, s in by_node.items()}


DB_ON_A = [make_pod("db", labels={"app": "db"}, node_name="a")]
WEB_ON_A = [make_pod("web-0", labels={"app": "web"}, node_name="a")]


@pytest.mark.parametrize(("pod", "existing", "expected"), [
    pytest.param(make_pod("p", affinity=affinity(term(ZONE, {"app": "db"}))), DB_ON_A,
                 expect(a=SUCCESS, b=SUCCESS, c=AFFINITY, bare=AFFINITY), id="affinity-same-zone"),
    pytest.param(make_pod("p", affinity=affinity(term(HOST, {"app": "db"}))), DB_ON_A,
                 expect(a=SUCCESS, b=AFFINITY, c=AFFINITY, bare=AFFINITY), id="affinity-same-host"),
    pytest.param(make_pod("p", labels={"app": "web"}, affinity=affinity(term(ZONE, {"app": "web"}))), [],
                 expect(a=SUCCESS, b=SUCCESS, c=SUCCESS, bare=AFFINITY), id="first-of-self-affine-group"),
    pytest.param(make_pod("p", affinity=affinity(term(ZONE, {"app": "db"}))), [],
                 expect(a=AFFINITY, b=AFFINITY, c=AFFINITY, bare=AFFINITY), id="affinity-to-nothing"),
    pytest.param(make_pod("p", labels={"app": "web"}, affinity=affinity(term(HOST, {"app": "web"}), anti=True)),
                 WEB_ON_A, expect(a=ANTI, b=SUCCESS, c=SUCCESS, bare=SUCCESS), id="anti-affinity-per-host"),
    pytest.param(make_pod("p", labels={"app": "web"}, affinity=affinity(term(ZONE, {"app": "web"}), anti=True)),
                 WEB_ON_A, expect(a=ANTI, b=ANTI, c=SUCCESS, bare=SUCCESS), id="anti-affinity-per-zone"),
    pytest.param(make_pod("p", labels={"app": "web"}),
                 [make_pod("guard", node_name="a", affinity=affinity(term(ZONE, {"app": "web"}), anti=True))],
                 expect(a=EXISTING_ANTI, b=EXISTING_ANTI, c=SUCCESS, bare=SUCCESS), id="existing-pods-anti-affinity"),
    pytest.param(make_pod("p", affinity=affinity(term(HOST, {"app": "db"}))),
                 [make_pod("db", namespace="other", labels={"app": "db"}, node_name="a")],
                 expect(a=AFFINITY, b=AFFINITY, c=AFFINITY, bare=AFFINITY), id="other-namespace-ignored"),
    pytest.param(make_pod("p", affinity=affinity(term(HOST, {"app": "db"}, namespaces=["other"]))),
                 [make_pod("db", namespace="other", labels={"app": "db"}, node_name="a")],
                 expect(a=SUCCESS, b=AFFINITY, c=AFFINITY, bare=AFFINITY), id="namespaces-list"),
    pytest.param(make_pod("p", affinity=affinity(term(HOST, {"app": "db"}, namespaceSelector={}))),
                 [make_pod("db", namespace="other", labels={"app": "db"}, node_name="a")],
                 expect(a=SUCCESS, b=AFFINITY, c=AFFINITY, bare=AFFINITY), id="empty-namespace-selector-all"),
])
def test_inter_pod_affinity(pod: dict, existing: list, expected: dict) -> None:
    assert statuses(InterPodAffinity(), pod, existing) == expected


def test_namespace_selector_uses_namespace_labels() -> None:
    pod = make_pod("p", affinity=affinity(term(HOST, {"app": "db"}, namespaceSelector={"matchLabels": {"team": "x"}})))
    existing = [make_pod("db", namespace="other", labels={"app": "db"}, node_name="a")]
    namespaces = [{"metadata": {"name": "other", "labels": {"team": "x"}}}]
    got = statuses(InterPodAffinity(), pod, existing, namespaces=namespaces)
    assert got["a"] == (SUCCESS.code, ())


SPREAD = Status.unschedulable("node(s) didn't match pod topology spread constraints")
MISSING_LABEL = Status.unresolvable("node(s) didn't match pod topology spread constraints (missing required label)")


def spread(key: str = ZONE, max_skew: int = 1, **extra: object) -> dict:
    return {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}, **extra}


def web(name: str, node: str, **extra: object) -> dict:
    return make_pod(name, labels={"app": "web"}, node_name=node, **extra)


SPREAD_NODES = NODES[:3]


def terminating(pod: dict) -> dict:
    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return pod


@pytest.mark.parametrize(("pod", "existing", "nodes", "expected"), [
    pytest.param(make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread()]),
                 [web("w0", "a")], SPREAD_NODES, expect(a=SPREAD, b=SPREAD, c=SUCCESS), id="zone-skew"),
    pytest.param(make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread()]),
                 [web("w0", "a"), web("w1", "c")], SPREAD_NODES, expect(a=SUCCESS, b=SUCCESS, c=SUCCESS),
                 id="balanced"),
    pytest.param(make_pod("p", labels={"app": "other"}, topologySpreadConstraints=[spread()]),
                 [web("w0", "a")], SPREAD_NODES, expect(a=SUCCESS, b=SUCCESS, c=SUCCESS),
                 id="pod-not-matching-own-selector"),
    pytest.param(make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread()]),
                 [web("w0", "a")], NODES, expect(a=SPREAD, b=SPREAD, c=SUCCESS, bare=MISSING_LABEL),
                 id="node-without-topology-label"),
    pytest.param(make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread(minDomains=3)]),
                 [web("w0", "a"), web("w1", "c")], SPREAD_NODES, expect(a=SPREAD, b=SPREAD, c=SPREAD),
                 id="min-domains-treats-global-minimum-as-zero"),
    pytest.param(make_pod("p", labels={"app": "web"}, topologySpreadConstraints=[spread()]),
                 [terminating(web("w0", "a"))],
                 SPREAD_NODES, expect(a=SUCCESS, b=SUCCESS, c=SUCCESS), id="terminating-pods-not-counted"),
    pytest.param(make_pod("p", labels={"app": "web"}, nodeSelector={ZONE: "z1"}, topologySpreadConstraints=[spread()]),
                 [web("w0", "a")], SPREAD_NODES, expect(a=SUCCESS, b=SUCCESS, c=SUCCESS),
                 id="node-affinity-policy-honor-drops-other-zones"),
    pytest.param(make_pod("p", labels={"app": "web"}, nodeSelector={ZONE: "z1"},
                          topologySpreadConstraints=[spread(nodeAffinityPolicy="Ignore")]),
                 [web("w0", "a")], SPREAD_NODES, expect(a=SPREAD, b=SPREAD, c=SUCCESS), id="node-affinity-policy-ignore"),
    pytest.param(make_pod("p", labels={"app": "web", "rev": "2"},
                          topologySpreadConstraints=[spread(matchLabelKeys=["rev"])]),
                 [web("w0", "a")], SPREAD_NODES, expect(a=SUCCESS, b=SUCCESS, c=SUCCESS),
                 id="match-label-keys-narrow-the-selector"),
    pytest.param(make_pod("p", labels={"app": "web"}), [web("w0", "a")], SPREAD_NODES,
                 expect(a=SUCCESS, b=SUCCESS, c=SUCCESS), id="no-constraints-skips"),
])
def test_pod_topology_spread_filter(pod: dict, existing: list, nodes: list, expected: dict) -> None:
    assert statuses(PodTopologySpread(), pod, existing, nodes) == expected
