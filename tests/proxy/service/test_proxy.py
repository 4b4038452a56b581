"""The service proxy on real sockets: a node's proxy against the real API server,
backends on 127.x addresses, clients connecting to ClusterIPs, NodePorts and
load-balancer addresses as pods and host clients would (loopback mode).

Every test runs on both event loops, asyncio's and uvloop's (what `mkp kube-proxy` runs on):
their transports differ in flow control and half-close details."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop

from minikube_py.client import ENDPOINTSLICES, SERVICES, ApiClient
from tests.proxy.service.harness import (
    NS,
    endpoint_slice,
    fetch_name,
    proxy_env,
    random_loopback,
    service,
    udp_ask,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore:Overriding the \"event_loop_policy\":DeprecationWarning")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


async def test_cluster_ip_round_robins_over_ready_endpoints(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        b = await env.backend("b", port=a.port)  # a slice carries one port number for all
        svc = await env.create_service(service("web"))
        ip = svc["spec"]["clusterIP"]
        await env.put_slice(endpoint_slice("web", [a, b]))
        await wait_for(lambda: env.listening(ip, 8080), message="ClusterIP listener")
        names = [await fetch_name(ip, 8080) for _ in range(6)]
        assert sorted(set(names)) == ["a", "b"]
        assert names[0::2] == [names[0]] * 3 and names[1::2] == [names[1]] * 3  # strict alternation


async def test_no_endpoints_refuses_and_unready_endpoint_stops_getting_new_connections(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        b = await env.backend("b", port=a.port)
        svc = await env.create_service(service("web"))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.proxy.plan(f"{NS}/web").frontends, message="service cached")
        with pytest.raises(ConnectionRefusedError):  # no endpoints: the kernel refuses (no listener)
            await asyncio.open_connection(ip, 8080)
        await env.put_slice(endpoint_slice("web", [a, b]))
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        reader, writer = await asyncio.open_connection(ip, 8080)  # an established connection to keep
        first = (await reader.readline()).decode().strip()
        survivor = first
        # The endpoint that served it turns unready: new connections avoid it within 1 s.
        started = time.monotonic()
        await env.put_slice(endpoint_slice("web", [a, b], ready={survivor: False}))
        other = "b" if survivor == "a" else "a"

        async def only_other() -> bool:
            return all([await fetch_name(ip, 8080) == other for _ in range(4)])

        await wait_for(only_other, timeout=1.0, message="new connections to the ready endpoint only")
        assert time.monotonic() - started < 1.0
        writer.write(b"still here\n")  # the established connection is left alone
        assert await asyncio.wait_for(reader.readline(), 2) == b"still here\n"
        # Everything gone: the listener closes and connections are refused again ...
        await env.put_slice(endpoint_slice("web", []))
        await wait_for(lambda: not env.listening(ip, 8080), message="listener closed")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(ip, 8080)
        writer.write(b"and now\n")  # ... but the established connection still carries on
        assert await asyncio.wait_for(reader.readline(), 2) == b"and now\n"
        writer.close()


async def test_terminating_serving_endpoints_are_the_fallback(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("web"))
        await env.put_slice(endpoint_slice("web", [a], terminating=("a",)))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        assert await fetch_name(ip, 8080) == "a"


async def test_half_close_passes_the_fin_and_keeps_the_other_direction(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("web"))
        await env.put_slice(endpoint_slice("web", [a]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        reader, writer = await asyncio.open_connection(ip, 8080)
        payload = b"x" * 3_000_000  # more than any socket buffer: flow control has to work
        writer.write(payload)
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), 10)  # until the backend's FIN
        assert data == b"a\n" + payload + b"bye\n"
        writer.close()


async def test_session_affinity_client_ip_sticks(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        b = await env.backend("b", port=a.port)
        svc = await env.create_service(service("web", sessionAffinity="ClientIP",
                                               sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))
        await env.put_slice(endpoint_slice("web", [a, b]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        names = {await fetch_name(ip, 8080) for _ in range(5)}
        assert len(names) == 1


async def test_udp_flows_reach_the_endpoint_and_replies_come_from_the_service_address(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, udp_idle_timeout=0.2) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("dns", ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}]))
        await env.put_slice(endpoint_slice("dns", [a], port_name="dns", protocol="UDP"))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 5353, "UDP"), message="UDP listener")
        started = time.monotonic()
        for i in range(50):
            assert await udp_ask(ip, 5353, f"q{i}".encode()) == f"a:q{i}".encode()
        assert time.monotonic() - started < 2.0  # a DNS-sized exchange is fast
        listener = next(v for f, v in env.proxy.listeners.items() if f.protocol == "UDP")
        assert listener.udp is not None
        await wait_for(lambda: not listener.udp.flows, message="idle flows closed")


async def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints(tmp_path: Path) -> None:
    async with proxy_env(tmp_path, node="node-1") as env:
        here = await env.backend("here", node="node-1")
        there = await env.backend("there", node="node-2", port=here.port)
        svc = await env.create_service(service("web", internalTrafficPolicy="Local"))
        await env.put_slice(endpoint_slice("web", [here, there]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        assert {await fetch_name(ip, 8080) for _ in range(4)} == {"here"}
        # No local endpoint left: the connection is dropped, not sent to node-2.
        await env.put_slice(endpoint_slice("web", [there]))
        await wait_for(lambda: not env.proxy.targets[next(iter(env.proxy.targets))].balancer.endpoints,
                       message="no local endpoints")
        with pytest.raises((ConnectionResetError, ConnectionRefusedError, asyncio.IncompleteReadError)):
            await fetch_name(ip, 8080)


async def test_node_port_and_external_traffic_policy_local(tmp_path: Path) -> None:
    node_ip = random_loopback(88)
    async with proxy_env(tmp_path, nodeport_address=node_ip) as env:
        here = await env.backend("here", node="node-1")
        there = await env.backend("there", node="node-2", port=here.port)
        svc = await env.create_service(service("web", type="NodePort"))
        await env.put_slice(endpoint_slice("web", [here, there]))
        node_port = svc["spec"]["ports"][0]["nodePort"]
        await wait_for(lambda: env.listening(node_ip, node_port), message="NodePort listener")
        assert {await fetch_name(node_ip, node_port) for _ in range(4)} == {"here", "there"}
        svc = await env.client.patch(SERVICES, "web", {"spec": {"externalTrafficPolicy": "Local"}}, NS)

        async def local_only() -> bool:
            return {await fetch_name(node_ip, node_port) for _ in range(4)} == {"here"}

        await wait_for(local_only, message="NodePort to local endpoints only")
        # The ClusterIP still balances over both (internalTrafficPolicy is Cluster).
        assert {await fetch_name(svc["spec"]["clusterIP"], 8080) for _ in range(4)} == {"here", "there"}


async def test_load_balancer_ingress_address_is_served(tmp_path: Path) -> None:
    lb_ip = random_loopback(3)
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        await env.create_service(service("web", type="LoadBalancer"))
        await env.put_slice(endpoint_slice("web", [a]))
        await env.client.patch(SERVICES, "web", {"status": {"loadBalancer": {"ingress": [{"ip": lb_ip}]}}}, NS,
                               subresource="status")
        await wait_for(lambda: env.listening(lb_ip, 8080), message="load-balancer listener")
        assert await fetch_name(lb_ip, 8080) == "a"


async def test_without_load_balancers_flag_the_address_is_not_served(tmp_path: Path) -> None:
    lb_ip = random_loopback(3)
    async with proxy_env(tmp_path, load_balancers=False) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("web", type="LoadBalancer"))
        await env.put_slice(endpoint_slice("web", [a]))
        await env.client.patch(SERVICES, "web", {"status": {"loadBalancer": {"ingress": [{"ip": lb_ip}]}}}, NS,
                               subresource="status")
        await wait_for(lambda: env.listening(svc["spec"]["clusterIP"], 8080), message="ClusterIP listener")
        assert not env.listening(lb_ip, 8080)


async def test_headless_and_external_name_services_get_no_listeners(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        await env.create_service(service("headless", clusterIP="None"))
        await env.put_slice(endpoint_slice("headless", [a]))
        await env.create_service({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": NS},
                                  "spec": {"type": "ExternalName", "externalName": "example.com"}})
        await env.create_service(service("plain"))
        await env.put_slice(endpoint_slice("plain", [a]))
        await wait_for(lambda: len(env.proxy.listeners) == 1, message="the plain Service's listener")
        await asyncio.sleep(0.2)
        assert [str(r.service_port) for r in (v.route for v in env.proxy.listeners.values())] == ["default/plain:web"]


class DenyTo:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.asked: list[tuple[str, str, int, str]] = []

    def allowed(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
        self.asked.append((src_ip, dst_ip, port, protocol))
        return dst_ip != self.ip


async def test_policy_hook_drops_a_denied_endpoint_instead_of_routing_around_it(tmp_path: Path) -> None:
    policy = DenyTo("")
    async with proxy_env(tmp_path, policy=policy) as env:
        a = await env.backend("a")
        b = await env.backend("b", port=a.port)
        policy.ip = b.ip
        svc = await env.create_service(service("web"))
        await env.put_slice(endpoint_slice("web", [a, b]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        results = []
        for _ in range(4):
            try:
                results.append(await fetch_name(ip, 8080))
            except (ConnectionResetError, asyncio.IncompleteReadError):
                results.append("dropped")
        assert sorted(results) == ["a", "a", "dropped", "dropped"]
        assert b.connections == 0
        assert policy.asked[0][0] == "127.0.0.1" and policy.asked[0][2:] == (a.port, "TCP")


async def test_metrics_and_healthz(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("web"))
        # Changes from before the proxy started are not counted: this one is after.
        await wait_for(lambda: time.time() - env.proxy.started > 0.1, message="100 ms of proxy uptime")
        changed = datetime.now(UTC) - timedelta(milliseconds=50)  # the pod change the controller saw
        slice_obj = endpoint_slice("web", [a])
        slice_obj["metadata"]["annotations"] = {
            "endpoints.kubernetes.io/last-change-trigger-time": changed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        await env.put_slice(slice_obj)
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="listener")
        await fetch_name(ip, 8080)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{env.metrics_port}/healthz") as resp:
                assert resp.status == 200
                assert set(await resp.json()) == {"lastUpdated", "currentTime"}
            async with session.get(f"http://127.0.0.1:{env.metrics_port}/metrics") as resp:
                text = await resp.text()
        assert 'mkp_proxy_connections_total{protocol="TCP",service="default/web:web"} 1' in text
        assert "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram" in text
        assert "mkp_proxy_listeners 1" in text
        assert "kubeproxy_network_programming_duration_seconds_count 1" in text
        assert 0.05 <= env.proxy.metrics.programming.sum < 5


async def test_a_frontend_that_cannot_be_bound_does_not_stop_the_others(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        taken = socket.socket()
        node_port = random.randint(30000, 32767)
        taken.bind((env.config.nodeport_addresses[0], node_port))  # the NodePort is someone else's already
        taken.listen()
        svc = await env.create_service(service("web", type="NodePort", externalIPs=["203.0.113.7"], ports=[
            {"name": "web", "port": 8080, "protocol": "TCP", "nodePort": node_port}]))
        await env.put_slice(endpoint_slice("web", [a]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080), message="ClusterIP listener")
        assert await fetch_name(ip, 8080) == "a"
        await wait_for(lambda: len(env.proxy.failed) == 2, message="both failures recorded")
        reasons = {str(f): why for f, why in env.proxy.failed.items()}
        assert reasons["203.0.113.7:8080/TCP"] == "not local"
        assert "in use" in reasons[f"{env.config.nodeport_addresses[0]}:{node_port}/TCP"]
        taken.close()


async def test_network_policy_flag_asks_the_netpol_agent(tmp_path: Path) -> None:
    """run_proxy(network_policy=True): a NetworkPolicy denying all ingress to pod b
    drops proxied connections from pod c to b; a stays reachable. (Connections from the
    host itself are always allowed, as traffic from a pod's node is in Kubernetes.)"""
    from minikube_py.client import PODS
    from minikube_py.client.resources import NETWORKPOLICIES
    from proxy.service.model import ProxyConfig
    from proxy.service.process import run_proxy
    from tests.proxy.service.harness import Backend, api_server

    node_ip = random_loopback(88)
    async with api_server(tmp_path, f"127.{random.randint(100, 200)}.{random.randint(0, 255)}.0/24") as url, \
            ApiClient(url) as client:
        a = await Backend("a", random_loopback(244)).start()
        b = await Backend("b", random_loopback(244), a.port).start()
        c = Backend("c", random_loopback(244))  # the client pod: only its address is used
        for backend in (a, b, c):
            await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": backend.name, "namespace": NS, "labels": {"app": backend.name}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}}, NS)
            await client.patch(PODS, backend.name, {"status": {"phase": "Running", "podIP": backend.ip,
                                                               "podIPs": [{"ip": backend.ip}]}}, NS,
                               subresource="status")
        await client.create(NETWORKPOLICIES, {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny-b", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"]}}, NS)
        await client.create(SERVICES, service("web", type="NodePort"), NS)
        await client.create(ENDPOINTSLICES, endpoint_slice("web", [a, b]), NS)
        node_port = (await client.get(SERVICES, "web", NS))["spec"]["ports"][0]["nodePort"]
        task = asyncio.create_task(run_proxy(client, ProxyConfig("node-1", (), False, (node_ip,), False),
                                             network_policy=True))
        try:
            async def answered() -> list[str]:
                out = []
                for _ in range(4):
                    try:
                        out.append(await fetch_name(node_ip, node_port, source=c.ip))
                    except (OSError, asyncio.IncompleteReadError):
                        out.append("dropped")
                return out

            results = await wait_for(lambda: _ok(answered), message="the proxy serving")
            assert sorted(results) == ["a", "a", "dropped", "dropped"]
            assert b.connections == 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await a.stop()
            await b.stop()


