"""Plugins that score all feasible nodes in one call (`score_nodes`, the cycle's fast
path) give exactly what their per-node `score` gives."""

from __future__ import annotations

import pytest

from controllers.scheduler.framework import CycleState, PreScorePlugin
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import default_plugins
from tests.controllers.scheduler.builders import make_node, make_pod, taint

ZONE = "topology.kubernetes.io/zone"
IMAGES = [{"names": ["docker.io/library/nginx:1.27", "nginx:1.27"], "sizeBytes": 600 * 1024 * 1024}]


def nodes() -> list[dict]:
    return [
        make_node("a", labels={ZONE: "z1"}, images=IMAGES),
        make_node("b", cpu="2", memory="2Gi", labels={ZONE: "z1"}, taints=[taint("soft", effect="PreferNoSchedule")]),
        make_node("c", cpu="8", labels={ZONE: "z2"}),
        make_node("d", cpu="0", memory="0"),   # nothing allocatable: resources are not scored
    ]


def pods() -> list[dict]:
    web = {"app": "web"}
    return [make_pod(f"w{i}", cpu="500m", memory="256Mi", labels=web, node_name=n) for i, n in enumerate("aabc")]


SPREAD = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway",
           "labelSelector": {"matchLabels": {"app": "web"}}},
          {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
           "labelSelector": {"matchLabels": {"app": "web"}}}]


@pytest.mark.parametrize("pod", [
    pytest.param(make_pod("p", cpu="250m", memory="128Mi", labels={"app": "web"}), id="requests"),
    pytest.param(make_pod("p", labels={"app": "web"}), id="best-effort-defaults"),
    pytest.param(make_pod("p", cpu="1", labels={"app": "web"}, topologySpreadConstraints=SPREAD), id="spread"),
    pytest.param(make_pod("p", tolerations=[{"key": "soft", "operator": "Exists"}]), id="tolerates-soft-taint"),
])
def test_score_nodes_matches_score(pod: dict) -> None:
    snapshot = Snapshot(nodes(), pods())
    infos = list(snapshot.node_infos)
    batched = [p for p in default_plugins() if hasattr(p, "score_nodes")]
    assert {p.name for p in batched} >= {"TaintToleration", "NodeResourcesFit", "NodeResourcesBalancedAllocation",
                                          "PodTopologySpread", "ImageLocality"}
    for plugin in batched:
        state = CycleState(snapshot)
        if isinstance(plugin, PreScorePlugin) and plugin.pre_score(state, pod, infos).is_skip():
            continue
        one_by_one = [plugin.score(state, pod, info) for info in infos]  # type: ignore[attr-defined]
        assert plugin.score_nodes(state, pod, infos) == one_by_one, plugin.name  # type: ignore[attr-defined]
