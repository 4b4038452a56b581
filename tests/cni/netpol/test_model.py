"""NetworkPolicy semantics (cni.netpol.model) against the Kubernetes documentation's
examples and the API reference's rules, one behaviour per test."""

from __future__ import annotations

from typing import Any

import pytest

from cni.netpol.model import PolicyModel
from cni.netpol.spec import Policy, PolicyError

NS_LABELS = {
    "default": {"kubernetes.io/metadata.name": "default"},
    "myproject": {"kubernetes.io/metadata.name": "myproject", "project": "myproject"},
    "other": {"kubernetes.io/metadata.name": "other", "team": "ops"},
}


def pod(namespace: str, name: str, ip: str, labels: dict[str, str] | None = None, *,
        ports: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}]}
    spec.update(extra.pop("spec", {}))
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], **extra.pop("status", {})}
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels or {}}, "spec": spec,
            "status": status}


def policy(spec: dict[str, Any], name: str = "p", namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


def namespaces() -> list[dict[str, Any]]:
    return [{"metadata": {"name": n, "labels": labels}} for n, labels in NS_LABELS.items()]


# The cast: a database, a frontend and a stranger in default, pods in two other namespaces.
DB = pod("default", "db", "10.244.1.10", {"role": "db"}, ports=[{"name": "redis", "containerPort": 6379}])
FRONTEND = pod("default", "frontend", "10.244.1.11", {"role": "frontend"})
STRANGER = pod("default", "stranger", "10.244.1.12", {"role": "other"})
MYPROJECT = pod("myproject", "app", "10.244.2.10", {"role": "app"})
MYPROJECT_FRONTEND = pod("myproject", "frontend", "10.244.2.11", {"role": "frontend"})
OPS = pod("other", "tool", "10.244.3.10", {"role": "frontend"},
          ports=[{"name": "metrics", "containerPort": 9100}, {"name": "dns", "containerPort": 5353,
                                                               "protocol": "UDP"}])
EVERYONE = [DB, FRONTEND, STRANGER, MYPROJECT, MYPROJECT_FRONTEND, OPS]
IP = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"] for p in EVERYONE}


def model(*specs: dict[str, Any], pods: list[dict[str, Any]] | None = None,
          hosts: tuple[str, ...] = ("192.168.49.2", "10.244.1.1")) -> PolicyModel:
    built, errors = PolicyModel.from_objects(specs, pods if pods is not None else EVERYONE, namespaces(),
                                             host_addresses=hosts)
    assert not errors
    return built


def ok(m: PolicyModel, src: str, dst: str, port: int = 80, protocol: str = "TCP") -> bool:
    return m.allowed(IP.get(src, src), IP.get(dst, dst), port, protocol)


# -- isolation -----------------------------------------------------------------------------------
def test_no_policy_allows_everything():
    m = model()
    assert ok(m, "default/frontend", "default/db") and ok(m, "default/db", "8.8.8.8", 53, "UDP")


def test_default_deny_ingress_isolates_every_pod_of_the_namespace_only():
    m = model(policy({"podSelector": {}, "policyTypes": ["Ingress"]}))
    assert not ok(m, "default/frontend", "default/db")
    assert not ok(m, "myproject/app", "default/stranger")
    assert ok(m, "default/db", "myproject/app")  # other namespaces are not isolated
    assert ok(m, "default/db", "8.8.8.8")  # egress is not isolated


def test_default_deny_egress_blocks_outgoing_but_not_incoming():
    m = model(policy({"podSelector": {}, "policyTypes": ["Egress"]}))
    assert not ok(m, "default/db", "myproject/app")
    assert not ok(m, "default/db", "8.8.8.8", 53, "UDP")
    assert ok(m, "myproject/app", "default/db")


def test_default_deny_all_with_empty_rule_lists():
    m = model(policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}))
    assert not ok(m, "default/frontend", "default/db")
    assert not ok(m, "myproject/app", "default/db")
    assert not ok(m, "default/db", "myproject/app")


def test_allow_all_ingress_rule_undoes_a_default_deny():
    m = model(policy({"podSelector": {}, "policyTypes": ["Ingress"]}, "deny"),
              policy({"podSelector": {}, "ingress": [{}]}, "allow-all"))
    assert ok(m, "myproject/app", "default/db", 12345, "UDP")
    assert ok(m, "9.9.9.9", "default/db")


