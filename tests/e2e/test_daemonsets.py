"""DaemonSets on `mkp up --fake-nodes 3` with the real kubectl: one pod per node, taints
(NoSchedule keeps the running pod, NoExecute removes it), nodeSelector, and a rolling
image update followed by `kubectl rollout status|history|undo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e
MANIFESTS = Path(__file__).parent / "manifests"
NODES = ("fake-node-1", "fake-node-2", "fake-node-3")




@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "0", "--fake-nodes", "3") as c:
        _wait(lambda: len(c.kubectl("get", "nodes", "-o", "name").stdout.split()) == 3, what="3 nodes")
        yield c


def _ds_row(cluster, name: str) -> list[str]:
    lines = cluster.kubectl("get", "ds", name).stdout.splitlines()
    return lines[1].split()


def _counts(cluster, name: str) -> tuple[int, ...]:
    """DESIRED CURRENT READY UP-TO-DATE AVAILABLE as `kubectl get ds` prints them."""
    return tuple(int(v) for v in _ds_row(cluster, name)[1:6])


def _pods(cluster, app: str) -> list[dict]:
    items = json.loads(cluster.kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _pods_by_node(cluster, app: str) -> dict[str, list[str]]:
    by_node: dict[str, list[str]] = {}
    for pod in _pods(cluster, app):
        by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod["metadata"]["name"])
    return by_node


def test_one_pod_per_node_and_kubectl_get_ds_columns(cluster):
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "daemonset.yaml"))
    _wait(lambda: _counts(cluster, "node-agent") == (3, 3, 3, 3, 3), what="DESIRED 3 CURRENT 3 READY 3 ...")
    header = k("get", "ds").stdout.splitlines()[0].split()
    assert header[:8] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR"]
    by_node = _pods_by_node(cluster, "node-agent")
    assert sorted(by_node) == list(NODES) and all(len(v) == 1 for v in by_node.values())
    pod = _pods(cluster, "node-agent")[0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert "controller-revision-hash" in pod["metadata"]["labels"]
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    events = k("get", "events", "--field-selector", "involvedObject.kind=DaemonSet").stdout
    assert "SuccessfulCreate" in events and "Created pod: node-agent-" in events


def test_noschedule_taint_keeps_pod_noexecute_taint_removes_it(cluster):
    k = cluster.kubectl
    _wait(lambda: _counts(cluster, "node-agent") == (3, 3, 3, 3, 3), what="the DaemonSet ready")
    try:
        before = _pods_by_node(cluster, "node-agent")["fake-node-1"]
        k("taint", "nodes", "fake-node-1", "dedicated=db:NoSchedule")
        _wait(lambda: _counts(cluster, "node-agent")[0] == 2, what="DESIRED 2 after the NoSchedule taint")
        assert _pods_by_node(cluster, "node-agent").get("fake-node-1") == before
        described = k("describe", "ds", "node-agent").stdout
        assert "Number of Nodes Misscheduled: 1" in described

        k("taint", "nodes", "fake-node-2", "dedicated=db:NoExecute")
        _wait(lambda: "fake-node-2" not in _pods_by_node(cluster, "node-agent"), what="the pod on fake-node-2 gone")
        _wait(lambda: _counts(cluster, "node-agent")[:2] == (1, 1), what="DESIRED 1 CURRENT 1")
        assert _pods_by_node(cluster, "node-agent").get("fake-node-1") == before
    finally:
        k("taint", "nodes", "fake-node-1", "dedicated-", check=False)
        k("taint", "nodes", "fake-node-2", "dedicated-", check=False)
    _wait(lambda: _counts(cluster, "node-agent") == (3, 3, 3, 3, 3), what="the pod back on fake-node-2")


def test_node_selector_restricts_to_labelled_nodes(cluster):
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "daemonset-selector.yaml"))
    _wait(lambda: len(_ds_row(cluster, "gpu-agent")) > 6 and _counts(cluster, "gpu-agent") == (0, 0, 0, 0, 0),
          what="gpu-agent with no eligible node")
    assert "accelerator=gpu" in _ds_row(cluster, "gpu-agent")
    try:
        k("label", "nodes", "fake-node-2", "fake-node-3", "accelerator=gpu")
        _wait(lambda: _counts(cluster, "gpu-agent") == (2, 2, 2, 2, 2), what="gpu-agent on two labelled nodes")
        assert sorted(_pods_by_node(cluster, "gpu-agent")) == ["fake-node-2", "fake-node-3"]
        k("label", "nodes", "fake-node-3", "accelerator-")
        _wait(lambda: sorted(_pods_by_node(cluster, "gpu-agent")) == ["fake-node-2"], what="pod left fake-node-3")
    finally:
        k("label", "nodes", "fake-node-2", "fake-node-3", "accelerator-", check=False)
        k("delete", "-f", str(MANIFESTS / "daemonset-selector.yaml"), check=False)


def test_image_update_rolls_through_then_history_and_undo(cluster):
    k = cluster.kubectl
    _wait(lambda: _counts(cluster, "node-agent") == (3, 3, 3, 3, 3), what="the DaemonSet ready")
    k("set", "image", "ds/node-agent", "agent=busybox:1.37")
    out = k("rollout", "status", "ds/node-agent", "--timeout=90s").stdout
    assert 'daemon set "node-agent" successfully rolled out' in out
    pods = _pods(cluster, "node-agent")
    assert len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.37"}
    assert _counts(cluster, "node-agent") == (3, 3, 3, 3, 3)
    history = k("rollout", "history", "ds/node-agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    revisions = json.loads(k("get", "controllerrevisions", "-o", "json").stdout)["items"]
    assert sorted(r["revision"] for r in revisions if r["metadata"]["name"].startswith("node-agent-")) == [1, 2]
    assert "busybox:1.36" in k("rollout", "history", "ds/node-agent", "--revision=1").stdout

    k("rollout", "undo", "ds/node-agent")
    k("rollout", "status", "ds/node-agent", "--timeout=90s")
    _wait(lambda: {p["spec"]["containers"][0]["image"] for p in _pods(cluster, "node-agent")} == {"busybox:1.36"}
          and len(_pods(cluster, "node-agent")) == 3, what="pods back on busybox:1.36")
    history = k("rollout", "history", "ds/node-agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    # kubectl compares the revision's data byte for byte with the patch it computes
    out = k("rollout", "undo", "ds/node-agent", "--to-revision=3").stdout
    assert "skipped rollback (current template already matches revision 3)" in out
    events = k("get", "events", "--field-selector", "involvedObject.kind=DaemonSet").stdout
    assert "SuccessfulDelete" in events and "Deleted pod: node-agent-" in events


def test_deleting_the_daemonset_removes_its_pods_and_revisions(cluster):
    k = cluster.kubectl
    k("apply", "-f", str(MANIFESTS / "daemonset.yaml"))
    _wait(lambda: len(_pods(cluster, "node-agent")) == 3, what="the DaemonSet's pods")
    k("delete", "ds", "node-agent")
    _wait(lambda: not _pods(cluster, "node-agent"), what="the pods garbage collected")

    def revisions_left() -> list[str]:
        items = json.loads(k("get", "controllerrevisions", "-o", "json").stdout)["items"]
        return [r["metadata"]["name"] for r in items if r["metadata"]["name"].startswith("node-agent-")]
    _wait(lambda: not revisions_left(), what="the ControllerRevisions garbage collected")
