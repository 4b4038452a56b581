"""`mkp explain schedule` text: every node's verdict and every score, best node first."""

from __future__ import annotations

import random

from controllers.scheduler.explain import format_explanation
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import default_framework
from tests.controllers.scheduler.builders import make_node, make_pod, taint


def test_explanation_lists_rejections_and_scores() -> None:
    nodes = [make_node("small", cpu="1", taints=[taint("dedicated", "gpu")]), make_node("big", cpu="8"),
             make_node("busy", cpu="8")]
    existing = [make_pod("e", cpu="6", node_name="busy")]
    result = default_framework(rng=random.Random(0)).schedule(make_pod("web", cpu="2"), Snapshot(nodes, existing),
                                                              explain=True)
    text = format_explanation(result)
    lines = text.splitlines()
    assert lines[0] == "Pod default/web: scheduled to big (3 of 3 nodes filtered, 2 feasible)"
    assert lines[1] == "  PreFilter: NodeAffinity Skip; NodePorts Skip; VolumeBinding Skip; PodTopologySpread Skip; " \
                       "InterPodAffinity Skip"
    assert lines[2].startswith("  big: feasible, total score ")
    assert "      TaintToleration: raw 0, normalized 100 x weight 3 = 300" in lines
    assert "  small: rejected by TaintToleration (UnschedulableAndUnresolvable: node(s) had untolerated taint " \
           "{dedicated: gpu})" in lines
    assert "      also NodeResourcesFit: Unschedulable: Insufficient cpu (not counted)" in lines


def test_explanation_of_a_failure_carries_the_event_message() -> None:
    result = default_framework().schedule(make_pod("web", cpu="9"), Snapshot([make_node("n")]))
    lines = format_explanation(result).splitlines()
    assert lines[0] == "Pod default/web: not scheduled (1 of 1 nodes filtered, 0 feasible)"
    assert lines[1] == ("  0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
                        "1 No preemption victims found for incoming pod.")
