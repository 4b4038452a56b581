"""NetworkPolicy rulesets in a real kernel: rendered tables applied with nft in a
private namespace (see conftest), checked with real TCP and UDP traffic between pod
namespaces on one bridge and across two."""

from __future__ import annotations

from typing import Any

import pytest

from cni.netpol.model import PolicyModel
from cni.netpol.nft import cleanup, render, table_name
from tests.cni.netpol.conftest import PodNet

PREFIX = "tn_netpol"


def pod(name: str, ip: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip}}


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


@pytest.fixture
def net(podnet: PodNet) -> PodNet:
    podnet.add_pod("a", 0, 2)  # node n0
    podnet.add_pod("b", 0, 3)  # node n0, same bridge as a
    podnet.add_pod("c", 1, 2)  # node n1, across the host
    return podnet


def enforce(net: PodNet, *policies: dict[str, Any]) -> None:
    """Apply both nodes' tables for these policies, as each node's agent would."""
    pods = [pod("a", net.ips["a"], "n0", {"app": "a"}), pod("b", net.ips["b"], "n0", {"app": "b"}),
            pod("c", net.ips["c"], "n1", {"app": "c"})]
    model, errors = PolicyModel.from_objects(policies, pods, [])
    assert not errors
    for node in ("n0", "n1"):
        net.nft.apply(render(model, node, table=table_name(node, PREFIX)))


def only(app: str) -> dict[str, Any]:
    return {"matchLabels": {"app": app}}


def test_without_policies_everyone_reaches_everyone(net: PodNet):
    enforce(net)
    assert net.connect("a", "b") and net.connect("a", "c") and net.connect("c", "b")
    assert net.tables() == ["tn_netpol_n0", "tn_netpol_n1"]


def test_default_deny_ingress_then_an_allow_rule(net: PodNet):
    deny = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    enforce(net, deny)
    assert not net.connect("a", "b")  # same bridge
    assert not net.connect("c", "b")  # across nodes
    assert net.host_connect("b")  # the node always may
    enforce(net, deny, policy("allow", {"podSelector": only("b"),
                                         "ingress": [{"from": [{"podSelector": only("a")}], "ports": [{"port": 80}]}]}))
    assert net.connect("a", "b", 80)
    assert not net.connect("a", "b", 8080)
    assert not net.connect("c", "b", 80)


def test_egress_deny_blocks_new_connections_but_not_replies(net: PodNet):
    enforce(net, policy("deny-a", {"podSelector": only("a"), "policyTypes": ["Egress"]}))
    assert not net.connect("a", "b") and not net.connect("a", "c")
    assert net.connect("b", "a") and net.connect("c", "a")  # a's answers are replies


def test_ip_block_across_nodes(net: PodNet):
    enforce(net, policy("from-n1", {"podSelector": only("b"),
                                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.201.0/24"}}]}]}))
    assert net.connect("c", "b") and not net.connect("a", "b")
    enforce(net, policy("from-n1", {"podSelector": only("b"), "ingress": [{"from": [
        {"ipBlock": {"cidr": "10.244.201.0/24", "except": [f"{net.ips['c']}/32"]}}]}]}))
    assert not net.connect("c", "b")


def test_a_connection_across_nodes_needs_both_nodes_tables(net: PodNet):
    a_to_c = policy("a-to-c", {"podSelector": only("a"), "policyTypes": ["Egress"],
                               "egress": [{"to": [{"podSelector": only("c")}], "ports": [{"port": "http"}]}]})
    c_closed = policy("c-closed", {"podSelector": only("c")})
    enforce(net, a_to_c, c_closed)
    assert not net.connect("a", "c")  # n0 lets it out, n1 does not let it in
    enforce(net, a_to_c, policy("c-open", {"podSelector": only("c"), "ingress": [{"from": [{"podSelector": only("a")}]}]}))
    assert net.connect("a", "c", 80)
    assert not net.connect("a", "c", 8080)  # a's egress names port http (80) only


def test_udp_ports(net: PodNet):
    enforce(net, policy("dns-only", {"podSelector": only("b"), "ingress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}))
    assert net.connect("a", "b", 53, "udp")
    assert not net.connect("a", "b", 80)


def test_tables_are_replaced_and_cleaned_up(net: PodNet):
    enforce(net, policy("deny", {"podSelector": {}}))
    assert not net.connect("a", "b")
    enforce(net)  # replaced in one transaction: the deny is gone
    assert net.connect("a", "b")
    assert sorted(cleanup(PREFIX, nft=net.nft)) == ["tn_netpol_n0", "tn_netpol_n1"]
    assert net.tables() == []
    assert cleanup(PREFIX, nft=net.nft) == []
