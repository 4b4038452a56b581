"""The data plane: every request on the HTTP and HTTPS listeners goes through `Dataplane.handle`.

One request, in ingress-nginx's order:
1. route: server by Host header, location by path (routes.RoutingTable);
2. redirect plain HTTP to HTTPS with 308 when the location's ssl-redirect applies;
3. limits of the location's Ingress (503 over a rate or connection limit; 413 for a body
   whose Content-Length is over proxy-body-size, 1m by default as in ingress-nginx; a
   chunked body is not measured);
4. the backend: the controller's default backend answers 404, a backend without a ready
   endpoint 503;
5. proxy: a keep-alive pooled aiohttp client to the pod, request and response bodies
   streamed both ways, hop-by-hop headers dropped, the X-Forwarded-* / X-Real-IP /
   X-Request-ID headers ingress-nginx sets, the Host header passed through; a refused or
   timed-out connect tries the next endpoint (3 tries, like proxy-next-upstream-tries);
   502 when none connects, 504 on a timeout. HTTPS answers of a TLS host carry
   Strict-Transport-Security as ingress-nginx's defaults (hsts: true, max-age one year,
   includeSubDomains). WebSocket upgrades are relayed message by message (websocket.py).

The routing table and upstreams are replaced as a whole by the controller (`configure`),
so a request sees one consistent configuration.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.ingress.annotations import LocationConfig
from proxy.ingress.metrics import Metrics
from proxy.ingress.pages import error_page
from proxy.ingress.ratelimit import ConnectionLimits, LeakyBuckets
from proxy.ingress.routes import Location, RoutingTable, Server, build_table, normalize_host, rewrite
from proxy.ingress.upstreams import Endpoint, Upstream
from proxy.ingress.websocket import is_websocket, relay_websocket

log = logging.getLogger("proxy.ingress")

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "proxy-authenticate", "proxy-authorization"))
NOT_FORWARDED = HOP_BY_HOP | {"expect"}  # 100-continue is answered here, as nginx does
NEXT_UPSTREAM_TRIES = 3
HSTS = "max-age=31536000; includeSubDomains"  # ingress-nginx's default hsts settings, on TLS hosts


@dataclass
class Listener:
    """What a request needs to know about the listener it came in on (the port is the bound
    one once the listener is up, when 0 asked for any free port)."""

    scheme: str  # http | https
    port: int


def upstream_headers(request: web.BaseRequest, listener: Listener) -> CIMultiDict[str]:
    """The request's headers as the pod should see them."""
    connection_tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in NOT_FORWARDED or lower in connection_tokens or lower.startswith("x-forwarded-"):
            continue
        headers.add(name, value)
    remote = request.remote or ""
    if "X-Forwarded-For" in request.headers:
        headers["X-Original-Forwarded-For"] = request.headers["X-Forwarded-For"]
    headers["X-Request-ID"] = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    headers["X-Real-IP"] = remote
    headers["X-Forwarded-For"] = remote
    headers["X-Forwarded-Host"] = request.headers.get("Host", "")
    headers["X-Forwarded-Port"] = str(listener.port)
    headers["X-Forwarded-Proto"] = listener.scheme
    headers["X-Forwarded-Scheme"] = listener.scheme
    headers["X-Scheme"] = listener.scheme
    return headers


