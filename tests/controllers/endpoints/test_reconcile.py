"""The Endpoints controller's pure parts: subsets, repacking, truncation, annotations."""

from __future__ import annotations

from datetime import UTC, datetime

from controllers.endpoints.reconcile import desired_endpoints, desired_subsets
from controllers.endpoints.subsets import repack_subsets, truncate
from tests.controllers.endpointslice.builders import pod, service


def address(ip: str, name: str) -> dict[str, object]:
    return {"ip": ip, "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"}}


def test_ready_and_not_ready_pods_share_a_subset_per_port_set() -> None:
    pods = [pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), pod("c", "10.0.0.3", ready=False)]
    assert desired_subsets(service(), pods) == [{
        "addresses": [address("10.0.0.1", "a"), address("10.0.0.2", "b")],
        "notReadyAddresses": [address("10.0.0.3", "c")],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]


def test_named_ports_split_subsets_by_the_addresses_serving_each_port() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
                         {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}])
    pods = [pod("a", "10.0.0.1", container_ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.0.0.2", container_ports=[{"name": "web", "containerPort": 8080}]),
            pod("c", "10.0.0.3")]
    subsets = desired_subsets(svc, pods)
    assert [([a["ip"] for a in s["addresses"]], [p["port"] for p in s["ports"]]) for s in subsets] == [
        (["10.0.0.1", "10.0.0.2"], [8080]), (["10.0.0.1", "10.0.0.2", "10.0.0.3"], [9100])]


def test_terminating_pods_only_with_publish_not_ready_addresses() -> None:
    pods = [pod("a", "10.0.0.1"), pod("leaving", "10.0.0.2", deleting=True), pod("cold", "10.0.0.3", ready=False)]
    assert [a["ip"] for a in desired_subsets(service(), pods)[0]["addresses"]] == ["10.0.0.1"]
    published = desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in published[0]["addresses"]] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert "notReadyAddresses" not in published[0]


def test_headless_without_ports_lists_pods_portless_with_hostnames() -> None:
    svc = service(cluster_ip="None", ports=[])
    subsets = desired_subsets(svc, [pod("db-0", "10.0.0.1", hostname="db-0", subdomain="web")])
    assert subsets == [{"addresses": [{**address("10.0.0.1", "db-0"), "hostname": "db-0"}]}]
    assert desired_subsets(service(ports=[]), [pod("a", "10.0.0.1")]) == []


def test_repack_prefers_ready_and_merges_equal_address_sets() -> None:
    a, b = address("10.0.0.1", "a"), address("10.0.0.2", "b")
    p80, p81 = {"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}
    subsets = [{"notReadyAddresses": [a], "ports": [p80]}, {"addresses": [a], "ports": [p80]},
               {"addresses": [b], "ports": [p80, p81]}, {"addresses": [a], "ports": [p81]}]
    assert repack_subsets(subsets) == [{"addresses": [a, b], "ports": [p80, p81]}]


def test_truncation_drops_not_ready_first_then_shares_ready_proportionally() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(6)],
                "notReadyAddresses": [{"ip": f"10.0.1.{i}"} for i in range(4)]}]
    assert truncate(subsets, capacity=8)
    assert (len(subsets[0]["addresses"]), len(subsets[0]["notReadyAddresses"])) == (6, 2)
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(6)]},
               {"addresses": [{"ip": f"10.0.1.{i}"} for i in range(3)], "notReadyAddresses": [{"ip": "10.0.2.1"}]}]
    assert truncate(subsets, capacity=5)
    assert [len(s.get("addresses", [])) for s in subsets] == [4, 1]
    assert all("notReadyAddresses" not in s for s in subsets)
    assert not truncate(subsets, capacity=5)


def test_over_capacity_annotation_and_thousand_addresses() -> None:
    pods = [pod(f"p{i:04d}", f"10.{i // 250}.{i % 250}.1") for i in range(1001)]
    body = desired_endpoints(service(), pods, None)
    assert body is not None
    assert body["metadata"]["annotations"] == {"endpoints.kubernetes.io/over-capacity": "truncated"}
    assert sum(len(s["addresses"]) for s in body["subsets"]) == 1000
    smaller = desired_endpoints(service(), pods[:10], body)
    assert smaller is not None and "annotations" not in smaller["metadata"]


def test_endpoints_without_annotations_carry_no_empty_annotations_map() -> None:
    body = desired_endpoints(service(cluster_ip="None"), [pod("a", "10.0.0.1")], None)
    assert body is not None and "annotations" not in body["metadata"]


def test_endpoints_object_labels_trigger_time_and_no_op() -> None:
    svc = service(cluster_ip="None", labels={"team": "a"})
    when = datetime(2026, 1, 1, 0, 0, 3, 500000, tzinfo=UTC)
    body = desired_endpoints(svc, [pod("a", "10.0.0.1")], None, trigger_time=when)
    assert body is not None
    assert body["metadata"] == {"name": "web", "namespace": "default",
                                "labels": {"team": "a", "service.kubernetes.io/headless": ""},
                                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                                "2026-01-01T00:00:03.5Z"}}
    assert desired_endpoints(svc, [pod("a", "10.0.0.1")], body) is None
