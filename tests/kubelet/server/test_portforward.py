"""Port-forward on the kubelet server (kubelet/server/portforward.py).

A real kubelet server (kubelet.server.app) on 127.0.0.1 with a pod whose podIP is
127.0.0.1, real TCP servers standing in for the pod's ports, and two clients: a SPDY
client that talks like kubectl 1.32 (SPDY/3.1 frames in binary WebSocket messages, each
frame header and payload in separate messages as spdystream's framer writes them, error
stream half-closed at once, requestID headers) and plain WebSocket channel clients (v4,
as the Python client speaks it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from kubelet.server import portforward, spdy
from kubelet.server.app import serve
from tests.conftest import wait_until
from tests.minikube_py.client.conftest import apiserver  # noqa: F401 - fixture used by name

UID = "0f6b5a8e-7d51-4b1c-9a3e-2f1f7c1d9e01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sandbox:
    """What kubelet.runtime.base.Sandbox offers the handler."""

    pod_ip: str | None = None
    netns: str | None = None


@dataclass
class Pods:
    """The PodProvider the kubelet server reads: one pod, `default/web`."""

    pod_ip: str | None = "127.0.0.1"  # status.podIP
    sandbox_ip: str | None = None  # the runtime sandbox's pod_ip
    netns: str | None = None

    def find_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        if (namespace, name) != ("default", "web"):
            return None
        return {"metadata": {"name": name, "namespace": namespace, "uid": UID},
                "status": {"phase": "Running", "podIP": self.pod_ip}}

    def sandbox(self, namespace: str, name: str) -> Sandbox | None:
        return Sandbox(self.sandbox_ip, self.netns) if self.sandbox_ip or self.netns else None

    def pods(self) -> list[dict[str, Any]]:
        return [self.find_pod("default", "web")]


@dataclass
class EchoServer:
    """Echoes every byte; at the client's EOF answers EOF. Records connections."""

    port: int = 0
    opened: int = 0
    closed: list[asyncio.Event] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> EchoServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        done = asyncio.Event()
        self.closed.append(done)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
        except ConnectionError:
            pass
        finally:
            writer.close()
            done.set()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@dataclass
class Kubelet:
    url: str
    pods: Pods
    echo: EchoServer
    session: aiohttp.ClientSession

    def ws_url(self, pod: str = "web", query: str = "") -> str:
        return f"{self.url.replace('http', 'ws', 1)}/portForward/default/{pod}{query}"


@pytest.fixture
async def kubelet() -> AsyncIterator[Kubelet]:
    pods = Pods()
    echo = await EchoServer().start()
    runner, port = await serve(pods, "127.0.0.1", 0)
    session = aiohttp.ClientSession()
    try:
        yield Kubelet(f"http://127.0.0.1:{port}", pods, echo, session)
    finally:
        await session.close()
        await runner.cleanup()
        await echo.stop()


