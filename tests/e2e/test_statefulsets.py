"""A StatefulSet on `mkp up --fake-nodes 3`, driven by the real kubectl: ordered creation
(each pod only after the previous one is Ready for minReadySeconds), claims per pod,
a rolling update in reverse ordinal order, rollout history and undo, scale down that
keeps the claims.

The claims use a StorageClass nobody provisions for (WaitForFirstConsumer), so the
scheduler places the pods and the claims stay Pending: no PV provisioner is involved.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
MANIFEST = Path(__file__).parent / "manifests" / "statefulset.yaml"
NAMES = ["web-0", "web-1", "web-2"]




def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ready_since(pod: dict) -> datetime:
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "True", pod["metadata"]["name"]
    return _time(cond["lastTransitionTime"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "3") as c:
        yield c


def _get(cluster: Any, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _pods(cluster: Any) -> dict[str, dict]:
    items = _get(cluster, "pods", "-l", "app=nginx")["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def _images(cluster: Any) -> dict[str, str]:
    return {n: p["spec"]["containers"][0]["image"] for n, p in _pods(cluster).items()}


def _events(cluster: Any, reason: str) -> list[str]:
    items = _get(cluster, "events", "--field-selector", f"involvedObject.name=web,reason={reason}")["items"]
    return [e["message"] for e in sorted(items, key=lambda e: e["metadata"]["name"])]


def _rollout(cluster: Any) -> str:
    return cluster.kubectl("rollout", "status", "statefulset/web", "--timeout=150s", timeout=170).stdout


def test_statefulset_lifecycle_with_kubectl(cluster: Any) -> None:
    k = cluster.kubectl
    k("apply", "-f", str(MANIFEST))
    assert "partitioned roll out complete: 3 new pods have been updated" in _rollout(cluster)
    assert "3/3" in k("get", "statefulset", "web").stdout

    # Ordered creation: web-(n+1) was created only after web-n had been Ready for
    # minReadySeconds (2 s), which second-precision timestamps still show.
    pods = _pods(cluster)
    assert sorted(pods) == NAMES
    for before, after in zip(NAMES, NAMES[1:], strict=False):
        created = _time(pods[after]["metadata"]["creationTimestamp"])
        assert created - _ready_since(pods[before]) >= timedelta(seconds=2), (before, after)
    for name, pod in pods.items():
        assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "nginx"
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == name
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == name[-1]
        assert pod["spec"]["volumes"][0] == {"name": "www", "persistentVolumeClaim": {"claimName": f"www-{name}"}}
    assert _events(cluster, "SuccessfulCreate") == [
        "create Claim www-web-0 Pod web-0 in StatefulSet web success", "create Pod web-0 in StatefulSet web successful",
        "create Claim www-web-1 Pod web-1 in StatefulSet web success", "create Pod web-1 in StatefulSet web successful",
        "create Claim www-web-2 Pod web-2 in StatefulSet web success", "create Pod web-2 in StatefulSet web successful"]
    claims = _get(cluster, "pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all(c["metadata"]["labels"] == {"app": "nginx"} for c in claims)
    # Each claim was provisioned by local-path on its pod's node and bound.
    assert {c["metadata"]["name"]: c["status"]["phase"] for c in claims} == {f"www-{n}": "Bound" for n in NAMES}
    nodes = {name: pod["spec"]["nodeName"] for name, pod in pods.items()}
    for claim in claims:
        owner = claim["metadata"]["name"].removeprefix("www-")
        assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == nodes[owner]

    # An image update replaces web-2, then web-1, then web-0.
    k("set", "image", "statefulset/web", "nginx=nginx:1.25")
    assert "partitioned roll out complete: 3 new pods have been updated" in _rollout(cluster)
    _wait(lambda: _images(cluster) == dict.fromkeys(NAMES, "nginx:1.25"), what="all pods on nginx:1.25")
    assert _events(cluster, "SuccessfulDelete") == [f"delete Pod {n} in StatefulSet web successful"
                                                   for n in reversed(NAMES)]
    status = _wait(lambda: (s := _get(cluster, "statefulset", "web")["status"])["currentRevision"] == s[
        "updateRevision"] and s, what="the update revision to become current")
    assert status["updatedReplicas"] == status["currentReplicas"] == 3

    history = k("rollout", "history", "statefulset/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "nginx:1.24" in k("rollout", "history", "statefulset/web", "--revision=1").stdout
    revisions = _get(cluster, "controllerrevisions")["items"]
    assert all(r["metadata"]["ownerReferences"][0]["name"] == "web" for r in revisions)
    assert {r["metadata"]["labels"]["controller.kubernetes.io/hash"] for r in revisions} == \
        {r["metadata"]["name"].removeprefix("web-") for r in revisions}

    # Undo goes back to nginx:1.24 (again in reverse order) as revision 3.
    assert "statefulset.apps/web rolled back" in k("rollout", "undo", "statefulset/web").stdout
    _rollout(cluster)
    _wait(lambda: _images(cluster) == dict.fromkeys(NAMES, "nginx:1.24"), timeout=150, what="rollback to 1.24")
    assert sorted(r["revision"] for r in _get(cluster, "controllerrevisions")["items"]) == [2, 3]

    # Scale to 1: web-2 then web-1 go; every claim stays.
    k("scale", "statefulset/web", "--replicas=1")
    _wait(lambda: [p["metadata"]["name"] for p in _get(cluster, "pods", "-l", "app=nginx")["items"]] == ["web-0"],
          timeout=120, what="only web-0 left")
    assert sorted(c["metadata"]["name"] for c in _get(cluster, "pvc")["items"]) == ["www-web-0", "www-web-1",
                                                                                     "www-web-2"]
    assert "1/1" in k("get", "statefulset", "web").stdout
