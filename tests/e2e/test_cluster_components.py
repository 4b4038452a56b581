"""`mkp up --fake-nodes N` runs the controller-manager and fake nodes as their own
processes, talking to the API server only through the cluster kubeconfig."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import start_mkp_cluster

pytestmark = pytest.mark.e2e
MANIFESTS = Path(__file__).parent / "manifests"


def _wait(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--fake-nodes", "3") as c:
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
