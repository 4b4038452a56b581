"""Port-forward on the kubelet's endpoint: `/portForward/{namespace}/{pod}`.

The API server relays `pods/portforward` here as a WebSocket, with the subprotocol the
client asked for, and the two clients speak different protocols:

- kubectl 1.32: `SPDY/3.1+portforward.k8s.io`, a SPDY/3.1 session tunnelled as raw bytes
  in binary messages. Per local connection kubectl opens an error stream and a data stream
  (headers streamType, port, requestID); both get a SYN_REPLY, then the data stream is
  copied to and from a TCP connection to the pod's port. A failure is written as text on
  the error stream, and both streams are closed when the forwarding ends (kubectl waits
  for the error stream's end before it lets the local connection go).
- the Python client: `v4.channel.k8s.io` (or the base64 variant) with `?ports=80,8080`
  (the API server's own spelling is `port`, repeated; both are read). Port i uses channel
  2i for data and 2i+1 for errors, each first sent `[channel, port_lo, port_hi]`; one TCP
  connection per port lives as long as the WebSocket.

How a port is reached: in the pod's network namespace when the provider gives one
(`127.0.0.1`, then `::1`, inside it, as containerd does), otherwise at the pod's IP (the
loopback pod network puts each pod on its own 127.x address). Error texts follow the
kubelet's and containerd's, so kubectl prints what it prints against a real node.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import inspect
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from kubelet.server import spdy

log = logging.getLogger(__name__)

SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
V4_BINARY = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
STREAM_CREATION_TIMEOUT = 30.0  # kubelet default for the second stream of a pair
CONNECT_TIMEOUT = 30.0
CHUNK = 32 * 1024
MAX_MESSAGE = 32 << 20
CLONE_NEWNET = 0x40000000


class DialError(Exception):
    """The pod's port could not be reached; the text is what the error stream says."""


# ---- reaching the pod ----------------------------------------------------------------


def _go_dial_error(network: str, host: str, port: int, exc: OSError, op: str = "connect") -> str:
    """An OSError worded like Go's net.Dial error (what containerd reports)."""
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"dial {network} {addr}: i/o timeout"
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"dial {network} {addr}: {op}: {reason[:1].lower()}{reason[1:]}"


def _connect_blocking(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _connect_in_netns(netns: str, port: int, pod_id: str) -> socket.socket:
    """Runs on a thread of its own, which it moves into the pod's network namespace: the
    socket stays in that namespace after the thread (and its namespace switch) is gone."""
    prefix = f'failed to execute portforward in network namespace "{netns}"'
    try:
        fd = os.open(netns, os.O_RDONLY)
    except OSError as exc:
        raise DialError(f"{prefix}: {exc.strerror}: {netns}") from exc
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise DialError(f"{prefix}: setns: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
    errors = []
    for family, host, network in ((socket.AF_INET, "127.0.0.1", "tcp4"), (socket.AF_INET6, "::1", "tcp6")):
        try:
            return _connect_blocking(family, host, port)
        except OSError as exc:
            errors.append(_go_dial_error(network, host, port, exc))
    raise DialError(f'{prefix}: failed to connect to localhost:{port} inside namespace "{pod_id}", '
                    f"IPv4: {errors[0]} IPv6 {errors[1]} ")


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if not future.done():
        future.set_result(result) if exc is None else future.set_exception(exc)


async def _on_own_thread(fn: Any, *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            result: Any = fn(*args)
        except BaseException as exc:  # handed to the event loop, raised there
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, name=f"portforward-{fn.__name__}", daemon=True).start()
    return await future


@dataclass
class Target:
    """Where one pod's ports are: its network namespace if it has one, else its IP."""

    namespace: str
    name: str
    pod_id: str  # what error messages call the pod (containerd says the sandbox id; we use the uid)
    pod_ip: str | None = None
    netns: str | None = None

    async def dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.netns:
            sock = await _on_own_thread(_connect_in_netns, self.netns, port, self.pod_id)
            return await asyncio.open_connection(sock=sock, limit=CHUNK * 4)
        if not self.pod_ip:
            raise DialError(f'failed to execute portforward: pod "{self.namespace}/{self.name}" has no IP '
                            "address yet (status.podIP is empty)")
        network = "tcp6" if ":" in self.pod_ip else "tcp4"
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.pod_ip, port, limit=CHUNK * 4),
                                          CONNECT_TIMEOUT)
        except OSError as exc:  # TimeoutError included
            raise DialError(f'failed to execute portforward in network namespace "host": failed to connect '
                            f'to {self.pod_ip}:{port} for pod "{self.pod_id}", {"IPv6" if network == "tcp6" else "IPv4"}: '
                            f"{_go_dial_error(network, self.pod_ip, port, exc)}") from exc

    def error_message(self, port: int, exc: DialError) -> str:
        # The kubelet's wording; its "pod" is the sandbox id and its uid is empty.
        return f"error forwarding port {port} to pod {self.pod_id}, uid : {exc}"


