"""What a learner sees: the real kubectl against the in-process API server with fake
nodes (RealClock, as `mkp up --fake-nodes` runs them).

kubectl runs as an asyncio subprocess: the server lives in this test's event loop, so a
blocking subprocess call would stall the very server kubectl is talking to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from minikube_py.client import ApiClient
from tests.conftest import require_tool
from tests.kubelet.support import create_bound_pod, eventually, pod_manifest, running_fake_nodes
from tests.minikube_py.client.conftest import InProcessServer


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
    }))
    return path


async def _kubectl(kubeconfig: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


async def test_kubectl_shows_ready_fake_nodes_and_their_pods(apiserver: InProcessServer, client: ApiClient,
                                                             tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", apiserver.url)
    async with running_fake_nodes(client, ["fake-node-1", "fake-node-2"]):
        nodes = _rows(await _kubectl(kubeconfig, "get", "nodes"))
        await create_bound_pod(client, pod_manifest("web"), "fake-node-2")

        async def running() -> list[list[str]] | None:
            rows = _rows(await _kubectl(kubeconfig, "get", "pods", "-o", "wide"))
            return rows if rows[1][2] == "Running" else None

        pods = await eventually(running)
        describe = await _kubectl(kubeconfig, "describe", "pod", "web")
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [(r[0], r[1], r[2], r[4]) for r in nodes[1:]] == [("fake-node-1", "Ready", "<none>", "v1.32.4"),
                                                              ("fake-node-2", "Ready", "<none>", "v1.32.4")]
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    name, ready, status, restarts, _age, ip, node, nominated, gates = pods[1]
    assert (name, ready, status, restarts, ip, node, nominated, gates) == (
        "web", "1/1", "Running", "0", "10.244.1.2", "fake-node-2", "<none>", "<none>")
    assert "Node:             fake-node-2/127.1.0.2" in describe
    assert "Started container web" in describe or "Events:" in describe
