"""Two nodes' proxies share the host network namespace and listen on the same ClusterIP
and port, told apart by SO_BINDTODEVICE: each gets the connections arriving on its own
device. Root only: two network namespaces of this test ("pods") with veth pairs into the
host, and a `local` route on lo that makes a whole test Service range local, as the
bridge mode's AnyIP route makes 10.96.0.0/12 (deleted at teardown). Every host object is named `tp...`
and removed at teardown, even on failure. Addresses are from 198.18.0.0/15 (RFC 2544,
benchmarking): they never leave the machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from minikube_py.client import ENDPOINTSLICES, SERVICES, ApiClient, SharedInformerFactory
from proxy.service.listeners import bind_socket
from proxy.service.model import Frontend, ProxyConfig
from proxy.service.proxier import ServiceProxy
from tests.conftest import require_tool
from tests.proxy.service.harness import (
    Backend,
    api_server,
    endpoint_slice,
    random_loopback,
    service,
    wait_for,
)


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("needs root (CI=true: a missing privilege is a failure, not a skip)")
    pytest.skip("needs root")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Net:
    tag: str
    service_cidr: str
    devices: dict[str, str]  # pod netns name -> host-side device
    pod_ips: dict[str, str]


@pytest.fixture
def two_pods() -> Iterator[Net]:
    _require_root()
    require_tool("ip")
    r = random.randint(0, 255)
    tag = f"tp{os.urandom(3).hex()}"
    net = Net(tag, f"198.19.{r}.0/24", {}, {})
    namespaces = [f"{tag}-a", f"{tag}-b"]
    routed = False
    try:
        for n, ns in enumerate(namespaces):
            host_dev, host_ip, pod_ip = f"{tag}{'ab'[n]}", f"198.18.{r}.{4 * n + 1}", f"198.18.{r}.{4 * n + 2}"
            ip("netns", "add", ns)
            ip("link", "add", host_dev, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("addr", "add", f"{host_ip}/30", "dev", host_dev)
            ip("link", "set", host_dev, "up")
            ip("-n", ns, "addr", "add", f"{pod_ip}/30", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", host_ip)
            net.devices[ns], net.pod_ips[ns] = host_dev, pod_ip
        # On lo, as cni.hostnet makes the Service range local (the route's device is what a
        # host client's connection is matched against; a pod's arrives on its veth).
        ip("route", "add", "local", net.service_cidr, "dev", "lo", "table", "local")
        routed = True
        yield net
    finally:
        if routed:
            subprocess.run(["ip", "route", "del", "local", net.service_cidr, "dev", "lo", "table", "local"],
                           capture_output=True)
        for ns in namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        for dev in (f"{tag}a", f"{tag}b"):
            subprocess.run(["ip", "link", "delete", dev], capture_output=True)


CLIENT = """
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[3] == "TCP" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
if kind == socket.SOCK_DGRAM:
    s.send(b"hi")
print(s.recv(100).decode().split(chr(10))[0].split(":")[0])
"""


async def from_pod(ns: str, address: str, port: int, protocol: str = "TCP") -> str:
    """What a client in netns `ns` reads first from address:port."""
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, address, str(port), protocol,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 10)
    if process.returncode != 0:
        raise AssertionError(f"client in {ns} failed: {err.decode()}")
    return out.decode().strip()


async def _serve_name(sock: socket.socket, name: str) -> asyncio.AbstractServer:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"{name}\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(greet, sock=sock)


async def test_two_sockets_on_one_address_and_port_bound_to_different_devices(two_pods: Net) -> None:
    (ns_a, dev_a), (ns_b, dev_b) = two_pods.devices.items()
    address = two_pods.service_cidr.replace(".0/24", ".15")
    port = random.randint(20000, 29999)
    sock_a = bind_socket(Frontend(address, port, "TCP", dev_a))
    sock_b = bind_socket(Frontend(address, port, "TCP", dev_b))  # no EADDRINUSE: other device
    sock_host = bind_socket(Frontend(address, port, "TCP", "lo"))  # node 1 serves host clients on lo
    with pytest.raises(OSError):  # but an unbound one would take every device's traffic: refused
        bind_socket(Frontend(address, port, "TCP", "")).close()
    servers = [await _serve_name(sock_a, "a"), await _serve_name(sock_b, "b"), await _serve_name(sock_host, "host")]
    try:
        assert await from_pod(ns_a, address, port) == "a"
        assert await from_pod(ns_b, address, port) == "b"
        reader, writer = await asyncio.open_connection(address, port)  # from the host itself
        assert await reader.readline() == b"host\n"
        writer.close()
    finally:
        for server in servers:
            server.close()


@contextlib.asynccontextmanager
async def node_proxy(client: ApiClient, node: str, device: str) -> AsyncIterator[ServiceProxy]:
    informers = SharedInformerFactory(client)
    proxy = ServiceProxy(informers, ProxyConfig(node, (device,), True, (), False))
    task = asyncio.create_task(proxy.run())
    try:
        await wait_for(proxy.synced, message=f"{node}'s caches")
        yield proxy
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await informers.shutdown()


async def test_each_nodes_proxy_serves_the_pods_on_its_device(two_pods: Net, tmp_path: Path) -> None:
    """internalTrafficPolicy Local makes the answer show which node's proxy took the
    connection: each pod's node's own backend."""
    (ns_a, dev_a), (ns_b, dev_b) = two_pods.devices.items()
    async with api_server(tmp_path, two_pods.service_cidr) as url, ApiClient(url) as client:
        backend_a = await Backend("on-a", random_loopback(244), node="node-a").start()
        backend_b = await Backend("on-b", random_loopback(244), backend_a.port, node="node-b").start()
        try:
            async with node_proxy(client, "node-a", dev_a) as proxy_a, node_proxy(client, "node-b", dev_b) as proxy_b:
                ports = [{"name": "web", "port": 8080, "protocol": "TCP"},
                         {"name": "dns", "port": 8053, "protocol": "UDP"}]
                svc = await client.create(
                    SERVICES, service("web", ports=ports, internalTrafficPolicy="Local"), "default")
                await client.create(ENDPOINTSLICES, endpoint_slice("web", [backend_a, backend_b]), "default")
                await client.create(ENDPOINTSLICES, endpoint_slice("web", [backend_a, backend_b], port_name="dns",
                                                                   protocol="UDP", suffix="udp"), "default")
                cluster_ip = svc["spec"]["clusterIP"]
                await wait_for(lambda: len(proxy_a.listeners) == 2 and len(proxy_b.listeners) == 2,
                               message="both proxies listening")
                assert await from_pod(ns_a, cluster_ip, 8080) == "on-a"
                assert await from_pod(ns_b, cluster_ip, 8080) == "on-b"
                assert await from_pod(ns_a, cluster_ip, 8053, "UDP") == "on-a"
                assert await from_pod(ns_b, cluster_ip, 8053, "UDP") == "on-b"
        finally:
            await backend_a.stop()
            await backend_b.stop()

