"""End to end with the real kubectl on `mkp up --fake-nodes 2`: a pod's
WaitForFirstConsumer claim is bound where the scheduler puts the pod, through the
scheduler's PreBind, the PV controller and the local-path provisioner (dynamic), or the
scheduler choosing a local PV (static)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MkpCluster, start_mkp_cluster, wait_until

pytestmark = pytest.mark.e2e
SELECTED_NODE = "volume.kubernetes.io/selected-node"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MkpCluster]:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        wait_until(lambda: c.kubectl("get", "nodes").stdout.count(" Ready ") == 2, what="2 Ready nodes")
        yield c


def apply(cluster: MkpCluster, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def claim(name: str, storage_class: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def pod(name: str, claim_name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}}


def get(cluster: MkpCluster, *args: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def running_on(cluster: MkpCluster, name: str) -> str | None:
    p = get(cluster, "pod", name)
    return p["spec"].get("nodeName") if p.get("status", {}).get("phase") == "Running" else None


def test_dynamic_claim_is_provisioned_on_the_pods_node(cluster: MkpCluster) -> None:
    apply(cluster, claim("dyn"), pod("dyn-user", "dyn"))   # the default class: standard, WaitForFirstConsumer
    node = wait_until(lambda: running_on(cluster, "dyn-user"), what="dyn-user Running")
    pvc = get(cluster, "pvc", "dyn")
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["metadata"]["annotations"][SELECTED_NODE] == node
    pv = get(cluster, "pv", pvc["spec"]["volumeName"])
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [node]
    scheduled = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=dyn-user,reason=Scheduled",
                                "-o", "jsonpath={.items[*].message}").stdout
    assert scheduled == f"Successfully assigned default/dyn-user to {node}"


def test_static_local_pv_pulls_the_pod_to_its_node(cluster: MkpCluster) -> None:
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-static"},
          "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "local-on-2"},
          "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local-static",
                   "persistentVolumeReclaimPolicy": "Retain", "local": {"path": "/mnt/disk"},
                   "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                       {"key": "kubernetes.io/hostname", "operator": "In", "values": ["fake-node-2"]}]}]}}}}
    apply(cluster, sc, pv, claim("static", "local-static"), pod("static-user", "static"))
    assert wait_until(lambda: running_on(cluster, "static-user"), what="static-user Running") == "fake-node-2"
    pvc = get(cluster, "pvc", "static")
    assert (pvc["status"]["phase"], pvc["spec"]["volumeName"]) == ("Bound", "local-on-2")
    assert SELECTED_NODE not in (pvc["metadata"].get("annotations") or {})   # bound, not provisioned
    bound = get(cluster, "pv", "local-on-2")
    assert bound["spec"]["claimRef"]["name"] == "static" and bound["status"]["phase"] == "Bound"
