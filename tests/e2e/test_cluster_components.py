"""`mkp up --fake-nodes N` runs the controller-manager and fake nodes as their own
processes, talking to the API server only through the cluster kubeconfig."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
MANIFESTS = Path(__file__).parent / "manifests"




@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "3") as c:
        yield c


def test_components_run_and_fake_nodes_are_ready(cluster):
    status = cluster.mkp("status").stdout
    for component in ("apiserver", "controller-manager", "kubelet"):
        assert re.search(rf"^{component}\s+pid \d+\s+running", status, re.M), status
    nodes = _wait(lambda: [line for line in cluster.kubectl("get", "nodes").stdout.splitlines()[1:]
                           if " Ready " in line] if len(cluster.kubectl("get", "nodes").stdout.splitlines()) == 4
                  else None, what="3 Ready nodes")
    assert len(nodes) == 3 and all("v1.32.4" in line for line in nodes)


def test_deployment_gets_a_replicaset_and_pods(cluster):
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "deployment.yaml"))

    def replicaset():
        items = json.loads(k("get", "rs", "-l", "app=order-service", "-o", "json").stdout)["items"]
        return items[0] if items and (items[0].get("status") or {}).get("replicas") == 3 else None

    rs = _wait(replicaset, what="the ReplicaSet with 3 replicas")
    assert rs["metadata"]["name"].startswith("order-service-")
    assert rs["metadata"]["labels"]["pod-template-hash"] in rs["metadata"]["name"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pods = json.loads(k("get", "pods", "-l", "app=order-service", "-o", "json").stdout)["items"]
    assert len(pods) == 3 and all(p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"] for p in pods)
    events = k("get", "events").stdout
    assert "ScalingReplicaSet" in events and "SuccessfulCreate" in events


def _pods(cluster) -> list[dict]:
    return json.loads(cluster.kubectl("get", "pods", "-l", "app=order-service", "-o", "json").stdout)["items"]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def test_rolling_update_keeps_three_available_and_at_most_four_pods(cluster):
    """The seed's Deployment (3 replicas, maxSurge 1, maxUnavailable 0) rolls from v1 to
    v2: sampled throughout, never below 3 ready pods nor above 4 pods that are not being
    deleted; then history, undo to v1's ReplicaSet, pause/resume and scale."""
    import subprocess

    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    k("rollout", "status", "deployment/order-service", "--timeout=60s")
    first_rs = {p["metadata"]["labels"]["pod-template-hash"] for p in _pods(cluster)}
    k("set", "image", "deployment/order-service", "order-service=walmart/order-service:2.2.0")
    status = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", str(cluster.kubeconfig), "rollout", "status",
                               "deployment/order-service", "--timeout=60s"], stdout=subprocess.PIPE, text=True)
    samples = 0
    while status.poll() is None:
        live = [p for p in _pods(cluster) if not p["metadata"].get("deletionTimestamp")]
        assert len(live) <= 4, [p["metadata"]["name"] for p in live]
        assert sum(1 for p in live if _ready(p)) >= 3
        samples += 1
    assert status.returncode == 0 and samples > 0
    pods = _pods(cluster)
    assert len(pods) == 3 and all(p["spec"]["containers"][0]["image"].endswith(":2.2.0") for p in pods)
    history = k("rollout", "history", "deployment/order-service").stdout
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M)
    assert k("rollout", "undo", "deployment/order-service").stdout.strip() == "deployment.apps/order-service rolled back"
    k("rollout", "status", "deployment/order-service", "--timeout=60s")
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in _pods(cluster)} == first_rs
    k("rollout", "pause", "deployment/order-service")
    k("set", "image", "deployment/order-service", "order-service=walmart/order-service:3.0.0")
    time.sleep(1)
    assert all(p["spec"]["containers"][0]["image"].endswith(":2.1.0") for p in _pods(cluster))
    k("rollout", "resume", "deployment/order-service")
    k("rollout", "status", "deployment/order-service", "--timeout=60s")
    k("scale", "deployment/order-service", "--replicas=5")
    _wait(lambda: len([p for p in _pods(cluster) if _ready(p)]) == 5, what="5 ready pods")


def test_unschedulable_pod_gets_the_real_failed_scheduling_message(cluster):
    k = cluster.kubectl
    k("run", "big", "--image=nginx", "--overrides",
      '{"spec":{"containers":[{"name":"big","image":"nginx","resources":{"requests":{"cpu":"64"}}}]}}')
    k("taint", "node", "fake-node-1", "dedicated=db:NoSchedule")
    try:
        _wait(lambda: "1 node(s) had untolerated taint {dedicated: db}, 2 Insufficient cpu"
              in k("describe", "pod", "big").stdout, what="FailedScheduling with the taint")
        assert "0/3 nodes are available" in k("describe", "pod", "big").stdout
        why = cluster.mkp("explain", "schedule", "big").stdout
        assert "fake-node-1: rejected by TaintToleration" in why and "Insufficient cpu" in why
    finally:
        k("taint", "node", "fake-node-1", "dedicated-")
        k("delete", "pod", "big", "--wait=false")