class KubectlLikeClient:
    """SPDY/3.1 over a WebSocket, the way kubectl 1.32's port-forward uses it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, window_updates: bool = False) -> None:
        self.ws = ws
        self.conn = spdy.Connection(self._send, server=False)
        if not window_updates:  # spdystream announces no WINDOW_UPDATE
            async def none(stream: Any, n: int) -> None:
                return None
            self.conn._consumed = none  # type: ignore[method-assign]
        self.request_id = 0
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, kubelet: Kubelet, **kw: Any) -> KubectlLikeClient:
        ws = await kubelet.session.ws_connect(kubelet.ws_url(), protocols=[portforward.SPDY_PROTOCOL])
        assert ws.protocol == portforward.SPDY_PROTOCOL
        return cls(ws, **kw)

    async def _send(self, data: bytes) -> None:
        await self.ws.send_bytes(data[:4])
        await self.ws.send_bytes(data[4:8])
        if data[8:]:
            await self.ws.send_bytes(data[8:])

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await self.conn.feed(msg.data)
        self.conn.close()

    async def forward(self, port: int, *, request_id: bool = True) -> tuple[spdy.Stream, spdy.Stream]:
        headers = {"streamType": "error", "port": str(port)}
        if request_id:
            headers["requestID"] = str(self.request_id)
        self.request_id += 1
        error = await self.conn.open_stream(headers)
        await asyncio.wait_for(error.replied.wait(), 5)
        await error.close()  # kubectl never writes to the error stream
        data = await self.conn.open_stream({**headers, "streamType": "data"})
        await asyncio.wait_for(data.replied.wait(), 5)
        return data, error

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def read_all(stream: spdy.Stream, timeout: float = 10) -> bytes:
    async def drain() -> bytes:
        out = bytearray()
        while chunk := await stream.read():
            out += chunk
        return bytes(out)
    return await asyncio.wait_for(drain(), timeout)


async def exchange(data: spdy.Stream, payload: bytes) -> bytes:
    """Write `payload` and half-close while reading everything back (concurrently)."""
    async def write() -> None:
        for i in range(0, len(payload), 32 * 1024):
            await data.write(payload[i:i + 32 * 1024])
        await data.close()
    writer = asyncio.ensure_future(write())
    received = await read_all(data, 30)
    await writer
    return received


# ---- SPDY (kubectl) ------------------------------------------------------------------


async def test_spdy_forwards_one_connection_and_ends_both_streams(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, error = await client.forward(kubelet.echo.port)
        assert await exchange(data, b"hello through the kubelet") == b"hello through the kubelet"
        assert await read_all(error) == b""  # no error, and the error stream is ended
        assert error.remote_closed and data.remote_closed
        await asyncio.wait_for(kubelet.echo.closed[0].wait(), 5)
    finally:
        await client.close()


async def test_spdy_serves_http_from_the_pod_port(kubelet: Kubelet):
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="podinfo says hi")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, error = await client.forward(port)
        await data.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = await read_all(data)
        assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"podinfo says hi")
        assert await read_all(error) == b""
    finally:
        await client.close()
        await runner.cleanup()


async def test_spdy_concurrent_connections_each_get_their_own_bytes(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        pairs = await asyncio.gather(*(client.forward(kubelet.echo.port) for _ in range(8)))
        payloads = [os.urandom(100_000) + bytes([i]) for i in range(8)]
        results = await asyncio.gather(*(exchange(d, p) for (d, _), p in zip(pairs, payloads, strict=True)))
        assert results == payloads
        assert kubelet.echo.opened == 8
    finally:
        await client.close()


@pytest.mark.parametrize("window_updates", [False, True], ids=["like-spdystream", "strict-flow-control"])
async def test_spdy_5_mb_both_ways(kubelet: Kubelet, window_updates: bool):
    client = await KubectlLikeClient.connect(kubelet, window_updates=window_updates)
    try:
        data, _ = await client.forward(kubelet.echo.port)
        payload = os.urandom(5 * 1024 * 1024)
        assert await exchange(data, payload) == payload
    finally:
        await client.close()


async def test_spdy_refused_port_reports_the_kubelet_error_and_ends_the_streams(kubelet: Kubelet):
    port = free_port()
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, error = await client.forward(port)
        message = (await read_all(error)).decode()
        assert message == (
            f"error forwarding port {port} to pod {UID}, uid : failed to execute portforward in network "
            f'namespace "host": failed to connect to 127.0.0.1:{port} for pod "{UID}", IPv4: '
            f"dial tcp4 127.0.0.1:{port}: connect: connection refused")
        assert await read_all(data) == b"" and data.remote_closed
        # the session stays usable for the next connection
        data, error = await client.forward(kubelet.echo.port)
        assert await exchange(data, b"again") == b"again"
    finally:
        await client.close()


async def test_spdy_uses_the_sandbox_ip_before_the_status_reports_one(kubelet: Kubelet):
    kubelet.pods.pod_ip, kubelet.pods.sandbox_ip = None, "127.0.0.1"
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, _ = await client.forward(kubelet.echo.port)
        assert await exchange(data, b"sandbox ip") == b"sandbox ip"
        kubelet.pods.sandbox_ip = None
        client2 = await KubectlLikeClient.connect(kubelet)
        try:
            _, error = await client2.forward(kubelet.echo.port)
            assert (await read_all(error)).decode().endswith(
                'failed to execute portforward: pod "default/web" has no IP address yet (status.podIP is empty)')
        finally:
            await client2.close()
    finally:
        await client.close()


async def test_spdy_streams_without_request_id_pair_by_stream_id(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, _ = await client.forward(kubelet.echo.port, request_id=False)
        assert await exchange(data, b"old client") == b"old client"
    finally:
        await client.close()


@pytest.mark.parametrize("headers", [
    pytest.param({"streamType": "data"}, id="no-port"),
    pytest.param({"streamType": "data", "port": "http"}, id="bad-port"),
    pytest.param({"streamType": "data", "port": "0"}, id="port-zero"),
    pytest.param({"port": "80"}, id="no-stream-type"),
    pytest.param({"streamType": "stdin", "port": "80"}, id="bad-stream-type"),
])
async def test_spdy_invalid_streams_are_reset(kubelet: Kubelet, headers: dict[str, str]):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        stream = await client.conn.open_stream(headers)
        await asyncio.wait_for(stream.replied.wait(), 5)
        assert stream.reset_status == spdy.CANCEL
    finally:
        await client.close()


async def test_spdy_lone_stream_times_out_with_an_error(kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(portforward, "STREAM_CREATION_TIMEOUT", 0.2)
    client = await KubectlLikeClient.connect(kubelet)
    try:
        error = await client.conn.open_stream({"streamType": "error", "port": "80", "requestID": "7"})
        await asyncio.wait_for(error.replied.wait(), 5)
        assert (await read_all(error)).decode().endswith("request=7) timed out waiting for streams")
    finally:
        await client.close()


async def test_spdy_duplicate_stream_type_is_reported_on_the_error_stream(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        headers = {"streamType": "error", "port": "80", "requestID": "3"}
        first = await client.conn.open_stream(headers)
        await client.conn.open_stream(headers)
        chunk = await asyncio.wait_for(first.read(), 5)
        assert chunk == b"error processing stream for request 3: error stream already assigned"
    finally:
        await client.close()


async def test_spdy_client_reset_or_disconnect_closes_the_pod_connection(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        data, _ = await client.forward(kubelet.echo.port)
        await data.write(b"x")
        assert await asyncio.wait_for(data.read(), 5) == b"x"
        await data.reset(spdy.CANCEL)
        await asyncio.wait_for(kubelet.echo.closed[0].wait(), 5)
        data, _ = await client.forward(kubelet.echo.port)
        await data.write(b"y")
        assert await asyncio.wait_for(data.read(), 5) == b"y"
    finally:
        await client.close()  # the WebSocket goes away with a connection still open
    await asyncio.wait_for(kubelet.echo.closed[1].wait(), 5)


async def test_spdy_protocol_error_answers_goaway_and_closes(kubelet: Kubelet):
    async with kubelet.session.ws_connect(kubelet.ws_url(), protocols=[portforward.SPDY_PROTOCOL]) as ws:
        await ws.send_bytes(b"\x80\x02\x00\x01\x00\x00\x00\x00")  # a SPDY/2 frame
        frames = spdy.FrameDecoder().feed(await ws.receive_bytes(timeout=5))
        assert frames == [spdy.GoAway(0, spdy.GOAWAY_PROTOCOL_ERROR)]
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_spdy_pings_are_answered(kubelet: Kubelet):
    client = await KubectlLikeClient.connect(kubelet)
    try:
        await asyncio.wait_for(client.conn.ping(), 5)
    finally:
        await client.close()


# ---- WebSocket channels (the Python client) ---------------------------------------------


async def test_v4_channels_announce_ports_and_carry_data(kubelet: Kubelet):
    refused = free_port()
    url = kubelet.ws_url(query=f"?ports={kubelet.echo.port},{refused}")
    async with kubelet.session.ws_connect(url, protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"]) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        first = {}
        for _ in range(4):
            msg = await ws.receive_bytes(timeout=5)
            first.setdefault(msg[0], msg)
        assert first == {0: bytes([0]) + kubelet.echo.port.to_bytes(2, "little"),
                         1: bytes([1]) + kubelet.echo.port.to_bytes(2, "little"),
                         2: bytes([2]) + refused.to_bytes(2, "little"),
                         3: bytes([3]) + refused.to_bytes(2, "little")}
        error = await ws.receive_bytes(timeout=5)
        assert error[0] == 3 and error[1:].decode().startswith(f"error forwarding port {refused} to pod {UID}")
        await ws.send_bytes(b"\x00hello v4")
        assert await ws.receive_bytes(timeout=5) == b"\x00hello v4"


async def test_v4_base64_and_the_api_servers_port_parameter(kubelet: Kubelet):
    url = kubelet.ws_url(query=f"?port={kubelet.echo.port}")
    async with kubelet.session.ws_connect(url, protocols=["v4.base64.channel.k8s.io"]) as ws:
        header = base64.b64encode(kubelet.echo.port.to_bytes(2, "little")).decode()
        assert {await ws.receive_str(timeout=5) for _ in range(2)} == {"0" + header, "1" + header}
        await ws.send_str("0" + base64.b64encode(b"text frames").decode())
        assert await ws.receive_str(timeout=5) == "0" + base64.b64encode(b"text frames").decode()


async def test_v4_websocket_closes_when_the_pod_closes_its_port(kubelet: Kubelet):
    async def greet_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet_and_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with kubelet.session.ws_connect(kubelet.ws_url(query=f"?ports={port}"),
                                              protocols=["v4.channel.k8s.io"]) as ws:
            messages = [await ws.receive_bytes(timeout=5) for _ in range(3)]
            assert bytes([0]) + b"bye" in messages
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    finally:
        server.close()
        await server.wait_closed()


async def test_v4_python_client_protocol_through_the_kubernetes_package(kubelet: Kubelet):
    """kubernetes.stream.ws_client.PortForward driving a websocket-client socket."""
    from kubernetes.client import Configuration
    from kubernetes.stream.ws_client import PortForward, create_websocket

    config = Configuration(host=kubelet.url)
    url = kubelet.ws_url(query=f"?ports={kubelet.echo.port}")

    def talk() -> bytes:
        pf = PortForward(create_websocket(config, url), [kubelet.echo.port])
        sock = pf.socket(kubelet.echo.port)
        sock.settimeout(10)
        sock.sendall(b"from the python client")
        got = b""
        while len(got) < 22:
            got += sock.recv(1024)
        pf.close()
        wait_until(lambda: not pf.connected, 10, "the Python client to close its WebSocket", 0.02)
        return got

    assert await asyncio.to_thread(talk) == b"from the python client"


# ---- bad requests -----------------------------------------------------------------------


@pytest.mark.parametrize("query, protocols, status, text", [
    pytest.param("", None, 426, "unable to upgrade", id="not-websocket"),
    pytest.param("", ["v4.channel.k8s.io"], 400, 'query parameter "port" is required', id="no-ports"),
    pytest.param("?ports=http", ["v4.channel.k8s.io"], 400, 'unable to parse "http" as a port', id="bad-port"),
    pytest.param("?ports=80", ["v5.channel.k8s.io"], 400, "subprotocols", id="unsupported-protocol"),
])
async def test_bad_requests_get_4xx_with_the_reason(kubelet: Kubelet, query, protocols, status, text):
    headers = {}
    if protocols is not None:
        headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                   "Sec-WebSocket-Protocol": ", ".join(protocols)}
    async with kubelet.session.get(f"{kubelet.url}/portForward/default/web{query}", headers=headers) as resp:
        assert resp.status == status
        assert text in await resp.text()


async def test_unknown_pod_is_404(kubelet: Kubelet):
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await kubelet.session.ws_connect(kubelet.ws_url("nope"), protocols=[portforward.SPDY_PROTOCOL])
    assert err.value.status == 404


# ---- a pod with its own network namespace (root) ----------------------------------------


@pytest.fixture
def netns() -> Any:
    if os.geteuid() != 0 or not shutil.which("ip"):
        if os.environ.get("CI") == "true":
            pytest.fail("needs root and iproute2 (CI=true)")
        pytest.skip("needs root and iproute2")
    name = f"mkp-pf-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


async def test_netns_pod_is_reached_on_its_own_localhost(kubelet: Kubelet, netns: str):
    port = free_port()
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c",
         "import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         f"s.bind(('127.0.0.1',{port}));s.listen();print('ready',flush=True)\n"
         "c,_=s.accept();c.sendall(b'inside:'+c.recv(100));c.close()"],
        stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        kubelet.pods.netns, kubelet.pods.pod_ip = f"/var/run/netns/{netns}", "10.244.0.9"
        client = await KubectlLikeClient.connect(kubelet)
        try:
            data, _ = await client.forward(port)
            assert await exchange(data, b"netns") == b"inside:netns"
            refused = port + 1 if port < 65535 else port - 1
            _, error = await client.forward(refused)
            message = (await read_all(error)).decode()
            assert re.fullmatch(
                rf"error forwarding port {refused} to pod {UID}, uid : failed to execute portforward in network "
                rf'namespace "/var/run/netns/{netns}": failed to connect to localhost:{refused} inside namespace '
                rf'"{UID}", IPv4: dial tcp4 127.0.0.1:{refused}: connect: connection refused IPv6 dial tcp6 '
                rf"\[::1\]:{refused}: .+ ", message), message
        finally:
            await client.close()
    finally:
        server.kill()
        server.wait()


# ---- end to end: real kubectl and the Python client through the API server -------------


async def _api(session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.request(method, url, json=body) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


@dataclass
class Cluster:
    api: Any  # tests.minikube_py.client.conftest.InProcessServer
    kubelet: Kubelet
    kubeconfig: str


@pytest.fixture
async def cluster(apiserver: Any, kubelet: Kubelet, tmp_path: Any) -> Cluster:  # noqa: F811
    """The API server, a Node whose kubelet endpoint is our kubelet server, and a Running
    pod `web` bound to it (labels app=web, containerPort 8080)."""
    import yaml

    port = int(kubelet.url.rsplit(":", 1)[1])
    s, api = kubelet.session, apiserver.url
    node = await _api(s, "POST", f"{api}/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    await _api(s, "PUT", f"{api}/api/v1/nodes/n1/status", node)
    pod = await _api(s, "POST", f"{api}/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "podinfo",
                                                   "ports": [{"containerPort": 8080, "name": "http"}]}]}})
    pod["status"] = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "hostIP": "127.0.0.1"}
    await _api(s, "PUT", f"{api}/api/v1/namespaces/default/pods/web/status", pod)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": api}}], "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}]}))
    return Cluster(apiserver, kubelet, str(kubeconfig))


@contextlib.asynccontextmanager
async def kubectl_port_forward(cluster: Cluster, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`kubectl port-forward ARGS`, ready (its "Forwarding from" lines printed); killed after."""
    from tests.conftest import require_tool

    process = await asyncio.create_subprocess_exec(
        require_tool("kubectl"), "--kubeconfig", cluster.kubeconfig, "port-forward", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        if not line.startswith(b"Forwarding from"):
            assert process.stderr is not None
            raise AssertionError(f"kubectl port-forward: {line!r} {await process.stderr.read()!r}")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.fixture
async def web_server() -> AsyncIterator[tuple[int, bytes]]:
    """The pod's HTTP server: `/` greets, `/big` is 5 MB, `/echo` (POST) answers the body."""
    from aiohttp import web

    big = os.urandom(5 * 1024 * 1024)

    async def root(request: web.Request) -> web.Response:
        return web.Response(text="hello from the pod")

    async def get_big(request: web.Request) -> web.Response:
        return web.Response(body=big)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application(client_max_size=16 << 20)
    app.router.add_get("/", root)
    app.router.add_get("/big", get_big)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1], big
    finally:
        await runner.cleanup()