def test_allow_all_egress_rule():
    m = model(policy({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}))
    assert ok(m, "default/db", "8.8.8.8", 443)


@pytest.mark.parametrize(("spec", "types"), [
    pytest.param({}, {"Ingress"}, id="nothing: Ingress"),
    pytest.param({"ingress": [{}]}, {"Ingress"}, id="ingress rules: Ingress"),
    pytest.param({"egress": [{}]}, {"Ingress", "Egress"}, id="egress rules: both"),
    pytest.param({"egress": []}, {"Ingress"}, id="empty egress list: Ingress"),
    pytest.param({"policyTypes": ["Egress"]}, {"Egress"}, id="listed: as listed"),
])
def test_policy_types_default_as_the_api_server_does(spec, types):
    assert Policy.from_object(policy(spec)).policy_types == types


def test_egress_only_rules_also_isolate_for_ingress():
    m = model(policy({"podSelector": {"matchLabels": {"role": "db"}}, "egress": [{}]}))
    assert not ok(m, "default/frontend", "default/db")
    assert ok(m, "default/db", "8.8.8.8")


def test_policies_are_additive():
    only_frontend = {"podSelector": {"matchLabels": {"role": "db"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    only_myproject = {"podSelector": {"matchLabels": {"role": "db"}},
                      "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"project": "myproject"}}}]}]}
    m = model(policy(only_frontend, "a"), policy(only_myproject, "b"))
    assert ok(m, "default/frontend", "default/db") and ok(m, "myproject/app", "default/db")
    assert not ok(m, "default/stranger", "default/db")


def test_a_connection_needs_egress_of_the_source_and_ingress_of_the_destination():
    deny_db_ingress = policy({"podSelector": {"matchLabels": {"role": "db"}}}, "db")
    allow_egress_to_db = policy({"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Egress"],
                                 "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "db"}}}]}]}, "fe")
    m = model(deny_db_ingress, allow_egress_to_db)
    assert not ok(m, "default/frontend", "default/db")  # egress yes, ingress no
    assert not ok(m, "default/frontend", "default/stranger")  # egress no, ingress (none) yes


# -- peers ---------------------------------------------------------------------------------------
DOCS_EXAMPLE = {  # the "test-network-policy" example of the Network Policies concept page
    "podSelector": {"matchLabels": {"role": "db"}},
    "policyTypes": ["Ingress", "Egress"],
    "ingress": [{"from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                          {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                          {"podSelector": {"matchLabels": {"role": "frontend"}}}],
                 "ports": [{"protocol": "TCP", "port": 6379}]}],
    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5978}]}],
}


@pytest.mark.parametrize(("src", "dst", "port", "allowed"), [
    pytest.param("default/frontend", "default/db", 6379, True, id="frontend in the namespace"),
    pytest.param("default/stranger", "default/db", 6379, False, id="another pod of the namespace"),
    pytest.param("myproject/app", "default/db", 6379, True, id="any pod of myproject"),
    pytest.param("other/tool", "default/db", 6379, False, id="a role=frontend pod elsewhere"),
    pytest.param("172.17.0.5", "default/db", 6379, True, id="ipBlock"),
    pytest.param("172.17.1.5", "default/db", 6379, False, id="ipBlock except"),
    pytest.param("default/frontend", "default/db", 6380, False, id="another port"),
    pytest.param("default/db", "10.0.0.7", 5978, True, id="egress to the block"),
    pytest.param("default/db", "10.0.0.7", 5979, False, id="egress to another port"),
    pytest.param("default/db", "10.0.1.7", 5978, False, id="egress outside the block"),
    pytest.param("default/db", "default/frontend", 80, False, id="egress to a pod"),
])
def test_the_documentation_example(src, dst, port, allowed):
    assert ok(model(policy(DOCS_EXAMPLE)), src, dst, port) is allowed


def test_namespace_and_pod_selector_in_one_peer_is_an_and():
    both = {"podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"project": "myproject"}},
                                   "podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    m = model(policy(both))
    assert ok(m, "myproject/frontend", "default/db")
    assert not ok(m, "myproject/app", "default/db")
    assert not ok(m, "default/frontend", "default/db")


def test_namespace_and_pod_selector_in_two_peers_is_an_or():
    either = {"podSelector": {"matchLabels": {"role": "db"}},
              "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                                    {"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    m = model(policy(either))
    assert ok(m, "myproject/app", "default/db") and ok(m, "default/frontend", "default/db")
    assert not ok(m, "other/tool", "default/db")


def test_pod_selector_alone_means_the_policys_namespace():
    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    sibling = pod("other", "web", "10.244.3.11", {"role": "web"})
    m = model(policy(spec, namespace="other"), pods=[*EVERYONE, sibling])
    assert ok(m, "other/tool", "10.244.3.11")
    assert not ok(m, "default/frontend", "10.244.3.11")


def test_empty_namespace_selector_means_every_namespace():
    spec = {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}
    m = model(policy(spec))
    assert ok(m, "other/tool", "default/db") and ok(m, "default/stranger", "default/db")
    assert not ok(m, "172.17.0.5", "default/db")  # pods only, not addresses outside


def test_namespace_by_name_with_the_automatic_label():
    spec = {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["other"]}]}}]}]}
    m = model(policy(spec))
    assert ok(m, "other/tool", "default/db") and not ok(m, "myproject/app", "default/db")


