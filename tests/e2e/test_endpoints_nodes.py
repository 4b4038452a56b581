"""End to end with the real kubectl on `mkp up --fake-nodes 2`: a Service's ready pods show
in `kubectl get endpointslices` / `kubectl get endpoints` and follow scaling; a node whose
kubelet died (registered Ready with a fresh Lease, never renewed) goes NotReady, is
tainted unreachable, and its pods are evicted and replaced on the live nodes.

The controller-manager's --node-monitor-grace-period comes from MKP_NODE_MONITOR_GRACE_PERIOD
in the environment `mkp up` passes to its components (20 s: the fake nodes renew their
Leases every 10 s, so they stay Ready)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
GRACE = "20s"
DEAD = "dead-node"




@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MKP_NODE_MONITOR_GRACE_PERIOD", GRACE)
        with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
            yield c


def deployment(name: str, replicas: int, tolerations: list[dict] | None = None) -> str:
    spec: dict = {"containers": [{"name": "app", "image": "nginx:1.27",
                                  "ports": [{"name": "http", "containerPort": 8080}]}]}
    if tolerations:
        spec["tolerations"] = tolerations
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})


def pods(cluster, app: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def ready_ips(cluster, app: str) -> list[str]:
    return sorted(p["status"]["podIP"] for p in pods(cluster, app)
                  if ready(p) and not p["metadata"].get("deletionTimestamp"))


def test_service_endpoints_follow_ready_pods_and_scaling(cluster):
    k = cluster.kubectl
    k("apply", "-f", "-", input=deployment("shop", 3))
    k("create", "service", "clusterip", "shop", "--tcp=80:8080")
    k("patch", "service", "shop", "-p", json.dumps({"spec": {"selector": {"app": "shop"},
                                                             "ports": [{"name": "web", "port": 80,
                                                                        "targetPort": "http"}]}}))

    def endpoints_match(count: int):
        ips = ready_ips(cluster, "shop")
        if len(ips) != count:
            return None
        endpoints = json.loads(k("get", "endpoints", "shop", "-o", "json").stdout)
        listed = sorted(a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])
        slices = json.loads(k("get", "endpointslices", "-l", "kubernetes.io/service-name=shop", "-o", "json").stdout)
        sliced = sorted(e["addresses"][0] for s in slices["items"] for e in s.get("endpoints") or []
                        if e["conditions"]["ready"])
        return ips if listed == ips and sliced == ips else None

    ips = _wait(lambda: endpoints_match(3), what="3 ready endpoints")
    table = k("get", "endpoints", "shop", "--no-headers").stdout.split()
    assert table[:2] == ["shop", ",".join(f"{ip}:8080" for ip in ips)]
    line = k("get", "endpointslices", "-l", "kubernetes.io/service-name=shop", "--no-headers").stdout.split()
    assert line[0].startswith("shop-") and line[1:3] == ["IPv4", "8080"] and sorted(line[3].split(",")) == ips
    k("scale", "deployment", "shop", "--replicas=5")
    _wait(lambda: endpoints_match(5), what="5 endpoints after scaling up")
    assert "+ 2 more..." in k("get", "endpoints", "shop").stdout  # kubectl prints three
    k("scale", "deployment", "shop", "--replicas=2")
    _wait(lambda: endpoints_match(2), what="2 endpoints after scaling down")
    body = json.loads(k("get", "endpointslices", "-l", "kubernetes.io/service-name=shop", "-o", "json").stdout)
    [item] = body["items"]
    assert item["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert {e["nodeName"] for e in item["endpoints"]} <= {"fake-node-1", "fake-node-2"}
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in item["endpoints"])


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _register_dead_node(k) -> None:
    """What a kubelet does when it registers, without ever coming back."""
    k("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": DEAD, "labels": {"kubernetes.io/hostname": DEAD, "kubernetes.io/os": "linux"}}}))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    status = {"capacity": resources, "allocatable": resources, "conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.99"}, {"type": "Hostname", "address": DEAD}]}
    k("patch", "node", DEAD, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))
    k("create", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": DEAD, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": DEAD, "leaseDurationSeconds": 40, "renewTime": _micro_now()}}))


def test_dead_node_goes_not_ready_and_its_pods_are_replaced(cluster):
    k = cluster.kubectl
    _register_dead_node(k)
    registered = time.monotonic()
    quick = [{"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": 2} for key in ("unreachable", "not-ready")]
    k("apply", "-f", "-", input=deployment("victims", 6, quick))

    def on_dead():
        here = [p for p in pods(cluster, "victims") if p["spec"].get("nodeName") == DEAD]
        return here or None

    stranded = {p["metadata"]["name"] for p in _wait(on_dead, what="pods scheduled on the dead node")}

    def not_ready():
        line = k("get", "nodes", DEAD, "--no-headers").stdout.split()
        return line if line[1] == "NotReady" else None

    _wait(not_ready, timeout=90, what="the dead node NotReady")
    # The 20 s grace period reached the controller-manager (its default is 50 s).
    assert time.monotonic() - registered < 45
    node = json.loads(k("get", "node", DEAD, "-o", "json").stdout)
    ready_condition = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready_condition["status"], ready_condition["reason"], ready_condition["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")

    def tainted():
        node = json.loads(k("get", "node", DEAD, "-o", "json").stdout)
        return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []} or None

    assert _wait(tainted, what="taints") >= {("node.kubernetes.io/unreachable", "NoExecute"),
                                             ("node.kubernetes.io/unreachable", "NoSchedule")}
    assert _wait(lambda: _tainted_fully(k), what="both taints") is True

    def replaced():
        current = pods(cluster, "victims")
        live = [p for p in current if not p["metadata"].get("deletionTimestamp")]
        if any(p["metadata"]["name"] in stranded for p in live):
            return None
        healthy = [p for p in live if ready(p) and p["spec"].get("nodeName") in ("fake-node-1", "fake-node-2")]
        return current if len(healthy) == 6 else None

    current = _wait(replaced, timeout=90, what="pods evicted and replaced on live nodes")
    evicted = [p for p in current if p["metadata"]["name"] in stranded]
    for pod in evicted:  # Terminating: no kubelet will ever confirm the deletion
        reasons = {c["type"]: c.get("reason") for c in pod["status"].get("conditions") or []}
        assert reasons.get("DisruptionTarget") == "DeletionByTaintManager"
    events = k("get", "events", "--field-selector", "reason=TaintManagerEviction", "-o", "json").stdout
    messages = {e["message"] for e in json.loads(events)["items"]}
    assert {f"Marking for deletion Pod default/{name}" for name in stranded} <= messages
    node_events = k("get", "events", "--field-selector", "reason=NodeNotReady", "-o", "json").stdout
    assert f"Node {DEAD} status is now: NodeNotReady" in {e["message"] for e in json.loads(node_events)["items"]}
    live_nodes = k("get", "nodes", "--no-headers").stdout
    assert all(" Ready " in line for line in live_nodes.splitlines() if line.startswith("fake-node-"))


def _tainted_fully(k) -> bool:
    node = json.loads(k("get", "node", DEAD, "-o", "json").stdout)
    return len(node["spec"].get("taints") or []) == 2
