"""`mkp node add|list|stop|start|delete` on a running cluster, checked with the real kubectl."""

from __future__ import annotations

import json

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e




@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "1") as c:
        yield c


def _lease_renew_time(cluster, node: str) -> str:
    lease = json.loads(cluster.kubectl("get", "lease", node, "-n", "kube-node-lease", "-o", "json").stdout)
    return lease["spec"]["renewTime"]


def _list(cluster) -> dict[str, list[str]]:
    lines = cluster.mkp("node", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "COMPONENT", "PROCESS", "READY"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_add_picks_the_next_name_and_waits_until_ready(cluster):
    out = cluster.mkp("node", "add", "--fake").stdout
    assert out.strip() == "node/fake-node-2 added (Ready)"
    # Ready already when the command returns: no waiting here.
    node = json.loads(cluster.kubectl("get", "node", "fake-node-2", "-o", "json").stdout)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert _list(cluster)["fake-node-2"] == ["node-fake-node-2", "running", "True"]
    assert _list(cluster)["fake-node-1"] == ["kubelet", "running", "True"]


def test_add_with_a_name_and_capacity(cluster):
    cluster.mkp("node", "add", "--fake", "big", "--capacity", "cpu=64,memory=256Gi")
    cpu = cluster.kubectl("get", "node", "big", "-o", "jsonpath={.status.capacity.cpu}").stdout
    assert cpu == "64"
    again = cluster.mkp("node", "add", "--fake", "big", check=False)
    assert again.returncode != 0 and 'node "big" already exists' in again.stderr


def test_bad_input_is_refused_and_changes_nothing(cluster):
    before = _list(cluster)
    bad = cluster.mkp("node", "add", "--fake", "Bad_Name", check=False)
    assert bad.returncode != 0 and "RFC 1123" in bad.stderr
    bad = cluster.mkp("node", "add", "--fake", "x1", "--capacity", "cpu", check=False)
    assert bad.returncode != 0 and "name=quantity" in bad.stderr
    shared = cluster.mkp("node", "stop", "fake-node-1", check=False)
    assert shared.returncode != 0 and "shared fake-nodes process" in shared.stderr
    assert _list(cluster) == before


def test_stop_leaves_node_and_lease_stale_and_start_resumes(cluster):
    first = _wait(lambda: _lease_renew_time(cluster, "fake-node-2"), what="a lease")
    cluster.mkp("node", "stop", "fake-node-2")
    assert _list(cluster)["fake-node-2"][:2] == ["node-fake-node-2", "stopped"]
    stopped_at = _lease_renew_time(cluster, "fake-node-2")
    assert stopped_at >= first
    # The node's kubelet is gone: nobody renews its Lease any more (heartbeats are ~10 s
    # apart, so watch the Node object too, which stays as it was).
    assert cluster.kubectl("get", "node", "fake-node-2", "-o", "name").stdout.strip() == "node/fake-node-2"
    assert "node-fake-node-2" not in cluster.mkp("status").stdout
    cluster.mkp("node", "start", "fake-node-2")
    assert _list(cluster)["fake-node-2"][:2] == ["node-fake-node-2", "running"]
    _wait(lambda: _lease_renew_time(cluster, "fake-node-2") > stopped_at, timeout=30, what="lease renewed")


def test_delete_removes_the_node_and_its_process(cluster):
    cluster.mkp("node", "delete", "big")
    gone = cluster.kubectl("get", "node", "big", check=False)
    assert gone.returncode != 0 and 'nodes "big" not found' in gone.stderr
    assert "big" not in _list(cluster)
    assert not (cluster.home / "pids" / "node-big.pid").exists()


def test_added_nodes_survive_down_and_up(cluster):
    cluster.mkp("down")
    cluster.mkp("up", "--no-merge")
    nodes = _list(cluster)
    assert nodes["fake-node-2"][:2] == ["node-fake-node-2", "running"]
    assert "big" not in nodes


def test_single_process_mode_runs_every_component_in_one_process(tmp_path):
    """`mkp up --single-process --fake-nodes 2`: one process, and still a whole cluster."""
    from minikube_py import process

    with start_mkp_cluster(tmp_path, None, "--single-process", "--nodes", "0", "--fake-nodes", "2") as c:
        assert len(process.cluster_processes(c.home)) == 1
        c.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")

        def running():
            pods = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
            phases = [(p["status"].get("phase"), p["spec"].get("nodeName")) for p in pods]
            return phases if len(phases) == 3 and all(ph == "Running" and n for ph, n in phases) else None

        placed = _wait(running, timeout=30, what="3 Running pods")
        assert {n for _, n in placed} <= {"fake-node-1", "fake-node-2"}
        events = c.kubectl("get", "events", "--field-selector", "reason=Scheduled", "-o", "name").stdout
        assert len(events.splitlines()) == 3
        # A new fake-node count restarts the one process on the same store.
        c.mkp("up", "--single-process", "--fake-nodes", "3", "--no-merge")
        _wait(lambda: len(c.kubectl("get", "nodes", "-o", "name").stdout.split()) == 3, what="3 nodes")
        assert c.kubectl("get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}").stdout == "3"


def test_stopped_node_goes_not_ready_and_its_pods_are_replaced(tmp_path):
    """`mkp node stop` is a dead kubelet: after the grace period the node lifecycle
    controller marks the node NotReady and taints it, and its pods are evicted and
    replaced on the live node."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MKP_NODE_MONITOR_GRACE_PERIOD", "20s")  # fake nodes renew every 10 s
        with start_mkp_cluster(tmp_path, None, "--nodes", "0", "--fake-nodes", "1") as c:
            k = c.kubectl
            c.mkp("node", "add", "--fake")
            k("cordon", "fake-node-1")  # the first pods all land on fake-node-2
            tolerate = [{"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 2} for key in ("unreachable", "not-ready")]
            k("apply", "-f", "-", input=json.dumps({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}],
                                               "tolerations": tolerate}}}}))

            def placed(node: str):
                items = json.loads(k("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
                live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
                on = [p for p in live if p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running"]
                return on if len(on) == 2 else None

            _wait(lambda: placed("fake-node-2"), what="2 pods on fake-node-2")
            k("uncordon", "fake-node-1")
            c.mkp("node", "stop", "fake-node-2")

            def not_ready():
                line = next(line for line in k("get", "nodes").stdout.splitlines() if line.startswith("fake-node-2"))
                return "NotReady" in line

            _wait(not_ready, timeout=60, what="fake-node-2 NotReady")
            taints = json.loads(k("get", "node", "fake-node-2", "-o", "json").stdout)["spec"].get("taints") or []
            assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in [
                {"key": t["key"], "effect": t["effect"]} for t in taints]
            _wait(lambda: placed("fake-node-1"), timeout=60, what="2 replacement pods on fake-node-1")
            events = k("get", "events", "--field-selector", "reason=TaintManagerEviction", "-o", "name").stdout
            assert len(events.split()) >= 2
