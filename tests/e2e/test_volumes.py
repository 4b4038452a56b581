"""PersistentVolumes on `mkp up --fake-nodes 2` with the real kubectl: the default
`standard` class, dynamic local-path provisioning, static binding and reclaim.

The scheduler's VolumeBinding PreBind writes `volume.kubernetes.io/selected-node` on a
WaitForFirstConsumer claim (or pre-binds a static PV to it) before it binds the pod; should
a pod get a node without that, the dynamic test writes the annotation itself, exactly as
PreBind would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
SELECTED_NODE = "volume.kubernetes.io/selected-node"

DYNAMIC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  containers:
  - {name: app, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
"""

STATIC = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: archive, labels: {tier: archive}}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /srv/archive}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: archive-claim}
spec:
  storageClassName: ""
  selector: {matchLabels: {tier: archive}}
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
"""




@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "2") as c:
        yield c


def _get(cluster: Any, *what: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", *what, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _phase(cluster: Any, kind: str, name: str, phase: str) -> dict[str, Any] | None:
    obj = _get(cluster, kind, name)
    return obj if obj and obj.get("status", {}).get("phase") == phase else None


def test_standard_is_the_default_storage_class(cluster: Any) -> None:
    out = _wait(lambda: cluster.kubectl("get", "sc").stdout, what="storage classes")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert len(rows) == 1
    assert rows[0].split()[:6] == ["standard", "(default)", "rancher.io/local-path", "Delete",
                                  "WaitForFirstConsumer", "false"]


def test_claim_without_class_is_provisioned_for_its_pod_and_deleted_with_it(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=DYNAMIC)
    claim = _get(cluster, "pvc", "data")
    assert claim["spec"]["storageClassName"] == "standard"
    uid = claim["metadata"]["uid"]
    pod = _wait(lambda: (p := _get(cluster, "pod", "writer")) and p["spec"].get("nodeName") and p,
                what="the pod to be scheduled")
    node = pod["spec"]["nodeName"]
    annotations = (_get(cluster, "pvc", "data") or {})["metadata"].get("annotations") or {}
    if SELECTED_NODE not in annotations:  # standing in for the scheduler's PreBind
        k("annotate", "pvc", "data", f"{SELECTED_NODE}={node}")
    bound = _wait(lambda: _phase(cluster, "pvc", "data", "Bound"), what="the claim to be Bound")
    assert bound["spec"]["volumeName"] == f"pvc-{uid}"
    assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    pv = _wait(lambda: _phase(cluster, "pv", f"pvc-{uid}", "Bound"), what="the PV to be Bound")
    path = Path(pv["spec"]["hostPath"]["path"])
    assert path == cluster.home / "storage" / f"pvc-{uid}_default_data"
    assert path.is_dir()
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]

    rows = {line.split()[0]: line.split() for line in k("get", "pv,pvc").stdout.splitlines()
            if line and not line.startswith("NAME")}
    assert rows[f"persistentvolume/pvc-{uid}"][1:7] == ["1Gi", "RWO", "Delete", "Bound", "default/data", "standard"]
    assert rows["persistentvolumeclaim/data"][1:6] == ["Bound", f"pvc-{uid}", "1Gi", "RWO", "standard"]
    events = k("get", "events", "--field-selector", "involvedObject.name=data", "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= reasons

    k("delete", "pod", "writer", "--wait=true", "--timeout=60s")
    k("delete", "pvc", "data", "--wait=true", "--timeout=60s")
    _wait(lambda: _get(cluster, "pv", f"pvc-{uid}") is None, what="the PV to be deleted")
    assert not path.exists()


def test_static_volume_binds_by_selector_and_is_released_when_retained(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=STATIC)
    bound = _wait(lambda: _phase(cluster, "pvc", "archive-claim", "Bound"), what="the claim to be Bound")
    assert bound["spec"]["volumeName"] == "archive"
    assert bound["status"]["capacity"] == {"storage": "5Gi"}
    row = k("get", "pv", "archive", "--no-headers").stdout.split()
    assert row[1:6] == ["5Gi", "RWO", "Retain", "Bound", "default/archive-claim"]
    k("delete", "pvc", "archive-claim", "--wait=true", "--timeout=60s")
    released = _wait(lambda: _phase(cluster, "pv", "archive", "Released"), what="the PV to be Released")
    assert released["spec"]["claimRef"]["name"] == "archive-claim"
    assert k("get", "pv", "archive", "--no-headers").stdout.split()[4] == "Released"


LOCAL_STATIC = """
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-static}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /srv/local-static}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [fake-node-2]}]
"""

LOCAL_CONSUMER = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: local-claim}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: local-reader}
spec:
  nodeSelector: {kubernetes.io/hostname: fake-node-2}
  containers:
  - {name: app, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: local-claim}}
"""


def test_wait_for_first_consumer_claim_binds_the_static_volume_on_its_pods_node(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=LOCAL_STATIC)
    _wait(lambda: _phase(cluster, "pv", "local-static", "Available"), what="the PV to be Available")
    k("apply", "-f", "-", input=LOCAL_CONSUMER)
    bound = _wait(lambda: _phase(cluster, "pvc", "local-claim", "Bound"), what="the claim to be Bound")
    assert bound["spec"]["volumeName"] == "local-static"
    pod = _wait(lambda: (p := _get(cluster, "pod", "local-reader")) and p["spec"].get("nodeName") and p,
                what="the pod to be scheduled")
    assert pod["spec"]["nodeName"] == "fake-node-2"
    pv = _wait(lambda: _phase(cluster, "pv", "local-static", "Bound"), what="the PV to be Bound")
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
