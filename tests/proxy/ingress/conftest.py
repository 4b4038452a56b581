"""The ingress controller against a real `mkp` API server, with backends on loopback.

One cluster per test module (`mkp up --nodes 0`); per test: a namespace of its own, an
`IngressController` running in the test's event loop on free ports, and `Backend`s:
aiohttp servers on 127.77.x.y addresses that answer with their name and what they were
sent, so a test sees which endpoint served it and which headers arrived. Services and
EndpointSlices are written by the test, as the EndpointSlice controller would for pods.
External clients are `curl` (run without blocking the loop the controller runs in).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from minikube_py.client import ENDPOINTSLICES, INGRESSES, NAMESPACES, SERVICES, ApiClient
from proxy.ingress.controller import IngressController, IngressOptions
from tests.conftest import require_tool

Obj = dict[str, Any]


@dataclass
class Backend:
    """An HTTP server on `address:port` that tells who it is and what it received."""

    name: str
    address: str
    port: int
    requests: list[Obj] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/slow", self._slow)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.address, self.port).start()
        self.port = self.runner.addresses[0][1]

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {"backend": self.name, "method": request.method, "path": request.path_qs,
                "headers": dict(request.headers), "body_length": len(body)}
        self.requests.append(seen)
        return web.json_response(seen, headers={"X-Backend": self.name})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """100 chunks of 1000 bytes without a Content-Length (chunked)."""
        response = web.StreamResponse(headers={"X-Backend": self.name})
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    async def _slow(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("echo",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{message.data}")
        return ws

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class Curl:
    status: int
    headers: dict[str, str]
    body: str
    stderr: str

    def json(self) -> Obj:
        return json.loads(self.body)


@dataclass
class Harness:
    client: ApiClient
    controller: IngressController
    namespace: str
    task: asyncio.Task[None]
    backends: list[Backend] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop the controller as SIGTERM would (cancel its run)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def http_port(self) -> int:
        return self.controller.http.port

    @property
    def https_port(self) -> int:
        return self.controller.https.port

    async def backend(self, name: str, address: str | None = None, port: int = 0) -> Backend:
        backend = Backend(name, address or f"127.77.{random.randint(1, 254)}.{random.randint(2, 254)}", port)
        await backend.start()
        self.backends.append(backend)
        return backend

    async def service(self, name: str, endpoints: list[tuple[str, int, bool]], *, port: int = 80,
                      port_name: str = "http") -> None:
        """A Service without selector and its EndpointSlice: (address, port, ready) per endpoint."""
        target = endpoints[0][1] if endpoints else 8080
        await self.client.create(SERVICES, {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"ports": [{"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}]}})
        await self.write_slice(name, endpoints, port_name=port_name)

    async def write_slice(self, service: str, endpoints: list[tuple[str, int, bool]], *, port_name: str = "http") -> None:
        slice_name = f"{service}-manual"
        by_port: dict[int, list[Obj]] = {}
        for address, port, ready in endpoints:
            by_port.setdefault(port, []).append({"addresses": [address], "conditions": {"ready": ready}})
        port = next(iter(by_port), 8080)
        obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {"name": slice_name, "namespace": self.namespace,
                            "labels": {"kubernetes.io/service-name": service}},
               "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
               "endpoints": by_port.get(port, [])}
        try:
            current = await self.client.get(ENDPOINTSLICES, slice_name, self.namespace)
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.client.update(ENDPOINTSLICES, obj)
        except Exception:  # noqa: BLE001 - not there yet
            await self.client.create(ENDPOINTSLICES, obj)

    async def ingress(self, name: str, spec: Obj, annotations: dict[str, str] | None = None) -> Obj:
        return await self.client.create(INGRESSES, {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": self.namespace, "annotations": annotations or {}},
            "spec": spec})

    async def curl(self, url: str, *args: str) -> Curl:
        """`curl -s -D - URL ARGS` (127.0.0.1 is the ingress; give --resolve/-H Host for names)."""
        process = await asyncio.create_subprocess_exec(
            require_tool("curl"), "-s", "-S", "-D", "-", "--max-time", "10", *args, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        text = out.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        while head.startswith("HTTP/1.1 1"):  # interim responses (100 Continue)
            head, _, body = body.partition("\r\n\r\n")
        lines = head.split("\r\n")
        if not lines[0].startswith("HTTP/"):
            raise AssertionError(f"curl {url} {args}: no response: {err.decode()}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return Curl(int(lines[0].split()[1]), headers, body, err.decode(errors="replace"))

    async def get(self, host: str, path: str, *args: str) -> Curl:
        return await self.curl(f"http://127.0.0.1:{self.http_port}{path}", "-H", f"Host: {host}", *args)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll the async `check` until it returns something truthy (the informers catch up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def harness(mkp_cluster_module) -> AsyncIterator[Harness]:
    client = ApiClient.from_kubeconfig(str(mkp_cluster_module.kubeconfig), field_manager="ingress-test")
    namespace = f"ing-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    controller = IngressController(client, IngressOptions(http_port=0, https_port=0,
                                                          metrics_bind_address="127.0.0.1:0"))
    task = asyncio.create_task(controller.run())
    h = Harness(client, controller, namespace, task)
    try:
        await eventually(lambda: _ready(controller, task), what="the controller to serve")
        yield h
    finally:
        await h.stop()
        for backend in h.backends:
            await backend.stop()
        await client.delete_collection(INGRESSES, namespace)
        await client.close()


async def _ready(controller: IngressController, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raise why it ended
    return controller.healthy()
