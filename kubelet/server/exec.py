"""`/exec/{namespace}/{pod}/{container}` and `/attach/...`: a command in a running
container, or the container's own stdio, over the WebSocket channel protocols
(`channels.py`), as the kubelet's CRI streaming server serves them.

Exec: `runtime.exec(container_id, command, stdin=, tty=)`; stdout and stderr (one stream
with a tty) go to channels 1 and 2, channel 0 feeds stdin (a v5 close signal for
channel 0 closes it: `kubectl cp`'s tar then sees EOF), channel 4 resizes the tty. At
the end the error channel carries the outcome (Success, or NonZeroExitCode with the
code) and the WebSocket closes normally. If the client goes away first, the command is
killed (nothing could read its output any more).

Attach: stdin through `runtime.attach_stdin` (containers with `stdin: true`), stdout
and stderr by following the container's log from its current end, until it exits.

Query (as the API server forwards it): `command` (repeated), `stdin`, `stdout`,
`stderr`, `tty` ("1" or "true"). Before the upgrade the request is checked: 404 for a
pod not here, 500 `container not found ("c")` for a container not running, 400 for no
streams at all; a valid request without a WebSocket upgrade gets 426 Upgrade Required
(the API server relies on that to tell a SPDY-only client what is wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from kubelet.server import PodProvider, channels
from kubelet.server.logs import LogRequestError, log_container_id, read_entries

log = logging.getLogger("kubelet.server")
OUTPUT_GRACE = 2.0  # seconds to drain output after the process exited (grandchildren may hold it)


@dataclass
class StreamOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(query: Any, key: str) -> bool:
    return query.get(key, "").lower() in ("1", "true", "t")


def stream_options(query: Any) -> StreamOptions:
    opts = StreamOptions(_flag(query, "stdin"), _flag(query, "stdout"), _flag(query, "stderr"), _flag(query, "tty"))
    if opts.tty:
        opts.stderr = False  # a tty merges both streams into stdout
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise web.HTTPBadRequest(text="you must specify at least 1 of stdin, stdout, stderr")
    return opts


def _running_container(provider: PodProvider, request: web.Request) -> tuple[dict[str, Any], str]:
    """(pod, containerID) of a running container, or an HTTP error as the kubelet answers."""
    namespace, pod_name = request.match_info["namespace"], request.match_info["pod"]
    container = request.match_info["container"]
    pod = provider.find_pod(namespace, pod_name)
    if pod is None:
        raise web.HTTPNotFound(text="pod does not exist")
    try:
        container_id, running = log_container_id(pod, container, previous=False)
    except LogRequestError:
        running = False
    if not running or not container_id:
        raise web.HTTPInternalServerError(text=f'container not found ("{container}")')
    return pod, container_id


async def _open(request: web.Request, opts: StreamOptions) -> channels.ChannelConn:
    """Upgrade to a channel-protocol WebSocket, or explain why not."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise web.HTTPUpgradeRequired(text="Upgrade request required: this kubelet streams over WebSocket "
                                     f"({', '.join(channels.PROTOCOLS)})")
    offered = channels.offered_protocols(request)
    protocol = channels.negotiate(offered)
    if protocol is None:
        raise web.HTTPBadRequest(text=f"unable to upgrade: unable to negotiate protocol: client supports "
                                      f"{offered}, server supports {list(channels.PROTOCOLS)}")
    ws = web.WebSocketResponse(protocols=[protocol] if protocol else (), max_msg_size=0, heartbeat=None)
    await ws.prepare(request)
    conn = channels.ChannelConn(ws, protocol)
    # As the CRI streaming server does: an empty message on the lowest writable
    # channel tells the client the streams are ready.
    first = channels.STDOUT if opts.stdout else channels.STDERR if opts.stderr else channels.ERROR
    await conn.send(first, b"")
    return conn


async def _pump(reader: Any, conn: channels.ChannelConn, channel: int) -> None:
    if reader is None:
        return
    while True:
        try:
            data = await reader.read(65536)
        except OSError:  # a pty's master reads EIO once the last process on it is gone
            return
        if not data:
            return
        await conn.send(channel, data)


def _resize(data: bytes) -> tuple[int, int] | None:
    try:
        size = json.loads(data)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None


