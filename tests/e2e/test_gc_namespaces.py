"""Garbage collection, namespace deletion and default ServiceAccounts on `mkp up
--fake-nodes 2`, driven by the real kubectl."""

from __future__ import annotations

import json

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e




@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        yield c


def _items(cluster, *args: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)["items"]


def _deployment_with_pods(cluster, name: str, namespace: str = "default") -> None:
    cluster.kubectl("-n", namespace, "create", "deployment", name, "--image=nginx", "--replicas=2")
    _wait(lambda: len(_items(cluster, "-n", namespace, "pods", "-l", f"app={name}")) == 2, what=f"{name}'s pods")


def test_delete_deployment_removes_replicasets_and_pods(cluster):
    _deployment_with_pods(cluster, "bg")
    cluster.kubectl("delete", "deployment", "bg")
    _wait(lambda: not _items(cluster, "rs", "-l", "app=bg"), what="ReplicaSets gone")
    _wait(lambda: not _items(cluster, "pods", "-l", "app=bg"), what="pods gone")


def test_cascade_orphan_leaves_replicaset_and_pods_without_owner(cluster):
    _deployment_with_pods(cluster, "orph")
    cluster.kubectl("delete", "deployment", "orph", "--cascade=orphan")

    def orphaned() -> list[dict] | None:
        rs = _items(cluster, "rs", "-l", "app=orph")
        return rs if len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences") else None

    [rs] = _wait(orphaned, what="the ReplicaSet orphaned")
    assert cluster.kubectl("get", "deployment", "orph", check=False).returncode != 0
    pods = _items(cluster, "pods", "-l", "app=orph")
    assert len(pods) == 2
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)
    cluster.kubectl("delete", "rs", rs["metadata"]["name"])
    _wait(lambda: not _items(cluster, "pods", "-l", "app=orph"), what="orphaned pods collected with their rs")


def test_cascade_foreground_keeps_deployment_until_dependents_are_gone(cluster):
    _deployment_with_pods(cluster, "fg")
    uid = json.loads(cluster.kubectl("get", "deployment", "fg", "-o", "json").stdout)["metadata"]["uid"]
    # A blocking dependent with its own finalizer makes the foreground phase observable.
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fg-held", "namespace": "default", "finalizers": ["example.com/hold"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "fg",
                                              "uid": uid, "blockOwnerDeletion": True}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(held))
    cluster.kubectl("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
    _wait(lambda: not _items(cluster, "rs", "-l", "app=fg"), what="ReplicaSets gone")
    _wait(lambda: not _items(cluster, "pods", "-l", "app=fg"), what="pods gone")
    d = json.loads(cluster.kubectl("get", "deployment", "fg", "-o", "json").stdout)
    assert d["metadata"]["deletionTimestamp"]
    assert d["metadata"]["finalizers"] == ["foregroundDeletion"]
    cluster.kubectl("patch", "configmap", "fg-held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    _wait(lambda: cluster.kubectl("get", "deployment", "fg", check=False).returncode != 0, what="Deployment gone")
    assert cluster.kubectl("get", "configmap", "fg-held", check=False).returncode != 0


def test_new_namespace_gets_default_service_account(cluster):
    cluster.kubectl("create", "namespace", "sa-check")
    out = _wait(lambda: "default" in (o := cluster.kubectl("get", "sa", "-n", "sa-check").stdout) and o,
                what="default ServiceAccount")
    assert out.splitlines()[0].split() == ["NAME", "SECRETS", "AGE"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert "default" in cluster.kubectl("get", "sa", "-n", ns, "-o", "name").stdout


def test_delete_namespace_removes_everything_in_it(cluster):
    k = cluster.kubectl
    k("create", "ns", "t")
    _deployment_with_pods(cluster, "web", "t")
    k("-n", "t", "create", "configmap", "cfg", "--from-literal=a=b")
    k("-n", "t", "create", "secret", "generic", "sec", "--from-literal=a=b")
    result = k("delete", "ns", "t", timeout=120)
    assert 'namespace "t" deleted' in result.stdout
    assert k("get", "ns", "t", check=False).returncode != 0
    listed = k("get", "all,cm,secret,sa", "-n", "t", "-o", "name").stdout
    assert listed.strip() == ""