def test_ip_block_applies_to_pod_addresses_too():
    spec = {"podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.2.0/24", "except": ["10.244.2.11/32"]}}]}]}
    m = model(policy(spec))
    assert ok(m, "myproject/app", "default/db") and not ok(m, "myproject/frontend", "default/db")


def test_from_with_no_peers_is_everyone_including_outside_addresses():
    m = model(policy({"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"ports": [{"port": 6379}]}]}))
    assert ok(m, "203.0.113.9", "default/db", 6379) and not ok(m, "203.0.113.9", "default/db", 22)


def test_selectors_with_match_expressions():
    spec = {"podSelector": {"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["frontend"]}]},
            "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "role", "operator": "Exists"}]}}]}]}
    m = model(policy(spec), pods=[*EVERYONE, pod("default", "unlabelled", "10.244.1.13")])
    assert ok(m, "default/frontend", "default/db")
    assert not ok(m, "10.244.1.13", "default/db")  # no role label
    assert ok(m, "10.244.1.13", "default/frontend")  # frontend is not selected


# -- ports ---------------------------------------------------------------------------------------
def test_protocol_defaults_to_tcp():
    m = model(policy({"podSelector": {}, "ingress": [{"ports": [{"port": 53}]}]}))
    assert ok(m, "default/frontend", "default/db", 53, "TCP")
    assert not ok(m, "default/frontend", "default/db", 53, "UDP")


def test_a_protocol_without_a_port_is_every_port_of_it():
    m = model(policy({"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP"}]}]}))
    assert ok(m, "default/frontend", "default/db", 9999, "udp")
    assert not ok(m, "default/frontend", "default/db", 9999, "TCP")


def test_end_port_is_an_inclusive_range():
    spec = {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                        "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]}
    m = model(policy(spec))
    assert [ok(m, "default/db", "10.0.0.1", p) for p in (31999, 32000, 32400, 32768, 32769)] == [
        False, True, True, True, False]


def test_named_ingress_port_resolves_against_the_selected_pod():
    m = model(policy({"podSelector": {}, "ingress": [{"ports": [{"port": "redis"}]}]}))
    assert ok(m, "default/frontend", "default/db", 6379)
    assert not ok(m, "default/frontend", "default/db", 6380)
    assert not ok(m, "default/db", "default/frontend", 6379)  # frontend has no port named redis


def test_named_egress_port_resolves_against_each_destination_pod():
    spec = {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": "metrics"}, {"port": "dns", "protocol": "UDP"}]}]}
    m = model(policy(spec))
    assert ok(m, "default/db", "other/tool", 9100) and ok(m, "default/db", "other/tool", 5353, "UDP")
    assert not ok(m, "default/db", "other/tool", 5353, "TCP")  # the name is for UDP
    assert not ok(m, "default/db", "default/frontend", 9100)  # no port of that name there
    assert not ok(m, "default/db", "8.8.8.8", 9100)  # not a pod: a name matches nothing


def test_ports_and_peers_must_match_in_the_same_rule():
    spec = {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}], "ports": [{"port": 6379}]},
        {"from": [{"ipBlock": {"cidr": "172.17.0.0/16"}}], "ports": [{"port": 22}]}]}
    m = model(policy(spec))
    assert ok(m, "default/frontend", "default/db", 6379) and ok(m, "172.17.0.1", "default/db", 22)
    assert not ok(m, "default/frontend", "default/db", 22)