async def _ok(probe: Any) -> Any:
    results = await probe()
    return results if "a" in results else None


async def test_a_deleted_service_closes_its_listeners_and_forgets_its_failures(tmp_path: Path) -> None:
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        svc = await env.create_service(service("web", externalIPs=["203.0.113.9"]))
        await env.put_slice(endpoint_slice("web", [a]))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 8080) and env.proxy.failed, message="listener and failure")
        await env.client.delete(SERVICES, "web", NS)
        await wait_for(lambda: not env.proxy.listeners and not env.proxy.failed and not env.proxy.targets,
                       message="everything of the Service gone")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(ip, 8080)


async def test_udp_flow_to_an_endpoint_turning_unready_ends_so_the_next_datagram_picks_again(tmp_path: Path) -> None:
    """One client address keeps its flow (and endpoint) while the endpoint is usable;
    when it turns unready the flow ends at once, as kube-proxy clears its conntrack
    entries (or a resolver would keep asking a dead DNS pod)."""
    async with proxy_env(tmp_path) as env:
        a = await env.backend("a")
        b = await env.backend("b", port=a.port)
        svc = await env.create_service(service("dns", ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}]))
        await env.put_slice(endpoint_slice("dns", [a, b], port_name="dns", protocol="UDP"))
        ip = svc["spec"]["clusterIP"]
        await wait_for(lambda: env.listening(ip, 5353, "UDP"), message="UDP listener")
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(ip, 5353))
        try:
            async def ask(timeout: float = 2.0) -> str:
                transport.sendto(b"q")
                return (await asyncio.wait_for(answers.get(), timeout)).split(b":")[0].decode()

            first = await ask()
            assert [await ask() for _ in range(3)] == [first] * 3  # one flow, one endpoint
            other = "b" if first == "a" else "a"
            await env.put_slice(endpoint_slice("dns", [a, b], port_name="dns", protocol="UDP", ready={first: False}))

            async def moved() -> bool:
                try:
                    return await ask(0.2) == other
                except TimeoutError:  # a datagram in flight when the flow ended is lost: UDP
                    return False

            await wait_for(moved, timeout=1.0, message="the flow moved to the ready endpoint")
        finally:
            transport.close()


