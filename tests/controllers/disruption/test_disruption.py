"""PodDisruptionBudget status: the budget arithmetic as pure code, and the controller
against the real API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controllers.disruption.budget import compute, status
from controllers.disruption.controller import DisruptionController
from minikube_py.client import (
    PODDISRUPTIONBUDGETS,
    PODS,
    ApiClient,
    EventRecorder,
    FakeClock,
    SharedInformerFactory,
)
from tests.controllers.manager.harness import NS, api_server, wait_for

Obj = dict[str, Any]
RS_REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid", "controller": True}


def pod(name: str, *, ready: bool = True, owner: Obj | None = RS_REF, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": NS, "labels": {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(**spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": NS, "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def scale_of(replicas: int):  # type: ignore[no-untyped-def]
    return lambda kind, namespace, name: ("deploy-uid", replicas)


@pytest.mark.parametrize(("spec", "replicas", "expected"), [
    pytest.param({"minAvailable": 2}, 3, (3, 2, 3, 1), id="min-available-number"),
    pytest.param({"minAvailable": "50%"}, 3, (3, 2, 3, 1), id="min-available-percent-rounds-up"),
    pytest.param({"maxUnavailable": 1}, 3, (3, 2, 3, 1), id="max-unavailable"),
    pytest.param({"maxUnavailable": "10%"}, 4, (4, 3, 3, 0), id="scale-counts-missing-pods"),
])
def test_budget_arithmetic(spec: Obj, replicas: int, expected: tuple[int, int, int, int]) -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d", ready=False), pod("e", deleting=True)][:3] + [pod("x", ready=False)]
    budget = compute(pdb(**spec), pods, scale_of(replicas))
    got = (budget.expected, budget.desired_healthy, budget.current_healthy, budget.disruptions_allowed)
    if "minAvailable" in spec and not str(spec["minAvailable"]).endswith("%"):
        expected = (len(pods), *expected[1:])
    assert got == expected


def test_no_pods_is_an_event_and_no_disruption() -> None:
    budget = compute(pdb(minAvailable=1), [], scale_of(0))
    assert budget.disruptions_allowed == 0
    assert budget.events == [("Normal", "NoPods", "No matching pods found")]


def test_unmanaged_pods_with_max_unavailable_are_warned_about() -> None:
    budget = compute(pdb(maxUnavailable=1), [pod("lonely", owner=None)], scale_of(1))
    assert [e[1] for e in budget.events] == ["UnmanagedPods"]


def test_status_has_the_disruption_allowed_condition() -> None:
    budget = compute(pdb(minAvailable=1), [pod("a"), pod("b")], scale_of(2))
    result = status(pdb(minAvailable=1), budget, "2026-01-01T00:00:00Z")
    assert {k: v for k, v in result.items() if k != "conditions"} == {
        "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2, "observedGeneration": 1}
    assert result["conditions"] == [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                                     "message": "", "observedGeneration": 1,
                                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]


def test_evicted_pods_count_as_gone_until_deleted_or_timed_out() -> None:
    """buildDisruptedPodMap: an eviction's entry keeps its pod out of currentHealthy until
    the pod shows up deleted (entry dropped) or 2 minutes pass (NotDeleted, dropped)."""
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    budget_obj = {**pdb(minAvailable=1), "status": {"disruptedPods": {
        "a": "2026-01-01T00:00:30Z",  # evicted 30 s ago, not yet deleted: held
        "b": "2026-01-01T00:00:40Z",  # being deleted now: dropped
        "c": "2025-12-31T23:58:00Z",  # 3 minutes ago and still there: NotDeleted
        "gone": "2026-01-01T00:00:50Z"}}}  # no such pod any more: dropped
    matching = [pod("a"), pod("b", deleting=True), pod("c"), pod("d")]
    budget = compute(budget_obj, matching, lambda *_: None, now)
    assert budget.disrupted == {"a": "2026-01-01T00:00:30Z"}
    assert budget.current_healthy == 2  # c and d (a is held, b is being deleted)
    assert budget.recheck_at == datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC)
    assert [e[1] for e in budget.events] == ["NotDeleted"]
    assert budget.events[0][2] == ("Pod default/c was expected to be deleted at 2026-01-01 00:00:00 +0000 UTC "
                                   "but it wasn't, updating pdb")
    assert status(budget_obj, budget, "2026-01-01T00:01:00Z")["disruptedPods"] == {"a": "2026-01-01T00:00:30Z"}


async def test_controller_writes_pdb_status_from_ready_pods(tmp_path: Path) -> None:
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        factory = SharedInformerFactory(client)
        recorder = EventRecorder(client, "controllermanager")
        controller = DisruptionController(client, factory, recorder, clock=FakeClock())
        factory.start()
        await factory.wait_for_cache_sync()
        try:
            for name in ("a", "b"):
                body = pod(name, owner=None)
                created = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": body["metadata"],
                                                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
                await client.patch(PODS, created["metadata"]["name"], {"status": body["status"]}, NS,
                                   subresource="status")
            await client.create(PODDISRUPTIONBUDGETS, pdb(minAvailable=1))
            await wait_for(lambda: controller.pdbs.lister.get("web", NS) is not None
                           and len(controller.pods.lister.list(NS)) == 2, message="caches")
            await wait_for(lambda: all(p["status"].get("conditions") for p in controller.pods.lister.list(NS)),
                           message="pod status cached")
            await controller.reconcile(f"{NS}/web")
            got = (await client.get(PODDISRUPTIONBUDGETS, "web", NS))["status"]
            assert (got["disruptionsAllowed"], got["currentHealthy"], got["desiredHealthy"], got["expectedPods"]) \
                == (1, 2, 1, 2)
            assert got["conditions"][0]["reason"] == "SufficientPods"
        finally:
            await factory.shutdown()
            await recorder.close()