# -- exceptions and which pods count -------------------------------------------------------------
def test_a_pod_can_always_reach_itself():
    m = model(policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    assert ok(m, "default/db", "default/db", 6379)


@pytest.mark.parametrize("host", ["127.0.0.1", "192.168.49.2", "10.244.1.1"])
def test_the_node_is_always_allowed_both_ways(host):
    m = model(policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    assert ok(m, host, "default/db") and ok(m, "default/db", host, 53, "UDP")


@pytest.mark.parametrize("other", [
    pytest.param(pod("default", "x", "10.244.1.50", {"role": "frontend"}, status={"phase": "Succeeded"}), id="finished"),
    pytest.param(pod("default", "x", "10.244.1.50", {"role": "frontend"}, spec={"hostNetwork": True}), id="hostNetwork"),
])
def test_finished_and_host_network_pods_are_not_peers(other):
    spec = {"podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    m = model(policy(spec), pods=[DB, other])
    assert not ok(m, "10.244.1.50", "default/db")


def test_a_pod_without_an_address_is_ignored():
    no_ip = pod("default", "pending", "", {"role": "frontend"})
    built, _ = PolicyModel.from_objects([], [no_ip], [])
    assert built.pods == []


def test_dual_stack_pod_addresses_are_all_peers():
    both = pod("default", "dual", "10.244.1.60", {"role": "frontend"},
               status={"podIPs": [{"ip": "10.244.1.60"}, {"ip": "fd00::60"}]})
    spec = {"podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}
    m = model(policy(spec), pods=[DB, both])
    assert ok(m, "fd00::60", "default/db") and ok(m, "10.244.1.60", "default/db")
    assert not ok(m, "fd00::61", "default/db")


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "message"), [
    pytest.param({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "protocol", id="protocol"),
    pytest.param({"ingress": [{"ports": [{"port": 70000}]}]}, "1-65535", id="port range"),
    pytest.param({"ingress": [{"ports": [{"port": "80"}]}]}, "port name", id="digits as a name"),
    pytest.param({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "numeric", id="endPort on a name"),
    pytest.param({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "endPort", id="endPort below port"),
    pytest.param({"ingress": [{"from": [{}]}]}, "must give", id="empty peer"),
    pytest.param({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
                 "combined", id="ipBlock with a selector"),
    pytest.param({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/24"]}}]}]},
                 "strictly inside", id="except outside"),
    pytest.param({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]}, "not a CIDR", id="no prefix"),
    pytest.param({"policyTypes": ["Both"]}, "Ingress or Egress", id="policy type"),
    pytest.param({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}, "podSelector",
                 id="selector operator"),
])
def test_bad_policies_say_what_is_wrong(spec, message):
    with pytest.raises(PolicyError, match=message):
        Policy.from_object(policy(spec))


def test_a_policy_with_bad_rules_still_isolates_its_pods():
    bad = policy({"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"ports": [{"port": 0}]}]})
    built, errors = PolicyModel.from_objects([bad], EVERYONE, namespaces())
    assert errors and "default/p" in errors[0] and "spec.ingress[0].ports[0].port" in errors[0]
    assert not ok(built, "default/frontend", "default/db", 6379)
    assert ok(built, "default/db", "default/frontend")


@pytest.mark.parametrize(("args", "message"), [
    (("10.0.0.1", "10.0.0.2", 80, "ICMP"), "protocol"),
    (("10.0.0.1", "10.0.0.2", 70000, "TCP"), "port"),
    (("not-an-ip", "10.0.0.2", 80, "TCP"), "not-an-ip"),
])
def test_allowed_rejects_nonsense(args, message):
    with pytest.raises(PolicyError, match=message):
        model().allowed(*args)


def test_rules_of_a_type_the_policy_does_not_list_are_ignored():
    spec = {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}], "egress": []}
    m = model(policy(spec))
    assert ok(m, "default/stranger", "default/db")  # not isolated for ingress: its rules do not apply
    assert not ok(m, "default/db", "default/frontend")


def test_a_namespace_not_yet_in_the_cache_still_has_its_name_label():
    spec = {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}]}]}
    built, _ = PolicyModel.from_objects([policy(spec)], EVERYONE, [])
    assert ok(built, "other/tool", "default/db") and not ok(built, "myproject/app", "default/db")
