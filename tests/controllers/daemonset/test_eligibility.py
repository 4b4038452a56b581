"""NodeShouldRunDaemonPod and the daemon pod's tolerations and node pinning."""

from __future__ import annotations

import pytest

from controllers.daemonset.eligibility import (
    add_daemon_tolerations,
    node_affinity_for,
    node_should_run,
    target_node_name,
)
from tests.controllers.daemonset.fixtures import daemon_pod, daemon_set, node, taint

GPU_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "accelerator", "operator": "In", "values": ["gpu"]}]}]}}}


@pytest.mark.parametrize(("ds_pod_spec", "the_node", "expected"), [
    pytest.param({}, node("n1"), (True, True), id="plain-node"),
    pytest.param({"nodeSelector": {"disk": "ssd"}}, node("n1"), (False, False), id="node-selector-misses"),
    pytest.param({"nodeSelector": {"disk": "ssd"}}, node("n1", labels={"disk": "ssd"}), (True, True),
                 id="node-selector-matches"),
    pytest.param({"affinity": GPU_AFFINITY}, node("n1"), (False, False), id="required-affinity-misses"),
    pytest.param({"affinity": GPU_AFFINITY}, node("n1", labels={"accelerator": "gpu"}), (True, True),
                 id="required-affinity-matches"),
    pytest.param({"nodeName": "n2"}, node("n1"), (False, False), id="template-names-another-node"),
    pytest.param({}, node("n1", taints=[taint("dedicated", "NoSchedule", "db")]), (False, True),
                 id="noschedule-taint-keeps-existing-pod"),
    pytest.param({}, node("n1", taints=[taint("dedicated", "NoExecute", "db")]), (False, False),
                 id="noexecute-taint-evicts"),
    pytest.param({}, node("n1", taints=[taint("dedicated", "PreferNoSchedule")]), (True, True),
                 id="prefer-noschedule-is-ignored"),
    pytest.param({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]},
                 node("n1", taints=[taint("dedicated", "NoExecute", "db")]), (True, True), id="tolerated-noexecute"),
    pytest.param({"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]},
                 node("n1", taints=[taint("dedicated", "NoSchedule", "db"), taint("other", "NoExecute")]),
                 (False, False), id="one-untolerated-noexecute-among-tolerated"),
    pytest.param({}, node("n1", taints=[taint("node.kubernetes.io/unschedulable", "NoSchedule")], unschedulable=True),
                 (True, True), id="default-toleration-unschedulable"),
    pytest.param({}, node("n1", taints=[taint("node.kubernetes.io/not-ready", "NoExecute")]), (True, True),
                 id="default-toleration-not-ready"),
    pytest.param({}, node("n1", taints=[taint("node.kubernetes.io/memory-pressure", "NoSchedule")]), (True, True),
                 id="default-toleration-memory-pressure"),
    pytest.param({}, node("n1", taints=[taint("node.kubernetes.io/network-unavailable", "NoSchedule")]),
                 (False, True), id="network-unavailable-not-tolerated-without-host-network"),
    pytest.param({"hostNetwork": True}, node("n1", taints=[taint("node.kubernetes.io/network-unavailable",
                                                                 "NoSchedule")]),
                 (True, True), id="network-unavailable-tolerated-with-host-network"),
])
def test_node_should_run(ds_pod_spec, the_node, expected) -> None:
    assert node_should_run(the_node, daemon_set(pod_spec=ds_pod_spec)) == expected


def test_default_tolerations_in_kubernetes_order_and_existing_ones_kept() -> None:
    spec = add_daemon_tolerations({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    assert spec["tolerations"] == [
        {"key": "dedicated", "operator": "Exists"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]


def test_matching_toleration_is_replaced_not_duplicated() -> None:
    """A not-ready toleration with tolerationSeconds is the same toleration: it is replaced."""
    own = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    tolerations = add_daemon_tolerations({"tolerations": [own]})["tolerations"]
    not_ready = [t for t in tolerations if t["key"] == "node.kubernetes.io/not-ready"]
    assert not_ready == [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    assert tolerations[0]["key"] == "node.kubernetes.io/not-ready"


def test_host_network_adds_network_unavailable_toleration() -> None:
    tolerations = add_daemon_tolerations({"hostNetwork": True})["tolerations"]
    assert tolerations[-1] == {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                               "effect": "NoSchedule"}


def test_pinning_replaces_required_terms_and_keeps_preferred() -> None:
    preferred = [{"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In",
                                                                      "values": ["a"]}]}}]
    affinity = {"nodeAffinity": {**GPU_AFFINITY["nodeAffinity"],
                                 "preferredDuringSchedulingIgnoredDuringExecution": preferred},
                "podAntiAffinity": {"x": 1}}
    pinned = node_affinity_for(affinity, "n7")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == preferred
    assert pinned["podAntiAffinity"] == {"x": 1}
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == \
        GPU_AFFINITY["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]


def test_target_node_from_binding_or_pinning() -> None:
    assert target_node_name(daemon_pod("p", "n1")) == "n1"
    assert target_node_name(daemon_pod("p", "n2", bound=False)) == "n2"
    unpinned = daemon_pod("p", "n3", bound=False)
    unpinned["spec"]["affinity"] = GPU_AFFINITY
    assert target_node_name(unpinned) is None