class Dataplane:
    """The request handler and the configuration it serves."""

    def __init__(self, metrics: Metrics, *, https_port: int = 443) -> None:
        self.metrics = metrics
        self.https_port = https_port  # where ssl-redirect sends clients
        self.table: RoutingTable = build_table([])
        self.upstreams: dict[str, Upstream] = {}
        self.buckets = LeakyBuckets()
        self.connections = ConnectionLimits()
        self._session: aiohttp.ClientSession | None = None

    def configure(self, table: RoutingTable, upstreams: dict[str, Upstream]) -> None:
        self.table, self.upstreams = table, upstreams

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ssl=False)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def handler(self, listener: Listener):  # type: ignore[no-untyped-def]
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            return await self.handle(request, listener)
        return handle

    async def handle(self, request: web.BaseRequest, listener: Listener) -> web.StreamResponse:
        start = time.monotonic()
        table, upstreams = self.table, self.upstreams
        server, location, _found = table.route(request.headers.get("Host", ""), request.path)
        status = 499  # nginx's "client closed request", if we never get to answer
        try:
            response = await self._serve(request, listener, server, location, upstreams)
            status = response.status
            return response
        finally:
            namespace, ingress = location.ingress or ("", "")
            self.metrics.observe(namespace=namespace, ingress=ingress,
                                 service=location.backend.name if location.backend else "", status=status,
                                 method=request.method, host=server.hostname, path=location.path,
                                 seconds=time.monotonic() - start)

    async def _serve(self, request: web.BaseRequest, listener: Listener, server: Server, location: Location,
                     upstreams: dict[str, Upstream]) -> web.StreamResponse:
        config = location.config
        if listener.scheme == "http" and (config.force_ssl_redirect or (config.ssl_redirect and server.tls)):
            return self._redirect(request)
        zone = "_".join(location.ingress) if location.ingress else ""
        client = request.remote or ""
        if zone and not self._within_rate(zone, client, config):
            return error_page(503)
        if zone and config.limit_connections:
            if not self.connections.acquire(zone, client, config.limit_connections):
                return error_page(503)
            try:
                return await self._to_backend(request, listener, server, location, upstreams)
            finally:
                self.connections.release(zone, client)
        return await self._to_backend(request, listener, server, location, upstreams)

    def _redirect(self, request: web.BaseRequest) -> web.Response:
        host = normalize_host(request.headers.get("Host", "")) or request.url.host or "localhost"
        port = "" if self.https_port == 443 else f":{self.https_port}"
        location = f"https://{host}{port}{request.raw_path}"
        return error_page(308, headers={"Location": location})

    def _within_rate(self, zone: str, client: str, config: LocationConfig) -> bool:
        multiplier = config.limit_burst_multiplier
        if config.limit_rps and not self.buckets.allow(zone + "_rps", client, config.limit_rps,
                                                       config.limit_rps * multiplier):
            return False
        if config.limit_rpm and not self.buckets.allow(zone + "_rpm", client, config.limit_rpm / 60,
                                                       config.limit_rpm * multiplier):
            return False
        return True

    async def _to_backend(self, request: web.BaseRequest, listener: Listener, server: Server, location: Location,
                          upstreams: dict[str, Upstream]) -> web.StreamResponse:
        if location.unsupported:
            return error_page(503, location.unsupported)
        if location.backend is None:
            return error_page(404)
        limit = location.config.proxy_body_size
        if limit and request.content_length is not None and request.content_length > limit:
            return error_page(413)
        upstream = upstreams.get(location.backend.upstream_name)
        endpoints = upstream.pick(NEXT_UPSTREAM_TRIES) if upstream else []
        if not endpoints:
            return error_page(503)
        uri = rewrite(location, request.path, request.query_string) or request.raw_path
        headers = upstream_headers(request, listener)
        if is_websocket(request):
            return await relay_websocket(self.session(), request, endpoints, uri, headers, location.config)
        added = {"Strict-Transport-Security": HSTS} if listener.scheme == "https" and server.tls else {}
        return await self._proxy(request, endpoints, uri, headers, location.config, added)

    async def _proxy(self, request: web.BaseRequest, endpoints: list[Endpoint], uri: str,
                     headers: CIMultiDict[str], config: LocationConfig, added: dict[str, str]) -> web.StreamResponse:
        body = request.content if request.body_exists else None
        if body is not None and request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        timeout = aiohttp.ClientTimeout(sock_connect=config.connect_timeout, sock_read=config.read_timeout)
        status = 502
        for endpoint in endpoints:
            url = URL(f"http://{endpoint.authority}{uri}", encoded=True)
            try:
                upstream = await self.session().request(request.method, url, headers=headers, data=body,
                                                        allow_redirects=False, timeout=timeout)
            except aiohttp.ConnectionTimeoutError:
                status = 504
                continue  # connect timed out: proxy_next_upstream timeout
            except aiohttp.ClientConnectorError as exc:
                log.debug("connect to %s failed: %s", endpoint.authority, exc)
                status = 502
                continue  # refused / unreachable: proxy_next_upstream error
            except (TimeoutError, aiohttp.ServerTimeoutError):
                return error_page(504)
            except aiohttp.ClientError as exc:
                log.info("upstream %s failed: %s", endpoint.authority, exc)
                return error_page(502)
            async with upstream:
                return await self._relay_response(request, upstream, added)
        return error_page(status)

    @staticmethod
    async def _relay_response(request: web.BaseRequest, upstream: aiohttp.ClientResponse,
                              added: dict[str, str]) -> web.StreamResponse:
        tokens = {t.strip().lower() for t in upstream.headers.get("Connection", "").split(",")}
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() not in tokens:
                response.headers.add(name, value)
        for name, value in added.items():
            response.headers.setdefault(name, value)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Headers are gone already: all we can do is cut the connection, as nginx does.
            log.info("upstream response broke off: %s", exc)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response