async def _copy_to_pod(stream: spdy.Stream, writer: asyncio.StreamWriter) -> bool:
    """Client -> pod until the client's FIN (then half-close the TCP connection: True) or a
    reset (False)."""
    while data := await stream.read():
        writer.write(data)
        await writer.drain()
    if stream.is_reset:
        return False
    with contextlib.suppress(OSError):
        writer.write_eof()
    return True


async def _copy_from_pod(reader: asyncio.StreamReader, stream: spdy.Stream) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(CHUNK):
            await stream.write(data)


# ---- kubectl: SPDY/3.1 tunnelled in the WebSocket ---------------------------------------


@dataclass
class _Pair:
    request_id: str
    data: spdy.Stream | None = None
    error: spdy.Stream | None = None
    timer: asyncio.TimerHandle | None = None

    def add(self, stream: spdy.Stream) -> str | None:
        kind = stream.header("streamType")
        if getattr(self, kind) is not None:
            return f"{kind} stream already assigned"
        setattr(self, kind, stream)
        return None

    async def print_error(self, message: str) -> None:
        if self.error is not None:
            with contextlib.suppress(spdy.StreamClosed):
                await self.error.write(message.encode())


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _stream_problem(stream: spdy.Stream) -> str | None:
    """What the kubelet rejects a new stream for (it then resets the stream)."""
    port = stream.header("port")
    if not port:
        return '"port" header is required'
    if _number(port) is None or int(port) > 65535:
        return f"unable to parse {port!r} as a port"
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = stream.header("streamType")
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return None