async def test_kubectl_port_forward_pod_serves_http_concurrently_and_5_mb(cluster: Cluster, web_server):
    port, big = web_server
    local = free_port()
    async with kubectl_port_forward(cluster, "pod/web", f"{local}:{port}"):
        base = f"http://127.0.0.1:{local}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/") as resp:
                assert await resp.text() == "hello from the pod"

            async def fetch(i: int) -> bytes:
                async with aiohttp.ClientSession() as own:  # one TCP connection (SPDY stream pair) each
                    async with own.post(f"{base}/echo", data=f"request {i}".encode()) as resp:
                        return await resp.read()
            assert await asyncio.gather(*(fetch(i) for i in range(10))) == [f"request {i}".encode() for i in range(10)]
            async with session.get(f"{base}/big") as resp:
                assert await resp.read() == big
            upload = os.urandom(5 * 1024 * 1024)
            async with session.post(f"{base}/echo", data=upload) as resp:
                assert await resp.read() == upload


@pytest.mark.parametrize("kind", ["svc", "deployment"])
async def test_kubectl_port_forward_service_or_deployment_reaches_the_selected_pod(cluster: Cluster, web_server,
                                                                                   kind: str):
    port, _ = web_server
    api, session = cluster.api.url, cluster.kubelet.session
    if kind == "svc":
        await _api(session, "POST", f"{api}/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": port}]}})
        mapping = f"{free_port()}:80"  # kubectl maps the service port to the targetPort
    else:
        await _api(session, "POST", f"{api}/apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "podinfo"}]}}}})
        mapping = f"{free_port()}:{port}"
    async with kubectl_port_forward(cluster, f"{kind}/web", mapping):
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{mapping.split(':')[0]}/") as resp:
                assert await resp.text() == "hello from the pod"


async def test_kubectl_port_forward_refused_port_prints_the_kubelet_error(cluster: Cluster):
    remote, local = free_port(), free_port()
    async with kubectl_port_forward(cluster, "pod/web", f"{local}:{remote}") as process:
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # kubectl closes the local connection
        writer.close()
        assert process.stderr is not None
        stderr = (await asyncio.wait_for(process.stderr.read(), 10)).decode()
        assert await asyncio.wait_for(process.wait(), 10) == 1
    assert (f"an error occurred forwarding {local} -> {remote}: error forwarding port {remote} to pod {UID}, "
            f"uid : failed to execute portforward") in stderr.replace('\\"', '"')
    assert f"dial tcp4 127.0.0.1:{remote}: connect: connection refused" in stderr
    assert "error: lost connection to pod" in stderr


async def test_python_client_port_forward_through_the_api_server(cluster: Cluster):
    from kubernetes import client as k8s
    from kubernetes.stream import portforward as k8s_portforward

    port = cluster.kubelet.echo.port
    config = k8s.Configuration(host=cluster.api.url)

    def talk() -> bytes:
        with k8s.ApiClient(config) as api_client:
            core = k8s.CoreV1Api(api_client)
            pf = k8s_portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports=str(port))
            sock = pf.socket(port)
            sock.settimeout(10)
            sock.sendall(b"python client via the API server")
            got = b""
            while len(got) < 32:
                got += sock.recv(1024)
            pf.close()
            wait_until(lambda: not pf.connected, 10, "the Python client to close its WebSocket", 0.02)
            return got

    assert await asyncio.to_thread(talk) == b"python client via the API server"
