"""The NetworkPolicy agent end to end: a real `mkp up` API server, pods created through
the API whose status.podIP is patched to the addresses of this test's pod namespaces
(see conftest), one agent per node applying its table in the test's own network
namespace, and real connections checked as policies and labels change."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from cni.netpol.agent import NetworkPolicyAgent, host_addresses
from minikube_py.client import PODS, ApiClient, SharedInformerFactory
from minikube_py.client.resources import NETWORKPOLICIES
from tests.cni.netpol.conftest import PodNet

PREFIX = "tn_netpol"
NODES = {"a": "tn-n0", "b": "tn-n0", "c": "tn-n1"}


async def eventually(check: Callable[[], bool], timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"{check} still false after {timeout}s")
        await asyncio.sleep(0.1)


async def create_pod(client: ApiClient, name: str, ip: str, node: str) -> None:
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": f"tn-{name}", "namespace": "default", "labels": {"app": name}},
                               "spec": {"nodeName": node, "containers": [
                                   {"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 80}]}]}},
                        "default")
    await client.patch(PODS, f"tn-{name}", {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}},
                       "default", subresource="status")


def netpol(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def test_agents_enforce_policies_from_the_api(podnet: PodNet, mkp_cluster) -> None:
    for name, (bridge, number) in {"a": (0, 2), "b": (0, 3), "c": (1, 2)}.items():
        podnet.add_pod(name, bridge, number)
    async with ApiClient.from_kubeconfig(mkp_cluster.kubeconfig, field_manager="tn-test") as client:
        for name in ("a", "b", "c"):
            await create_pod(client, name, podnet.ips[name], NODES[name])
        agents = [NetworkPolicyAgent(client, node, table_prefix=PREFIX, nft=podnet.nft) for node in ("tn-n0", "tn-n1")]
        for agent in agents:
            await agent.start()
        try:
            assert podnet.tables() == ["tn_netpol_tn_n0", "tn_netpol_tn_n1"]
            assert podnet.connect("a", "b") and podnet.connect("a", "c")

            await client.create(NETWORKPOLICIES, netpol("deny", {"podSelector": {}}), "default")
            await eventually(lambda: not podnet.connect("a", "b"))
            assert not podnet.connect("a", "c") and podnet.host_connect("b")
            assert not agents[0].allowed(podnet.ips["a"], podnet.ips["b"], 80, "TCP")
            assert agents[0].allowed("127.0.0.1", podnet.ips["b"], 80, "TCP")

            await client.create(NETWORKPOLICIES, netpol("from-a", {
                "podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}],
                                                "ports": [{"port": "http"}]}]}), "default")
            await eventually(lambda: podnet.connect("a", "c"))  # across nodes: tn-n1's table
            assert podnet.connect("a", "b") and not podnet.connect("a", "b", 8080) and not podnet.connect("c", "b")
            assert agents[1].allowed(podnet.ips["a"], podnet.ips["c"], 80, "TCP")

            # Level-triggered on pods too: a loses its label, and with it the way in.
            await client.patch(PODS, "tn-a", {"metadata": {"labels": {"app": "z"}}}, "default")
            await eventually(lambda: not podnet.connect("a", "b"))
            assert not agents[0].allowed(podnet.ips["a"], podnet.ips["b"], 80, "TCP")

            await client.delete(NETWORKPOLICIES, "deny", "default")
            await client.delete(NETWORKPOLICIES, "from-a", "default")
            await eventually(lambda: podnet.connect("a", "b"))
        finally:
            for agent in agents:
                await agent.stop()
        assert podnet.tables() == []


async def test_an_agent_without_nftables_only_answers(mkp_cluster) -> None:
    async with ApiClient.from_kubeconfig(mkp_cluster.kubeconfig, field_manager="tn-test") as client:
        await create_pod(client, "x", "10.244.250.2", "tn-n9")
        await client.create(NETWORKPOLICIES, netpol("deny", {"podSelector": {}}), "default")
        factory = SharedInformerFactory(client)  # shared, as the service proxy would
        agent = NetworkPolicyAgent(client, "tn-n9", table_prefix=PREFIX, nftables_enabled=False, factory=factory)
        factory.start()
        await agent.start()
        try:
            assert agent.applied is None
            assert not agent.allowed("10.244.250.3", "10.244.250.2", 80, "TCP")
            passes = agent.passes
            await client.delete(NETWORKPOLICIES, "deny", "default")
            await eventually(lambda: agent.allowed("10.244.250.3", "10.244.250.2", 80, "TCP"))
            assert agent.passes > passes
        finally:
            await agent.stop()
        # The informers are still the caller's and still running.
        await client.create(NETWORKPOLICIES, netpol("later", {"podSelector": {}}), "default")
        policies = factory.informer(NETWORKPOLICIES).lister
        await eventually(lambda: policies.get("later", "default") is not None)
        await factory.shutdown()


class GatedNft:
    """Stands in for nft: records scripts, and holds applies while the gate is closed."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.scripts: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def apply(self, script: str) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.gate.wait(10)
        with self.lock:
            self.in_flight -= 1
            self.scripts.append(script)

    def delete(self, table: str) -> None:
        self.scripts.append(f"delete {table}")


async def test_a_burst_of_changes_is_one_more_apply_never_two_at_once(mkp_cluster) -> None:
    nft = GatedNft()
    async with ApiClient.from_kubeconfig(mkp_cluster.kubeconfig, field_manager="tn-test") as client:
        await create_pod(client, "x", "10.244.250.2", "tn-n9")
        agent = NetworkPolicyAgent(client, "tn-n9", table_prefix=PREFIX, nft=nft)
        await agent.start()
        try:
            nft.gate.clear()
            await client.create(NETWORKPOLICIES, netpol("p0", {"podSelector": {}, "ingress": [{"ports": [{"port": 1000}]}]}), "default")
            await eventually(lambda: nft.in_flight == 1)  # p0's apply is held
            for i in range(1, 10):
                await client.create(NETWORKPOLICIES, netpol(f"p{i}", {"podSelector": {}, "ingress": [{"ports": [{"port": 1000 + i}]}]}), "default")
            await asyncio.sleep(0.5)  # the informer has seen them all: one key waits, re-added while held
            nft.gate.set()
            await eventually(lambda: bool(nft.scripts) and "default/p9" in nft.scripts[-1])
            await asyncio.sleep(0.3)
            assert len(nft.scripts) == 3  # the first pass, the held one, one for the burst
            assert nft.most_in_flight == 1
        finally:
            nft.gate.set()
            await agent.stop()
        assert nft.scripts[-1] == "delete tn_netpol_tn_n9"


@pytest.mark.parametrize(("nodes", "expected"), [
    pytest.param([], [], id="none"),
    pytest.param([{"spec": {"podCIDR": "10.244.255.0/24"},
                   "status": {"addresses": [{"type": "InternalIP", "address": "192.168.49.2"},
                                            {"type": "Hostname", "address": "mkp"}]}}],
                 ["192.168.49.2", "10.244.255.1"], id="address and gateway"),
    pytest.param([{"spec": {"podCIDRs": ["10.244.254.0/24", "fd00:1::/64"]}}], ["10.244.254.1", "fd00:1::1"],
                 id="dual-stack pod ranges"),
])
def test_host_addresses_are_node_addresses_and_gateways(nodes, expected):
    assert host_addresses(nodes) == expected
