"""A service proxy against the real API server, with backends on loopback addresses.

Everything is in the test's event loop: the project's API server (in-process, on a
fresh store, with a Service range of its own under 127/8 so parallel test runs never
share ClusterIPs), one `ServiceProxy` for a node, and `Backend`s: asyncio TCP and UDP
servers on 127.x addresses that answer with their own name, so a test sees which
endpoint served it. EndpointSlices are written by the test, as the EndpointSlice
controller would (the proxy only reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from minikube_py.client import ENDPOINTSLICES, SERVICES, ApiClient, SharedInformerFactory
from proxy.service.listeners import ConnectionPolicy
from proxy.service.model import ProxyConfig
from proxy.service.process import metrics_server
from proxy.service.proxier import ServiceProxy

Obj = dict[str, Any]
NS = "default"


def random_loopback(second: int) -> str:
    """A 127.<second>.x.y address nobody else's test is likely to use."""
    return f"127.{second}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@contextlib.asynccontextmanager
async def api_server(tmp_path: Path, service_cidr: str) -> AsyncIterator[str]:
    from apiserver.app import build_app, open_storage, start_server, stop_tasks

    storage = open_storage(tmp_path / "store")
    server, tasks = await start_server(storage, address="127.0.0.1:0", service_cidr=service_cidr)
    runner = web.AppRunner(build_app(server), access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.address = f"127.0.0.1:{port}"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await stop_tasks(tasks)
        await storage.close()


class _EchoName(asyncio.Protocol):
    """Sends the backend's name, then echoes what it reads; half-closes back on EOF."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.backend.connections += 1
        self.backend.peers.append(transport.get_extra_info("peername"))
        self.transport.write(f"{self.backend.name}\n".encode())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        assert self.transport is not None
        self.transport.write(b"bye\n")
        self.transport.write_eof()
        return True


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self.backend.datagrams += 1
        self.transport.sendto(self.backend.name.encode() + b":" + data, addr)


@dataclass
class Backend:
    """A pod stand-in: TCP and UDP on one 127.x address and port."""

    name: str
    ip: str
    port: int = 0
    node: str = "node-1"
    connections: int = 0
    datagrams: int = 0
    peers: list[Any] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _udp: asyncio.BaseTransport | None = None

    async def start(self) -> Backend:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _EchoName(self), self.ip, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpEcho(self), local_addr=(self.ip, self.port))
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()


def service(name: str, *, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"ports": ports or [{"name": "web", "port": 8080, "protocol": "TCP"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": body}


def endpoint_slice(service_name: str, backends: list[Backend], *, port_name: str = "web", protocol: str = "TCP",
                   ready: dict[str, bool] | None = None, suffix: str = "a", terminating: tuple[str, ...] = ()) -> Obj:
    """A slice as the EndpointSlice controller writes it; every backend shares the
    first backend's port number unless backends differ (then one slice each is needed)."""
    ready = ready or {}
    endpoints = [{"addresses": [b.ip], "nodeName": b.node,
                  "conditions": {"ready": ready.get(b.name, True) and b.name not in terminating,
                                 "serving": ready.get(b.name, True), "terminating": b.name in terminating},
                  "targetRef": {"kind": "Pod", "namespace": NS, "name": b.name}} for b in backends]
    port = backends[0].port if backends else 8080
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": port_name, "port": port, "protocol": protocol}]}


@dataclass
class ProxyEnv:
    client: ApiClient
    proxy: ServiceProxy
    config: ProxyConfig
    metrics_port: int | None
    backends: list[Backend] = field(default_factory=list)

    async def backend(self, name: str, *, node: str = "node-1", port: int = 0) -> Backend:
        backend = await Backend(name, random_loopback(244), port, node).start()
        self.backends.append(backend)
        return backend

    async def create_service(self, obj: Obj) -> Obj:
        return await self.client.create(SERVICES, obj, NS)

    async def put_slice(self, obj: Obj) -> Obj:
        """Create or replace an EndpointSlice."""
        name = obj["metadata"]["name"]
        try:
            current = await self.client.get(ENDPOINTSLICES, name, NS)
        except Exception:  # noqa: BLE001 - not there yet
            return await self.client.create(ENDPOINTSLICES, obj, NS)
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self.client.update(ENDPOINTSLICES, obj, NS)

    def listening(self, ip: str, port: int, protocol: str = "TCP") -> bool:
        return any(f.ip == ip and f.port == port and f.protocol == protocol for f in self.proxy.listeners)


async def wait_for(predicate: Any, *, timeout: float = 10.0, message: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def proxy_env(tmp_path: Path, *, node: str = "node-1", nodeport_address: str | None = None,
                    policy: ConnectionPolicy | None = None, udp_idle_timeout: float = 30.0,
                    load_balancers: bool = True) -> AsyncIterator[ProxyEnv]:
    """API server + one node's proxy (loopback mode: no bind device) + metrics server."""
    cidr = f"127.{random.randint(100, 200)}.{random.randint(0, 255)}.0/24"
    config = ProxyConfig(node, (), True, (nodeport_address or random_loopback(88),), load_balancers)
    async with api_server(tmp_path, cidr) as url, ApiClient(url, field_manager="tests") as client:
        informers = SharedInformerFactory(client)
        proxy = ServiceProxy(informers, config, policy=policy, udp_idle_timeout=udp_idle_timeout)
        async with metrics_server(proxy, "127.0.0.1:0") as port:
            task = asyncio.create_task(proxy.run(), name="proxy")
            env = ProxyEnv(client, proxy, config, port)
            try:
                await wait_for(proxy.synced, message="proxy caches")
                yield env
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await informers.shutdown()
                for backend in env.backends:
                    await backend.stop()
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError("the proxy failed") from task.exception()


async def fetch_name(ip: str, port: int, timeout: float = 5.0, *, source: str | None = None) -> str:
    """Connect (from `source`, a pod's address, if given), read the backend's greeting
    line (its name)."""
    local_addr = (source, 0) if source else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port, local_addr=local_addr), timeout)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not line:
        raise ConnectionResetError("closed without a greeting")
    return line.decode().strip()


async def udp_ask(ip: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class _Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not answer.done():
                answer.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not answer.done():
                answer.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=(ip, port))
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(answer, timeout)
    finally:
        transport.close()
