"""WebSocket upgrades through the ingress.

nginx tunnels an upgraded connection's bytes; aiohttp's server hands us messages instead,
so the relay opens its own WebSocket to the pod (offering the client's subprotocols,
answering with the one the pod chose) and then copies messages both ways until either
side closes, passing the close code on. Frames arrive as whole messages, which a client
cannot tell apart. The upstream connection is made before the client's upgrade is
answered, so a pod that is down still gets the client a 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.ingress.annotations import LocationConfig
from proxy.ingress.pages import error_page
from proxy.ingress.upstreams import Endpoint

log = logging.getLogger("proxy.ingress")

_HANDSHAKE_HEADERS = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                      "sec-websocket-protocol", "sec-websocket-accept")


def is_websocket(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _connect(session: aiohttp.ClientSession, endpoints: list[Endpoint], uri: str, headers: CIMultiDict[str],
                   protocols: tuple[str, ...], config: LocationConfig) -> aiohttp.ClientWebSocketResponse | None:
    timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)
    for endpoint in endpoints:
        url = URL(f"http://{endpoint.authority}{uri}", encoded=True)
        try:
            return await asyncio.wait_for(
                session.ws_connect(url, headers=headers, protocols=protocols, timeout=timeout, autoping=False,
                                   max_msg_size=0),
                config.connect_timeout + config.read_timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("websocket to %s failed: %s", endpoint.authority, exc)
    return None


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.PING:
            await sink.ping(message.data)
        elif message.type == aiohttp.WSMsgType.PONG:
            await sink.pong(message.data)
    code = source.close_code or aiohttp.WSCloseCode.OK
    await sink.close(code=code)


async def relay_websocket(session: aiohttp.ClientSession, request: web.BaseRequest, endpoints: list[Endpoint],
                          uri: str, headers: CIMultiDict[str], config: LocationConfig) -> web.StreamResponse:
    forward = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HANDSHAKE_HEADERS)
    offered = tuple(p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip())
    upstream = await _connect(session, endpoints, uri, forward, offered, config)
    if upstream is None:
        return error_page(502)
    downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                       autoping=False, max_msg_size=0)
    try:
        await downstream.prepare(request)
        tasks = [asyncio.create_task(_pump(downstream, upstream)), asyncio.create_task(_pump(upstream, downstream))]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await downstream.close()
    return downstream
