"""`kubectl drain` through the eviction subresource, with a PodDisruptionBudget."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        yield c


def _pods(cluster) -> list[dict]:
    items = json.loads(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _ready_pods(cluster, count: int):
    pods = _pods(cluster)
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p["status"].get("conditions") or [])]
    return ready if len(ready) == count else None


def _pdb_status(cluster) -> dict:
    return json.loads(cluster.kubectl("get", "pdb", "web", "-o", "json").stdout).get("status") or {}


def _evict(cluster, pod: str) -> tuple[int, dict]:
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": "default"}}).encode()
    request = urllib.request.Request(f"{cluster.server}/api/v1/namespaces/default/pods/{pod}/eviction", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_eviction_is_refused_while_the_budget_allows_no_disruption(cluster):
    k = cluster.kubectl
    k("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    k("create", "pdb", "web", "--selector=app=web", "--min-available=3")
    pods = _wait(lambda: _ready_pods(cluster, 3), what="3 ready pods")
    _wait(lambda: _pdb_status(cluster).get("currentHealthy") == 3, what="the PDB controller's status")
    code, status = _evict(cluster, pods[0]["metadata"]["name"])
    assert code == 429 and status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget web needs 3 healthy pods and has 3 "
                                                       "currently"}]
    assert len(_pods(cluster)) == 3
    code, status = _evict(cluster, "no-such-pod")
    assert code == 404 and status["reason"] == "NotFound"


def test_drain_evicts_within_the_budget_and_pods_move(cluster):
    k = cluster.kubectl
    k("patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
    _wait(lambda: _pdb_status(cluster).get("disruptionsAllowed") == 1, what="one disruption allowed")
    on_node1 = [p for p in _pods(cluster) if p["spec"].get("nodeName") == "fake-node-1"]
    out = k("drain", "fake-node-1", "--ignore-daemonsets", "--timeout=60s").stdout
    assert "node/fake-node-1 drained" in out
    for pod in on_node1:
        assert f"pod/{pod['metadata']['name']} evicted" in out
    assert "SchedulingDisabled" in k("get", "node", "fake-node-1").stdout
    moved = _wait(lambda: _ready_pods(cluster, 3), what="3 ready pods again")
    assert {p["spec"]["nodeName"] for p in moved} == {"fake-node-2"}
    # The evicted pods are gone, so the PDB controller drops them from disruptedPods.
    _wait(lambda: not _pdb_status(cluster).get("disruptedPods") and _pdb_status(cluster).get("currentHealthy") == 3,
          what="disruptedPods cleared")
