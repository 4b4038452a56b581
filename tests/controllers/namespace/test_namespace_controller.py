"""The namespace controller: conditions as pure code, and emptying a namespace against the
real API server (content with a finalizer holds the namespace until it is released)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controllers.namespace import conditions
from controllers.namespace.controller import graceful_estimate
from minikube_py.client import CONFIGMAPS, NAMESPACES, SECRETS, SERVICEACCOUNTS, ApiError
from tests.controllers.manager.harness import ControlPlane, control_plane

Obj = dict[str, Any]
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_content_remaining_message_names_group_resources_as_kubernetes() -> None:
    reason, message = conditions.content_remaining({("", "pods"): 2, ("apps", "replicasets"): 1})
    assert reason == "SomeResourcesRemain"
    assert message == ("Some resources are remaining: pods. has 2 resource instances, "
                       "replicasets.apps has 1 resource instances")


def test_finalizers_remaining_message() -> None:
    reason, message = conditions.finalizers_remaining({"example.com/b": 1, "example.com/a": 3})
    assert reason == "SomeFinalizersRemain"
    assert message == ("Some content in the namespace has finalizers remaining: example.com/a in 3 resource "
                       "instances, example.com/b in 1 resource instances")


def test_all_five_conditions_present_and_transition_time_kept_while_status_unchanged() -> None:
    first = conditions.updated_conditions([], {conditions.CONTENT_REMAINING: ("SomeResourcesRemain", "x")}, NOW)
    assert [c["type"] for c in first] == list(conditions.CONDITION_TYPES)
    by_type = {c["type"]: c for c in first}
    assert by_type["NamespaceContentRemaining"]["status"] == "True"
    assert by_type["NamespaceDeletionDiscoveryFailure"] == {
        "type": "NamespaceDeletionDiscoveryFailure", "status": "False", "lastTransitionTime": "2025-01-01T00:00:00Z",
        "reason": "ResourcesDiscovered", "message": "All resources successfully discovered"}
    later = NOW + timedelta(minutes=1)
    second = {c["type"]: c for c in conditions.updated_conditions(first, {}, later)}
    assert second["NamespaceContentRemaining"]["lastTransitionTime"] == "2025-01-01T00:01:00Z"
    assert second["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert second["NamespaceDeletionContentFailure"]["lastTransitionTime"] == "2025-01-01T00:00:00Z"


def test_discovery_failure_message() -> None:
    reason, message = conditions.discovery_failed({"metrics.k8s.io/v1beta1": "the server is currently unable"})
    assert reason == "DiscoveryFailed"
    assert message == ("Discovery failed for some groups, 1 failing: "
                       "metrics.k8s.io/v1beta1: the server is currently unable")


def test_graceful_estimate_is_the_longest_grace_of_running_pods() -> None:
    pods = [{"spec": {"terminationGracePeriodSeconds": 10}, "status": {"phase": "Running"}},
            {"spec": {}, "status": {"phase": "Pending"}},
            {"spec": {"terminationGracePeriodSeconds": 300}, "status": {"phase": "Succeeded"}}]
    assert graceful_estimate(pods) == 30
    assert graceful_estimate([]) == 0


async def _namespace_gone(plane: ControlPlane, name: str) -> bool:
    try:
        await plane.client.get(NAMESPACES, name)
    except ApiError as exc:
        return exc.is_not_found()
    return False


async def test_deleting_a_namespace_removes_its_content_then_the_namespace(tmp_path: Path) -> None:
    async with control_plane(tmp_path, controllers=["namespace", "garbagecollector"]) as plane:
        await plane.client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
        await plane.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "c", "namespace": "t"}})
        await plane.client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                            "metadata": {"name": "s", "namespace": "t"}})
        await plane.client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "held", "namespace": "t", "finalizers": ["example.com/hold"]}})
        await plane.client.delete(NAMESPACES, "t")

        async def held_back() -> Obj | None:
            ns = await plane.client.get(NAMESPACES, "t")
            conds = {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}
            cond = conds.get("NamespaceFinalizersRemaining")
            return conds if cond and cond["status"] == "True" else None

        conds = await plane.wait_for(held_back, message="NamespaceFinalizersRemaining")
        assert conds["NamespaceFinalizersRemaining"]["message"] == (
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
        assert conds["NamespaceContentRemaining"]["message"] == (
            "Some resources are remaining: configmaps. has 1 resource instances")
        assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
        assert conds["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
        ns = await plane.client.get(NAMESPACES, "t")
        assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
        assert (await plane.client.list(SECRETS, "t"))["items"] == []
        assert [c["metadata"]["name"] for c in (await plane.client.list(CONFIGMAPS, "t"))["items"]] == ["held"]
        assert (await plane.client.list(SERVICEACCOUNTS, "t"))["items"] == []

        await plane.client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, "t")
        await plane.wait_for(lambda: _namespace_gone(plane, "t"), timeout=15, message="namespace t gone")
