"""POST pods/{name}/eviction: deletion that respects PodDisruptionBudgets."""

from __future__ import annotations

import orjson

JSON = {"Content-Type": "application/json"}
PODS = "/api/v1/namespaces/default/pods"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"


async def _post(client, url: str, body: dict):
    resp = await client.post(url, data=orjson.dumps(body), headers=JSON)
    return resp.status, await resp.json()


async def _pod(client, name: str, *, phase: str = "Running", ready: bool = True) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    code, _ = await _post(client, PODS, body)
    assert code == 201
    status = {"status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    resp = await client.patch(f"{PODS}/{name}/status", data=orjson.dumps(status),
                              headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status == 200


async def _pdb(client, *, allowed: int, healthy: int = 2, desired: int = 2, observed: int = 1) -> None:
    code, _ = await _post(client, PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                         "metadata": {"name": "web"},
                                         "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": "web"}}}})
    assert code == 201
    status = {"status": {"observedGeneration": observed, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                         "desiredHealthy": desired, "expectedPods": healthy}}
    resp = await client.patch(f"{PDBS}/web/status", data=orjson.dumps(status),
                              headers={"Content-Type": "application/merge-patch+json"})
    assert resp.status == 200


def eviction(name: str) -> dict:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}


async def test_eviction_without_a_budget_deletes_the_pod(client):
    await _pod(client, "p")
    code, status = await _post(client, f"{PODS}/p/eviction", eviction("p"))
    assert (code, status) == (201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                    "code": 201})
    assert (await client.get(f"{PODS}/p")).status == 404


async def test_mismatched_name_is_a_bad_request_and_deletes_nothing(client):
    await _pod(client, "p")
    code, status = await _post(client, f"{PODS}/p/eviction", eviction("q"))
    assert code == 400 and status["message"] == "name in URL does not match name in Eviction object"
    assert (await client.get(f"{PODS}/p")).status == 200


async def test_budget_spends_one_disruption_then_refuses(client):
    await _pod(client, "a")
    await _pod(client, "b")
    await _pdb(client, allowed=1, healthy=3)
    code, _ = await _post(client, f"{PODS}/a/eviction", eviction("a"))
    assert code == 201
    pdb = await (await client.get(f"{PDBS}/web")).json()
    assert pdb["status"]["disruptionsAllowed"] == 0 and list(pdb["status"]["disruptedPods"]) == ["a"]
    code, status = await _post(client, f"{PODS}/b/eviction", eviction("b"))
    assert code == 429 and status["reason"] == "TooManyRequests"
    assert status["details"]["causes"][0] == {"reason": "DisruptionBudget",
                                              "message": "The disruption budget web needs 2 healthy pods and has 3 "
                                                         "currently"}
    assert (await client.get(f"{PODS}/b")).status == 200


async def test_budget_not_yet_observed_is_still_being_processed(client):
    await _pod(client, "a")
    await _pdb(client, allowed=5, observed=0)
    code, status = await _post(client, f"{PODS}/a/eviction", eviction("a"))
    assert code == 429
    assert status["details"]["causes"][0]["message"] == "The disruption budget web is still being processed by the server."


async def test_pending_and_unready_pods_need_no_disruption(client):
    await _pod(client, "pending", phase="Pending")
    await _pod(client, "unready", ready=False)
    await _pdb(client, allowed=0, healthy=2, desired=2)
    assert (await _post(client, f"{PODS}/pending/eviction", eviction("pending")))[0] == 201
    assert (await _post(client, f"{PODS}/unready/eviction", eviction("unready")))[0] == 201  # budget healthy
    pdb = await (await client.get(f"{PDBS}/web")).json()
    assert pdb["status"]["disruptionsAllowed"] == 0 and not pdb["status"].get("disruptedPods")


async def test_two_budgets_are_not_supported(client):
    await _pod(client, "a")
    await _pdb(client, allowed=1)
    code, _ = await _post(client, PDBS, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                         "metadata": {"name": "other"},
                                         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    assert code == 201
    code, status = await _post(client, f"{PODS}/a/eviction", eviction("a"))
    assert code == 500 and status["message"] == ("Internal error occurred: This pod has more than one "
                                                 "PodDisruptionBudget, which the eviction subresource does not support.")
