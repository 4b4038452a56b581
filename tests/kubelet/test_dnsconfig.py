"""A pod's resolv.conf from its dnsPolicy and dnsConfig, as the kubelet composes it."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.dnsconfig import DNSConfig, DNSEvent, parse_resolv_conf, pod_dns_config

HOST = """# written by the host
nameserver 192.0.2.53
nameserver 192.0.2.54
search corp.example. lab.example
options timeout:2 rotate
"""


def pod(policy: str | None = None, *, host_network: bool = False, dns_config: dict[str, Any] | None = None,
        namespace: str = "shop") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c"}]}
    if policy:
        spec["dnsPolicy"] = policy
    if host_network:
        spec["hostNetwork"] = True
    if dns_config is not None:
        spec["dnsConfig"] = dns_config
    return {"metadata": {"name": "web", "namespace": namespace, "uid": "u-1"}, "spec": spec}


def decide(p: dict[str, Any], cluster_dns: list[str] | None = None, host: str = HOST) -> tuple[DNSConfig, list[DNSEvent]]:
    return pod_dns_config(p, cluster_dns=["10.96.0.10"] if cluster_dns is None else cluster_dns,
                          cluster_domain="cluster.local", host_resolv_conf=host)


CLUSTER_SEARCH = ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"]
HOST_CONFIG = DNSConfig(["192.0.2.53", "192.0.2.54"], ["corp.example", "lab.example"], ["timeout:2", "rotate"])


@pytest.mark.parametrize(("policy", "host_network", "expected"), [
    pytest.param(None, False, DNSConfig(["10.96.0.10"], CLUSTER_SEARCH, ["ndots:5"]), id="default-is-cluster-first"),
    pytest.param("ClusterFirst", False, DNSConfig(["10.96.0.10"], CLUSTER_SEARCH, ["ndots:5"]), id="cluster-first"),
    pytest.param("ClusterFirst", True, HOST_CONFIG, id="cluster-first-host-network-is-default"),
    pytest.param("ClusterFirstWithHostNet", True, DNSConfig(["10.96.0.10"], CLUSTER_SEARCH, ["ndots:5"]),
                 id="cluster-first-with-host-net"),
    pytest.param("Default", False, HOST_CONFIG, id="default-is-the-host"),
    pytest.param("None", False, DNSConfig(), id="none-is-empty"),
])
def test_policy_decides_the_base(policy: str | None, host_network: bool, expected: DNSConfig):
    config, events = decide(pod(policy, host_network=host_network))
    assert config == expected and events == []


def test_cluster_first_file_reads_like_a_kubernetes_pod():
    config, _ = decide(pod(), host="nameserver 192.0.2.53\n")
    assert config.resolv_conf() == ("search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                                    "nameserver 10.96.0.10\noptions ndots:5\n")
    assert DNSConfig().resolv_conf() == ""


def test_missing_cluster_dns_falls_back_to_default_with_events():
    config, events = decide(pod("ClusterFirst"), cluster_dns=[])
    assert config == HOST_CONFIG
    message = ('kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. '
               'Falling back to "Default" policy.')
    assert events == [DNSEvent("MissingClusterDNS", message, node=True),
                      DNSEvent("MissingClusterDNS", f'pod: "web_shop(u-1)". {message}')]


def test_dns_config_is_appended_and_options_merged_by_name():
    extra = {"nameservers": ["1.2.3.4", "10.96.0.10"], "searches": ["my.dns.search.suffix", "cluster.local"],
             "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    config, events = decide(pod(dns_config=extra))
    assert config.servers == ["10.96.0.10", "1.2.3.4"]
    assert config.searches == [*CLUSTER_SEARCH, "my.dns.search.suffix"]
    assert config.options == ["ndots:2", "edns0"]
    assert events == []
    config, _ = decide(pod("None", dns_config={"nameservers": ["1.2.3.4"], "options": [{"name": "ndots",
                                                                                        "value": "1"}]}))
    assert config.resolv_conf() == "nameserver 1.2.3.4\noptions ndots:1\n"
    config, _ = decide(pod("Default", dns_config={"options": [{"name": "rotate"}, {"name": "timeout", "value": "5"}]}))
    assert config.options == ["timeout:5", "rotate"]


def test_limits_cut_nameservers_and_searches_with_an_event():
    extra = {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
             "searches": [f"d{i}.example" for i in range(40)]}
    config, events = decide(pod("Default", dns_config=extra))
    assert config.servers == ["192.0.2.53", "192.0.2.54", "1.1.1.1"]
    assert len(config.searches) == 32 and config.searches[:2] == ["corp.example", "lab.example"]
    assert [e.reason for e in events] == ["DNSConfigForming", "DNSConfigForming"]
    assert events[0].message == ("Nameserver limits were exceeded, some nameservers have been omitted, the applied "
                                 "nameserver line is: 192.0.2.53 192.0.2.54 1.1.1.1")
    assert events[1].message.startswith("Search Line limits were exceeded, some search paths have been omitted, "
                                        "the applied search line is: corp.example lab.example d0.example")


def test_search_line_longer_than_2048_characters_loses_its_last_domains():
    long = ["x" * 200 + f".d{i}" for i in range(12)]  # 12 * 204 characters with spaces
    config, events = decide(pod("None", dns_config={"searches": long}))
    assert len(" ".join(config.searches)) <= 2048 and config.searches == long[:10]
    assert events and events[0].reason == "DNSConfigForming"


def test_host_resolv_conf_parsing():
    config = parse_resolv_conf("search a.\nsearch b c.\nnameserver 1.1.1.1\nnameserver\n# nameserver 9.9.9.9\n"
                               "options ndots:1\noptions edns0\n")
    assert config == DNSConfig(["1.1.1.1"], ["b", "c"], ["edns0"])
