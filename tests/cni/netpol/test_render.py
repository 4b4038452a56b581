"""The text of a node's NetworkPolicy table (cni.netpol.nft): what goes in it, names nft
accepts, and output that depends on the cluster, not on the order objects came in."""

from __future__ import annotations

import pytest

from cni.netpol.model import PolicyModel
from cni.netpol.nft import Nftables, local_rules, render, render_table, table_name
from tests.cni.netpol.conftest import PodNet
from tests.cni.netpol.test_model import DB, DOCS_EXAMPLE, EVERYONE, namespaces, pod, policy


def build(*policies, pods=EVERYONE) -> PolicyModel:
    model, errors = PolicyModel.from_objects(policies, pods, namespaces())
    assert not errors
    return model


def test_table_names_are_the_prefix_and_the_sanitized_node():
    assert table_name("mkp-m02") == "mkp_netpol_mkp_m02"
    assert table_name("node.example.com", "tn_x") == "tn_x_node_example_com"
    with pytest.raises(ValueError):
        table_name("")


def test_only_this_nodes_isolated_pods_get_chains():
    text = render_table(build(policy({"podSelector": {}})), "n1", "t")
    assert "chain ingress_default_db {" in text and "chain ingress_default_frontend {" in text
    assert "myproject" not in text.split("chain forward")[1]  # only default's pods are isolated
    assert render_table(build(policy({"podSelector": {}})), "elsewhere", "t").count("chain ") == 1


def test_an_unisolated_node_lets_everything_through():
    text = render_table(build(), "n1", "t")
    assert "set isolated_v4 { type ipv4_addr; }" in text
    assert "vmap" not in text and "chain forward {" in text


def test_the_documentation_example_as_rules():
    text = render_table(build(policy(DOCS_EXAMPLE)), "n1", "t")
    ingress = text.split("chain ingress_default_db {")[1].split("}")[0]
    assert "ip saddr @ingress_default_db_0_v4 meta l4proto tcp th dport 6379 return" in ingress
    assert ingress.strip().endswith('counter drop comment "not allowed by any NetworkPolicy"')
    peers = text.split("set ingress_default_db_0_v4 {")[1].split("}")[0]
    assert "172.17.0.0/24" in peers and "172.17.1." not in peers  # the except is cut out
    assert "10.244.1.11" in peers and "10.244.1.12" not in peers  # frontend yes, stranger no
    assert "ip daddr vmap { 10.244.1.10 : jump ingress_default_db }" in text
    assert "ip saddr vmap { 10.244.1.10 : jump egress_default_db }" in text


def test_rules_without_peers_or_ports():
    text = render_table(build(policy({"podSelector": {"matchLabels": {"role": "db"}},
                                      "ingress": [{}, {"ports": [{"protocol": "UDP"}, {"port": 80, "endPort": 90}]}]})),
                        "n1", "t")
    chain = text.split("chain ingress_default_db {")[1].split("}")[0]
    lines = [line.strip() for line in chain.strip().splitlines()]
    assert lines[:3] == ['return comment "default/p ingress[0]"',
                         'meta l4proto udp return comment "default/p ingress[1]"',
                         'meta l4proto tcp th dport 80-90 return comment "default/p ingress[1]"']


def test_long_names_are_cut_and_kept_apart():
    long_a, long_b = "a" * 240 + "x", "a" * 240 + "y"
    pods = [pod("default", long_a, "10.244.1.2"), pod("default", long_b, "10.244.1.3")]
    rules = local_rules(build(policy({"podSelector": {}}), pods=pods), "n1")
    text = render_table(build(policy({"podSelector": {}}), pods=pods), "n1", "t")
    chains = [line.split()[1] for line in text.splitlines() if line.strip().startswith("chain ingress_")]
    assert len(rules) == 2 and len(set(chains)) == 2 and all(len(c) <= 200 for c in chains)


def test_an_address_claimed_twice_is_rendered_once():
    stale = pod("default", "old", "10.244.1.10", {"role": "db"})
    text = render_table(build(policy({"podSelector": {}}), pods=[stale, DB]), "n1", "t")
    assert text.count("10.244.1.10 : jump") == 1



def test_the_ruleset_does_not_depend_on_the_order_objects_arrive_in():
    policies = [policy(DOCS_EXAMPLE, "a"), policy({"podSelector": {}, "ingress": [{"ports": [{"port": 1}]}]}, "b")]
    first, _ = PolicyModel.from_objects(policies, EVERYONE, namespaces())
    second, _ = PolicyModel.from_objects(policies[::-1], EVERYONE[::-1], namespaces()[::-1])
    assert render(first, "n1", table="t") == render(second, "n1", table="t")


def test_nft_accepts_what_is_rendered(podnet: PodNet):
    dual = pod("default", "dual", "10.244.1.60", {"role": "frontend"},
               status={"podIPs": [{"ip": "10.244.1.60"}, {"ip": "fd00::60"}]})
    egress = policy({"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Egress"],
                     "egress": [{"ports": [{"port": "metrics"}]}, {"to": [{"podSelector": {}}]}]}, "fe")
    model = build(policy(DOCS_EXAMPLE), egress, pods=[*EVERYONE, dual])
    Nftables(netns=podnet.host).apply(render(model, "n1", table="tn_render"))
    listed = Nftables(netns=podnet.host).run("list", "table", "inet", "tn_render")
    assert "chain egress_default_dual" in listed and "fd00::60" in listed