@dataclass
class SpdyPortForwarder:
    """One kubectl port-forward session: a SPDY connection whose stream pairs each forward
    one local connection to the pod."""

    ws: web.WebSocketResponse
    target: Target
    pairs: dict[str, _Pair] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.conn = spdy.Connection(self.ws.send_bytes, on_stream=self._on_stream)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    await self.conn.feed(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    log.warning("port-forward %s/%s: text message on a SPDY tunnel; closing",
                                self.target.namespace, self.target.name)
                    break
        except spdy.SpdyError as exc:
            log.warning("port-forward %s/%s: SPDY protocol error: %s", self.target.namespace, self.target.name, exc)
        except ConnectionError:  # the WebSocket went away while we answered
            pass
        finally:
            self.conn.close()
            for pair in self.pairs.values():
                if pair.timer:
                    pair.timer.cancel()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _on_stream(self, stream: spdy.Stream) -> None:
        if problem := _stream_problem(stream):
            log.info("port-forward %s/%s: rejecting stream %d: %s", self.target.namespace, self.target.name,
                     stream.id, problem)
            await stream.reset(spdy.CANCEL)
            return
        await stream.reply()
        request_id = stream.header("requestID")
        if not request_id:  # old clients: error and data streams have consecutive odd ids
            request_id = str(stream.id if stream.header("streamType") == "error" else stream.id - 2)
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id)
            pair.timer = asyncio.get_running_loop().call_later(
                STREAM_CREATION_TIMEOUT, lambda: self._spawn(self._timed_out(pair)))
        if problem := pair.add(stream):
            await pair.print_error(f"error processing stream for request {request_id}: {problem}")
        elif pair.data is not None and pair.error is not None:
            if pair.timer:
                pair.timer.cancel()
            del self.pairs[request_id]
            self._spawn(self._forward(pair))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _timed_out(self, pair: _Pair) -> None:
        if self.pairs.get(pair.request_id) is pair:
            del self.pairs[pair.request_id]
            await pair.print_error(f"(conn={self.target.pod_id}, request={pair.request_id}) "
                                   "timed out waiting for streams")
            await self._finish(pair)

    async def _forward(self, pair: _Pair) -> None:
        assert pair.data is not None and pair.error is not None
        port = int(pair.data.header("port") or 0)
        try:
            reader, writer = await self.target.dial(port)
        except DialError as exc:
            message = self.target.error_message(port, exc)
            log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, message)
            await pair.print_error(message)
        else:
            await self._pump(pair.data, reader, writer)
        finally:
            await self._finish(pair)

    async def _pump(self, stream: spdy.Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = asyncio.ensure_future(_copy_to_pod(stream, writer))
        down = asyncio.ensure_future(_copy_from_pod(reader, stream))
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            # The client's FIN only half-closes: keep sending the pod's answer. A reset, a
            # failed write to the pod, or the pod's end finishes the forwarding.
            if up in done and not up.cancelled() and up.exception() is None and up.result():
                await down
        finally:
            up.cancel()
            down.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _finish(self, pair: _Pair) -> None:
        for stream in (pair.data, pair.error):
            if stream is not None:
                with contextlib.suppress(spdy.StreamClosed):
                    await stream.close()
                self.conn.forget(stream)


# ---- the Python client: WebSocket channels ----------------------------------------------


@dataclass
class ChannelPortForwarder:
    """`v4.channel.k8s.io` port-forward: data channel 2i and error channel 2i+1 per port."""

    ws: web.WebSocketResponse
    target: Target
    ports: list[int]
    base64: bool = False

    def __post_init__(self) -> None:
        self.inbox: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(16) for _ in self.ports]
        self.alive = [True] * len(self.ports)
        self.lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self.lock:
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def run(self) -> None:
        ports = asyncio.ensure_future(asyncio.gather(*(self._port(i, p) for i, p in enumerate(self.ports))))
        reader = asyncio.ensure_future(self._read())
        try:
            # The kubelet closes the WebSocket once every port's forwarding has ended.
            await asyncio.wait({ports, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ports, reader):
                task.cancel()
            await asyncio.gather(ports, reader, return_exceptions=True)

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                channel, payload = msg.data[0], msg.data[1:]
            elif msg.type == WSMsgType.TEXT and msg.data:
                channel, payload = ord(msg.data[0]) - ord("0"), base64.b64decode(msg.data[1:])
            else:
                continue
            index, is_error = divmod(channel, 2)
            if not is_error and 0 <= index < len(self.ports) and self.alive[index] and payload:
                await self.inbox[index].put(payload)
        for queue in self.inbox:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    async def _port(self, index: int, port: int) -> None:
        header = port.to_bytes(2, "little")
        with contextlib.suppress(ConnectionError):
            await self.send(2 * index, header)
            await self.send(2 * index + 1, header)
            try:
                reader, writer = await self.target.dial(port)
            except DialError as exc:
                self.alive[index] = False
                message = self.target.error_message(port, exc)
                log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, message)
                await self.send(2 * index + 1, message.encode())
                return
            up = asyncio.ensure_future(self._to_pod(index, writer))
            try:
                while data := await reader.read(CHUNK):
                    await self.send(2 * index, data)
            finally:
                self.alive[index] = False
                while not self.inbox[index].empty():  # unblock a reader waiting on this port
                    self.inbox[index].get_nowait()
                up.cancel()
                await asyncio.gather(up, return_exceptions=True)
                writer.close()

    async def _to_pod(self, index: int, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while (data := await self.inbox[index].get()) is not None:
                writer.write(data)
                await writer.drain()


# ---- the HTTP handler -----------------------------------------------------------------


def parse_ports(query: Any) -> list[int]:
    """Ports from `?port=80&port=8080` (API server -> kubelet) or `?ports=80,8080`."""
    values = [v for key in ("port", "ports") for v in query.getall(key, [])]
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for item in value.split(","):
            if _number(item) is None or int(item) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port')
            if int(item) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(item))
    return ports


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _target(provider: Any, namespace: str, name: str) -> Target | None:
    pod = await _resolve(provider.find_pod(namespace, name))
    if pod is None:
        return None
    sandbox = None
    if hasattr(provider, "sandbox"):  # optional: the pod's kubelet.runtime.base.Sandbox (pod_ip, netns)
        sandbox = await _resolve(provider.sandbox(namespace, name))
    pod_ip = getattr(sandbox, "pod_ip", None) or (pod.get("status") or {}).get("podIP") or None
    uid = (pod.get("metadata") or {}).get("uid") or f"{namespace}/{name}"
    return Target(namespace, name, uid, pod_ip, getattr(sandbox, "netns", None))