async def exec_handler(request: web.Request) -> web.StreamResponse:
    provider: PodProvider = request.app["pods"]
    _, container_id = _running_container(provider, request)
    opts = stream_options(request.query)
    argv = request.query.getall("command", [])
    if not argv:
        raise web.HTTPBadRequest(text="you must specify at least one command for the container")
    conn = await _open(request, opts)
    try:
        process = await provider.runtime.exec(container_id, argv, stdin=opts.stdin, tty=opts.tty)
    except Exception as exc:  # noqa: BLE001 - any runtime failure is reported on the error channel
        await conn.send_status(channels.internal_error_status(f"error executing command in container: {exc}"))
        await conn.ws.close()
        return conn.ws
    pumps = [asyncio.create_task(_pump(process.stdout if opts.stdout else None, conn, channels.STDOUT)),
             asyncio.create_task(_pump(process.stderr if opts.stderr else None, conn, channels.STDERR))]
    reader = asyncio.create_task(_read_client(conn, process.stdin, lambda w, h: process.resize(w, h)))
    waiter = asyncio.create_task(process.wait())
    try:
        await asyncio.wait([waiter, reader], return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():  # the client left: nobody reads the output any more
            process.kill()
            await waiter
            return conn.ws
        code = waiter.result()
        if code < 0:  # killed by a signal: reported as the shell and runc do, 128 + signal
            code = 128 - code
        await asyncio.wait(pumps, timeout=OUTPUT_GRACE)
        status = channels.success_status() if code == 0 else channels.exit_code_status(code, argv)
        await conn.send_status(status)
    finally:
        for task in (*pumps, reader, waiter):
            task.cancel()
        await _close_writer(process.stdin)
        await conn.ws.close()
    return conn.ws


async def _close_writer(writer: Any) -> None:
    if writer is None:
        return
    with contextlib.suppress(Exception):
        writer.close()


async def _read_client(conn: channels.ChannelConn, stdin: Any, resize: Any) -> None:
    """Client messages until the WebSocket closes: stdin data, stdin close, resizes."""
    async for msg in conn.ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
            break
        frame = conn.decode(msg)
        if frame is None:
            continue
        if frame.channel == channels.STDIN and stdin is not None:
            if frame.closed:
                await _close_writer(stdin)
                stdin = None
                continue
            try:
                stdin.write(frame.data)
                await stdin.drain()
            except (ConnectionError, BrokenPipeError, RuntimeError):
                stdin = None  # the process closed its stdin; drop further input
        elif frame.channel == channels.RESIZE and not frame.closed:
            size = _resize(frame.data)
            if size is not None:
                with contextlib.suppress(Exception):
                    resize(*size)


async def attach_handler(request: web.Request) -> web.StreamResponse:
    provider: PodProvider = request.app["pods"]
    pod, container_id = _running_container(provider, request)
    opts = stream_options(request.query)
    container = request.match_info["container"]
    spec = next((c for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in (pod.get("spec") or {}).get(key) or [] if c.get("name") == container), {})
    tty = bool(spec.get("tty"))
    log_path = provider.log_path(pod, container, container_id)
    conn = await _open(request, opts)
    stdin = None
    if opts.stdin and spec.get("stdin"):
        try:
            stdin = await provider.runtime.attach_stdin(container_id)
        except Exception as exc:  # noqa: BLE001 - reported on the error channel
            await conn.send_status(channels.internal_error_status(f"error attaching to container: {exc}"))
            await conn.ws.close()
            return conn.ws
    stop = asyncio.Event()
    output = asyncio.create_task(_attach_output(conn, log_path, opts, tty, stop))
    reader = asyncio.create_task(_read_client(
        conn, stdin, lambda w, h: provider.runtime.resize(container_id, w, h)))
    exited = asyncio.create_task(provider.runtime.wait(container_id))
    try:
        await asyncio.wait([exited, reader], return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            stop.set()
            await asyncio.wait([output], timeout=OUTPUT_GRACE)
            await conn.send_status(channels.success_status())
    finally:
        for task in (output, reader, exited):
            task.cancel()
        await _close_writer(stdin)
        await conn.ws.close()
    return conn.ws


async def _attach_output(conn: channels.ChannelConn, path: Any, opts: StreamOptions, tty: bool,
                         stop: asyncio.Event) -> None:
    if path is None or not (opts.stdout or opts.stderr):
        return
    async for entry in read_entries(path, from_end=True, stop=stop):
        channel = channels.STDOUT if tty or entry.stream == "stdout" else channels.STDERR
        if (channel == channels.STDOUT and opts.stdout) or (channel == channels.STDERR and opts.stderr):
            await conn.send(channel, entry.content if entry.partial else entry.content + b"\n")
