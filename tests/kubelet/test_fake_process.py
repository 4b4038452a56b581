"""Fake nodes as a process and at scale: `python -m kubelet.fake` joins a cluster and
stops cleanly on SIGTERM; hundreds of pods on many nodes cost one status write each."""

from __future__ import annotations

import asyncio
import signal
import sys

from minikube_py.client import LEASES, NODES, PODS, ApiClient
from tests.conftest import REPO_ROOT
from tests.kubelet.support import eventually, pod_manifest, running_fake_nodes
from tests.minikube_py.client.conftest import InProcessServer


async def test_process_registers_nodes_and_stops_on_sigterm(apiserver: InProcessServer, client: ApiClient) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubelet.fake", "--server", apiserver.url, "--nodes", "2", "--capacity", "cpu=4",
        cwd=str(REPO_ROOT), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async def registered() -> list[dict] | None:
            nodes = (await client.list(NODES))["items"]
            return nodes if len(nodes) == 2 else None

        nodes = await eventually(registered, timeout=30)
        assert sorted(n["metadata"]["name"] for n in nodes) == ["fake-node-1", "fake-node-2"]
        assert {n["status"]["capacity"]["cpu"] for n in nodes} == {"4"}
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert (await client.list(NODES))["items"], "nodes stay when their kubelet stops"


async def test_many_nodes_and_pods_cost_one_status_write_per_pod(apiserver: InProcessServer,
                                                                 client: ApiClient) -> None:
    nodes, per_node = 50, 10
    names = [f"n{i}" for i in range(nodes)]
    async with running_fake_nodes(client, names, record_events=False, heartbeat=3600,
                                  status_report_frequency=3600) as fake:
        await eventually(lambda: _leases(client, nodes))  # registration done: the rest is pods
        before = apiserver.storage.current_revision()
        for start in range(0, nodes * per_node, 50):
            await asyncio.gather(*(client.create(PODS, pod_manifest(f"p{i}", nodeName=names[i % nodes]))
                                   for i in range(start, start + 50)))

        async def all_running() -> bool:
            pods = fake.pods.informer.store.items()
            return sum(p["status"].get("phase") == "Running" for p in pods) == nodes * per_node

        await eventually(all_running, timeout=60)
        writes = apiserver.storage.current_revision() - before
    assert writes == 2 * nodes * per_node  # each pod: its create, then one status write
    ips = {p["status"]["podIP"] for p in fake.pods.informer.store.items()}
    assert len(ips) == nodes * per_node


async def _leases(client: ApiClient, count: int) -> bool:
    return len((await client.list(LEASES, "kube-node-lease"))["items"]) == count