def _choose_protocol(request: web.Request) -> str | None:
    """The subprotocol to answer with; "" for none (the kubelet then speaks binary v4)."""
    offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
    offered = [p for p in offered if p]
    for protocol in offered:
        if protocol in (SPDY_PROTOCOL, V4_BINARY, V4_BASE64):
            return protocol
    return None if offered else ""


def _bad_request(message: str) -> web.Response:
    return web.Response(status=400, text=message + "\n")


def _upgrade_required(message: str) -> web.Response:
    """426 for a request without a WebSocket upgrade: the API server turns it into its
    "WebSocket only" Status for kubectl's SPDY fallback."""
    return web.Response(status=426, text=message + "\n")


async def handler(request: web.Request) -> web.StreamResponse:
    """GET /portForward/{namespace}/{pod} (WebSocket only; see the module docstring)."""
    namespace, name = request.match_info["namespace"], request.match_info["pod"]
    if request.app["pods"].find_pod(namespace, name) is None:  # as the kubelet: the pod before the protocol
        return web.Response(status=404, text="pod does not exist\n")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return _upgrade_required(
            "unable to upgrade: port-forward needs a WebSocket request (Upgrade: websocket) with subprotocol "
            f"{SPDY_PROTOCOL} (kubectl) or {V4_BINARY}/{V4_BASE64} (?port=N); plain SPDY/3.1 upgrades are "
            "not served by this kubelet")
    protocol = _choose_protocol(request)
    if protocol is None:
        return _bad_request(f"unable to upgrade: none of the requested WebSocket subprotocols is supported; "
                            f"supported: {SPDY_PROTOCOL}, {V4_BINARY}, {V4_BASE64}")
    ports: list[int] = []
    if protocol != SPDY_PROTOCOL:
        try:
            ports = parse_ports(request.query)
        except ValueError as exc:
            return _bad_request(str(exc))
    target = await _target(request.app["pods"], namespace, name)
    if target is None:
        return web.Response(status=404, text="pod does not exist\n")
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    try:
        if protocol == SPDY_PROTOCOL:
            await SpdyPortForwarder(ws, target).run()
        else:
            await ChannelPortForwarder(ws, target, ports, base64=protocol == V4_BASE64).run()
    finally:
        await ws.close()
    return ws
