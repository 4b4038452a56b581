"""Filters that look at one node: each rejects with Kubernetes' exact reason and code."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.scheduler.framework import SUCCESS, Code, Status
from controllers.scheduler.nodeinfo import Snapshot
from controllers.scheduler.plugins import (
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeResourcesFit,
    NodeUnschedulable,
    TaintToleration,
)
from tests.controllers.scheduler.builders import container, make_node, make_pod, run_filter, taint

UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def check(plugin: Any, pod: dict, nodes: list[dict], expected: Status, pods: list[dict] = ()) -> None:
    snapshot = Snapshot(nodes, pods)
    status = run_filter(plugin, pod, snapshot, nodes[0]["metadata"]["name"])
    assert (status.code, status.reasons) == (expected.code, expected.reasons)


@pytest.mark.parametrize(("node", "tolerations", "expected"), [
    pytest.param(make_node("n"), [], SUCCESS, id="schedulable"),
    pytest.param(make_node("n", unschedulable=True), [],
                 Status.unresolvable("node(s) were unschedulable"), id="cordoned"),
    pytest.param(make_node("n", unschedulable=True),
                 [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
                 SUCCESS, id="tolerates-unschedulable-taint"),
])
def test_node_unschedulable(node: dict, tolerations: list, expected: Status) -> None:
    check(NodeUnschedulable(), make_pod("p", tolerations=tolerations), [node], expected)


@pytest.mark.parametrize(("node_name", "expected"), [
    pytest.param(None, SUCCESS, id="no-node-name"),
    pytest.param("n", SUCCESS, id="same-node"),
    pytest.param("other", Status.unresolvable("node(s) didn't match the requested node name"), id="other-node"),
])
def test_node_name(node_name: str | None, expected: Status) -> None:
    pod = make_pod("p")
    if node_name:
        pod["spec"]["nodeName"] = node_name
    check(NodeName(), pod, [make_node("n")], expected)


@pytest.mark.parametrize(("pod", "existing", "node", "expected"), [
    pytest.param(make_pod("p", cpu="1", memory="1Gi"), [], make_node("n", cpu="2", memory="2Gi"), SUCCESS,
                 id="fits"),
    pytest.param(make_pod("p", cpu="1500m"), [make_pod("e", cpu="1", node_name="n")], make_node("n", cpu="2"),
                 Status.unschedulable("Insufficient cpu"), id="cpu-used-by-others"),
    pytest.param(make_pod("p", cpu="3", memory="9Gi"), [], make_node("n"),
                 Status.unschedulable("Insufficient memory"), id="memory-only"),
    pytest.param(make_pod("p", cpu="5", memory="9Gi"), [], make_node("n"),
                 Status.unschedulable("Insufficient cpu", "Insufficient memory"), id="every-reason-kept"),
    pytest.param(make_pod("p"), [make_pod("e", node_name="n")], make_node("n", pods="1"),
                 Status.unschedulable("Too many pods"), id="pods-count-against-allocatable-pods"),
    pytest.param(make_pod("p", containers=[container(resources={"requests": {"example.com/gpu": "1"}})]), [],
                 make_node("n"), Status.unschedulable("Insufficient example.com/gpu"), id="extended-resource"),
    pytest.param(make_pod("p", containers=[container(resources={"requests": {"example.com/gpu": "1"}})]), [],
                 make_node("n", extra={"example.com/gpu": "1"}), SUCCESS, id="extended-resource-available"),
    pytest.param(make_pod("p", cpu="1", containers=None, initContainers=[container("i", cpu="3")]), [],
                 make_node("n", cpu="2"), Status.unschedulable("Insufficient cpu"), id="init-container-floor"),
    pytest.param(make_pod("p"), [make_pod("e", cpu="4", node_name="n")], make_node("n"), SUCCESS,
                 id="best-effort-pod-needs-no-room"),
])
def test_node_resources_fit(pod: dict, existing: list, node: dict, expected: Status) -> None:
    check(NodeResourcesFit(), pod, [node], expected, existing)


def test_finished_pods_free_their_resources() -> None:
    done = make_pod("done", cpu="2", node_name="n")
    done["status"]["phase"] = "Succeeded"
    check(NodeResourcesFit(), make_pod("p", cpu="2"), [make_node("n", cpu="2")], SUCCESS, [done])


def _required(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, SUCCESS, id="no-constraints-skips"),
    pytest.param({"nodeSelector": {"disk": "ssd"}}, SUCCESS, id="node-selector-matches"),
    pytest.param({"nodeSelector": {"disk": "hdd"}}, Status.unresolvable(AFFINITY_REASON), id="node-selector-mismatch"),
    pytest.param({"affinity": _required({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]})},
                 Status.unresolvable(AFFINITY_REASON), id="required-affinity-mismatch"),
    pytest.param({"affinity": _required({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]})},
                 SUCCESS, id="required-affinity-notin"),
    pytest.param({"affinity": _required({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]})},
                 SUCCESS, id="daemonset-style-pinning"),
])
def test_node_affinity(spec: dict, expected: Status) -> None:
    check(NodeAffinity(), make_pod("p", **spec), [make_node("n", labels={"disk": "ssd", "zone": "a"})], expected)


def test_node_affinity_prefilter_names_nodes_and_detects_conflicts() -> None:
    from controllers.scheduler.framework import CycleState
    snapshot = Snapshot([make_node("a"), make_node("b")])
    named = make_pod("p", affinity=_required(
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}))
    result, status = NodeAffinity().pre_filter(CycleState(snapshot), named)
    assert status.is_success() and result is not None and result.node_names == {"a", "b", "c"}
    conflict = make_pod("p", affinity=_required({"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["a"]},
        {"key": "metadata.name", "operator": "In", "values": ["b"]}]}))
    _, status = NodeAffinity().pre_filter(CycleState(snapshot), conflict)
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("pod affinity terms conflict",))


@pytest.mark.parametrize(("taints", "tolerations", "expected"), [
    pytest.param([], [], SUCCESS, id="no-taints"),
    pytest.param([taint("node-role.kubernetes.io/control-plane")], [],
                 Status.unresolvable("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
                 id="control-plane-empty-value"),
    pytest.param([taint("dedicated", "gpu", "NoExecute")], [],
                 Status.unresolvable("node(s) had untolerated taint {dedicated: gpu}"), id="key-and-value"),
    pytest.param([taint("dedicated", "gpu")], [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                 SUCCESS, id="tolerated"),
    pytest.param([taint("soft", effect="PreferNoSchedule")], [], SUCCESS, id="prefer-no-schedule-is-soft"),
])
def test_taint_toleration(taints: list, tolerations: list, expected: Status) -> None:
    check(TaintToleration(), make_pod("p", tolerations=tolerations), [make_node("n", taints=taints)], expected)


PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"


def _port_pod(name: str, host_port: int, *, host_ip: str = "", protocol: str = "", node_name: str | None = None) -> dict:
    port = {"containerPort": 80, "hostPort": host_port}
    if host_ip:
        port["hostIP"] = host_ip
    if protocol:
        port["protocol"] = protocol
    return make_pod(name, containers=[container(ports=[port])], node_name=node_name)


@pytest.mark.parametrize(("pod", "existing", "expected"), [
    pytest.param(_port_pod("p", 8080), [], SUCCESS, id="free"),
    pytest.param(_port_pod("p", 8080), [_port_pod("e", 8080, node_name="n")], Status.unschedulable(PORTS_REASON),
                 id="same-port"),
    pytest.param(_port_pod("p", 8080, protocol="UDP"), [_port_pod("e", 8080, node_name="n")], SUCCESS,
                 id="other-protocol"),
    pytest.param(_port_pod("p", 8080, host_ip="10.0.0.1"), [_port_pod("e", 8080, host_ip="10.0.0.2", node_name="n")],
                 SUCCESS, id="different-ips"),
    pytest.param(_port_pod("p", 8080, host_ip="10.0.0.1"), [_port_pod("e", 8080, node_name="n")],
                 Status.unschedulable(PORTS_REASON), id="specific-ip-vs-all"),
    pytest.param(_port_pod("p", 8080), [_port_pod("e", 8080, host_ip="10.0.0.2", node_name="n")],
                 Status.unschedulable(PORTS_REASON), id="all-vs-specific-ip"),
    pytest.param(make_pod("p"), [_port_pod("e", 8080, node_name="n")], SUCCESS, id="no-host-ports-skips"),
])
def test_node_ports(pod: dict, existing: list, expected: Status) -> None:
    check(NodePorts(), pod, [make_node("n")], expected, existing)