async def test_health_check_node_port_reports_local_endpoints_as_kube_proxy(tmp_path: Path) -> None:
    node_ip = random_loopback(88)
    async with proxy_env(tmp_path, nodeport_address=node_ip) as env:
        here = await env.backend("here", node="node-1")
        there = await env.backend("there", node="node-2", port=here.port)
        health_port = random.randint(30000, 32767)
        await env.create_service(service("web", type="LoadBalancer", externalTrafficPolicy="Local",
                                         healthCheckNodePort=health_port))
        await env.put_slice(endpoint_slice("web", [there]))

        async def probe() -> tuple[int, dict[str, str], Any]:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://{node_ip}:{health_port}/healthz") as resp:
                    return resp.status, dict(resp.headers), await resp.json(content_type=None)

        await wait_for(lambda: any(f.port == health_port for f in env.proxy.health), message="health check server")
        status, headers, body = await probe()
        assert status == 503 and headers["X-Load-Balancing-Endpoint-Weight"] == "0"
        assert body == {"service": {"namespace": NS, "name": "web"}, "localEndpoints": 0, "serviceProxyHealthy": True}
        await env.put_slice(endpoint_slice("web", [here, there]))

        async def healthy() -> bool:
            return (await probe())[0] == 200

        await wait_for(healthy, message="a local endpoint")
        assert (await probe())[2]["localEndpoints"] == 1
        await env.client.patch(SERVICES, "web", {"spec": {"externalTrafficPolicy": "Cluster"}}, NS)
        await wait_for(lambda: not env.proxy.health, message="health check closed")
