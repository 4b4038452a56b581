"""The pure EndpointSlice reconciler: what slices a Service's pods make, and how few writes
a change costs."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

from controllers.endpointslice.reconcile import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SlicePlan,
    reconcile_slices,
)
from tests.controllers.endpointslice.builders import node, nodes, pod, service

Obj = dict[str, Any]
_names = itertools.count()


def stored(plan: SlicePlan, existing: list[Obj] | None = None) -> list[Obj]:
    """The slices after `plan` is written (creates get a name, as generateName would)."""
    result = {s["metadata"]["name"]: s for s in existing or []}
    for s in plan.delete:
        result.pop(s["metadata"]["name"], None)
    for s in plan.update:
        result[s["metadata"]["name"]] = s
    for s in plan.create:
        s = copy.deepcopy(s)
        s["metadata"]["name"] = f"{s['metadata']['generateName']}{next(_names)}"
        result[s["metadata"]["name"]] = s
    return list(result.values())


def addresses(slices: list[Obj]) -> list[str]:
    return sorted(a for s in slices for e in s["endpoints"] for a in e["addresses"])


def test_slice_has_kubernetes_metadata_ports_and_endpoint_fields() -> None:
    svc = service(labels={"team": "a"})
    plan = reconcile_slices(svc, [pod("web-1", "10.0.0.1")], [], nodes(zone="zone-a"),
                            trigger_time=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    [created] = plan.create
    meta = created["metadata"]
    assert meta["generateName"] == "web-"
    assert meta["labels"] == {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-web",
                                        "controller": True, "blockOwnerDeletion": True}]
    assert meta["annotations"] == {"endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:05Z"}
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    [untimed] = reconcile_slices(svc, [pod("web-1", "10.0.0.1")], [], nodes(zone="zone-a")).create
    assert "annotations" not in untimed["metadata"]  # no empty map, as Go's omitempty
    assert created["endpoints"] == [{
        "addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "uid-web-1"},
        "nodeName": "node-1", "zone": "zone-a"}]


def test_named_target_port_resolves_per_pod_and_splits_slices_by_ports() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [pod("a", "10.0.0.1", container_ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.0.0.2", container_ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "10.0.0.3", container_ports=[{"name": "other", "containerPort": 7070}])]
    plan = reconcile_slices(svc, pods, [], nodes())
    by_ports = {tuple(p["port"] for p in s["ports"]): addresses([s]) for s in plan.create}
    assert by_ports == {(8080,): ["10.0.0.1"], (9090,): ["10.0.0.2"], (): ["10.0.0.3"]}


def test_conditions_follow_readiness_termination_and_publish_not_ready() -> None:
    pods = [pod("ready", "10.0.0.1"), pod("unready", "10.0.0.2", ready=False),
            pod("leaving", "10.0.0.3", deleting=True)]
    def conditions(svc: Obj) -> dict[str, Obj]:
        [created] = reconcile_slices(svc, pods, [], nodes()).create
        return {e["targetRef"]["name"]: e["conditions"] for e in created["endpoints"]}
    assert conditions(service()) == {
        "ready": {"ready": True, "serving": True, "terminating": False},
        "unready": {"ready": False, "serving": False, "terminating": False},
        "leaving": {"ready": False, "serving": True, "terminating": True}}
    assert {n: c["ready"] for n, c in conditions(service(publishNotReadyAddresses=True)).items()} == {
        "ready": True, "unready": True, "leaving": True}


def test_pods_without_ip_finished_or_on_unknown_nodes_are_left_out() -> None:
    pods = [pod("no-ip", ""), pod("done", "10.0.0.2", phase="Succeeded", restartPolicy="Never"),
            pod("elsewhere", "10.0.0.3", node="gone"), pod("ok", "10.0.0.4")]
    plan = reconcile_slices(service(), pods, [], nodes())
    assert addresses(plan.create) == ["10.0.0.4"]


def test_headless_service_labels_and_hostname_for_matching_subdomain() -> None:
    svc = service(cluster_ip="None")
    pods = [pod("db-0", "10.0.0.1", hostname="db-0", subdomain="web"),
            pod("db-1", "10.0.0.2", hostname="db-1", subdomain="other")]
    [created] = reconcile_slices(svc, pods, [], nodes()).create
    assert created["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert {e["targetRef"]["name"]: e.get("hostname") for e in created["endpoints"]} == {"db-0": "db-0", "db-1": None}


def test_more_than_max_endpoints_make_several_full_slices() -> None:
    pods = [pod(f"p{i:03d}", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    plan = reconcile_slices(service(), pods, [], nodes())
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    small = reconcile_slices(service(), pods[:7], [], nodes(), max_per_slice=3)
    assert sorted(len(s["endpoints"]) for s in small.create) == [1, 3, 3]


def test_no_change_means_no_write_and_one_change_updates_one_slice_in_place() -> None:
    pods = [pod(f"p{i:03d}", f"10.0.1.{i + 1}") for i in range(150)]
    slices = stored(reconcile_slices(service(), pods, [], nodes()))
    assert reconcile_slices(service(), pods, slices, nodes()).empty()
    pods[3] = pod("p003", "10.0.1.4", ready=False)
    plan = reconcile_slices(service(), pods, slices, nodes())
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert len(plan.update[0]["endpoints"]) == len(next(s for s in slices if s["metadata"]["name"] ==
                                                        plan.update[0]["metadata"]["name"])["endpoints"])


def test_scaling_adds_to_existing_slices_and_removes_emptied_ones() -> None:
    slices = stored(reconcile_slices(service(), [pod("a", "10.0.0.1")], [], nodes()))
    grown = [pod("a", "10.0.0.1"), pod("b", "10.0.0.2"), pod("c", "10.0.0.3")]
    plan = reconcile_slices(service(), grown, slices, nodes())
    assert not plan.create and len(plan.update) == 1 and addresses(plan.update) == ["10.0.0.1", "10.0.0.2",
                                                                                      "10.0.0.3"]
    slices = stored(plan, slices)
    plan = reconcile_slices(service(), [], slices, nodes())
    # The last endpoint gone: the slice is replaced by an empty placeholder (no ports).
    assert [s["metadata"]["name"] for s in plan.delete] == [slices[0]["metadata"]["name"]]
    [placeholder] = plan.create
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    slices = stored(plan, slices)
    assert reconcile_slices(service(), [], slices, nodes()).empty()


def test_placeholder_goes_when_endpoints_come() -> None:
    slices = stored(reconcile_slices(service(), [], [], nodes()))
    plan = reconcile_slices(service(), [pod("a", "10.0.0.1")], slices, nodes())
    assert len(plan.delete) == 1 and addresses(plan.create) == ["10.0.0.1"]


def test_zone_comes_from_the_pods_node_and_changes_update_the_slice() -> None:
    slices = stored(reconcile_slices(service(), [pod("a", "10.0.0.1")], [], {"node-1": node("node-1")}))
    assert "zone" not in slices[0]["endpoints"][0]
    plan = reconcile_slices(service(), [pod("a", "10.0.0.1")], slices, {"node-1": node("node-1", "z1")})
    assert plan.update[0]["endpoints"][0]["zone"] == "z1"


def test_slices_of_a_recreated_service_are_replaced() -> None:
    slices = stored(reconcile_slices(service(), [pod("a", "10.0.0.1")], [], nodes()))
    again = service()
    again["metadata"]["uid"] = "uid-new"
    plan = reconcile_slices(again, [pod("a", "10.0.0.1")], slices, nodes())
    assert len(plan.delete) == 1 and plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-new"


def test_service_label_changes_update_slice_labels() -> None:
    slices = stored(reconcile_slices(service(), [pod("a", "10.0.0.1")], [], nodes()))
    plan = reconcile_slices(service(labels={"tier": "front"}), [pod("a", "10.0.0.1")], slices, nodes())
    assert plan.update[0]["metadata"]["labels"]["tier"] == "front"


def test_slice_tracker_waits_for_the_cache_to_show_our_writes() -> None:
    from controllers.endpointslice.controller import SliceTracker

    tracker = SliceTracker()
    written = {"metadata": {"name": "web-abc", "resourceVersion": "12"}}
    tracker.wrote("default/web", written)
    assert tracker.stale("default/web", [])
    assert tracker.stale("default/web", [{"metadata": {"name": "web-abc", "resourceVersion": "11"}}])
    assert not tracker.stale("default/web", [written])
    tracker.deleted("default/web", "web-abc")
    assert tracker.stale("default/web", [written])
    tracker.observed_deletion("default/web", "web-abc")
    assert not tracker.stale("default/web", [])
