"""The upstream side of HTTP/1.1: client connections to one endpoint, their pool, and the
`Exchange` that carries one downstream `Stream` through one upstream connection.

Shaped like Envoy's HTTP/1 connection pool: one request at a time per connection (no
upstream pipelining), idle connections reused most-recently-used first, a new connection
per waiting request while the circuit breaker (`Limits`) allows, otherwise the request
waits in the pending queue, otherwise it overflows (the caller answers 503 UO).
Everything runs in protocol callbacks; the only task is the connect, which is rare with
keep-alive.

What an exchange reports (`ExchangeReport`) is what retries, outlier detection and stats
need: outcome (ok, connect_failure, overflow, reset, status), the status, whether the
connection was reused, and the times of connect, first response byte and end.

A reused connection the upstream closed while we were sending (the classic keep-alive
race) fails with no response byte: the exchange is retried once on a fresh connection
when the request is idempotent (or bodiless) and its body is still kept. Envoy leaves
this to the route's retry policy (`reset`); doing it here once is what most HTTP clients
do and keeps a plain proxy without retry policy from failing on idle-timeout races.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Protocol

import httptools

from proxy.engine.headers import (
    RESPONSE_FRAMING,
    Headers,
    connection_tokens,
    finish_response_headers,
    serialize,
)
from proxy.engine.http1 import Stream
from proxy.engine.tls import ConnectionSecurity, PeerVerificationError, UpstreamTls

CONNECT_TIMEOUT = 5.0  # Envoy cluster connect_timeout default
IDLE_TIMEOUT = 3600.0  # Envoy/Istio HTTP idle_timeout default (1 h)
IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))
Waiter = Callable[["UpstreamConnection | None", "str | None"], None]


class Limits(Protocol):
    """Circuit breaker hooks the pool consults (another module keeps the counters)."""

    def allow_connection(self, open_connections: int) -> bool: ...

    def allow_pending(self, pending_requests: int) -> bool: ...


class DefaultLimits:
    """Envoy's default thresholds: 1024 connections, 1024 pending requests."""

    def __init__(self, max_connections: int = 1024, max_pending_requests: int = 1024) -> None:
        self.max_connections = max_connections
        self.max_pending_requests = max_pending_requests

    def allow_connection(self, open_connections: int) -> bool:
        return open_connections < self.max_connections

    def allow_pending(self, pending_requests: int) -> bool:
        return pending_requests < self.max_pending_requests


class ExchangeReport:
    """What happened to one upstream exchange (times from loop.time()); an Exchange is
    its own report, so reporting allocates nothing."""

    __slots__ = ("endpoint", "outcome", "status", "reused", "start_time", "connect_time", "first_byte_time",
                 "end_time", "stale_retried")

    def _init_report(self, endpoint: tuple[str, int], start_time: float) -> None:
        self.endpoint = endpoint
        self.outcome = "pending"  # ok | connect_failure | overflow | reset | status | downstream_reset
        self.status = 0
        self.reused = False
        self.start_time = start_time
        self.connect_time = 0.0  # when a connection was assigned (and the request written)
        self.first_byte_time = 0.0
        self.end_time = 0.0
        self.stale_retried = False

    @property
    def report(self) -> ExchangeReport:
        return self


class Pool:
    """Keep-alive HTTP/1.1 connections to one endpoint (host, port)."""

    def __init__(self, address: tuple[str, int], *, connect_timeout: float = CONNECT_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT, max_requests_per_connection: int = 0,
                 limits: Limits | None = None, tls: UpstreamTls | None = None) -> None:
        self.address = address
        self.tls = tls  # the cluster's transport_socket tls: every connect handshakes and checks SANs
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_requests_per_connection = max_requests_per_connection
        self.limits: Limits = limits or DefaultLimits()
        self.connections: set[UpstreamConnection] = set()
        self.idle: list[UpstreamConnection] = []
        self.pending: collections.deque[Waiter] = collections.deque()
        self.connecting = 0
        self.connects = 0
        self.connect_failures = 0
        self.overflows = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    def acquire(self, waiter: Waiter, *, fresh: bool = False) -> None:
        """Call `waiter(conn, None)` with a connection, or `waiter(None, outcome)`."""
        if not fresh:
            idle = self.idle
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    waiter(conn, None)
                    return
        if self.limits.allow_connection(len(self.connections) + self.connecting):
            self.pending.append(waiter)
            self.connecting += 1
            asyncio.get_event_loop().create_task(self._connect())
        elif self.limits.allow_pending(len(self.pending)):
            self.pending.append(waiter)
        else:
            self.overflows += 1
            waiter(None, "overflow")

    def cancel(self, waiter: Waiter) -> None:
        """Forget a waiting request (its downstream went away)."""
        try:
            self.pending.remove(waiter)
        except ValueError:
            pass

    async def _connect(self) -> None:
        loop = asyncio.get_event_loop()
        tls = self.tls
        kw = {} if tls is None else {"ssl": tls.context(), "server_hostname": tls.server_hostname(self.address[0])}
        try:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(self), *self.address, **kw),  # type: ignore[arg-type]
                self.connect_timeout)
            if tls is not None:  # the server's SANs, before the connection carries anything
                try:
                    conn.security = tls.verify(transport)
                except PeerVerificationError:
                    transport.abort()
                    raise ConnectionRefusedError("upstream certificate SAN mismatch") from None
        except (TimeoutError, OSError) as e:
            if tls is not None and isinstance(e, ssl.SSLError):
                tls.count("ssl.connection_error")
            self.connecting -= 1
            self.connect_failures += 1
            # as Envoy: a failed connect fails the waiters no other connect will serve
            while self.pending and len(self.pending) > self.connecting + len(self.connections):
                self.pending.popleft()(None, "connect_failure")
            return
        self.connecting -= 1
        self.connects += 1
        self.connections.add(conn)
        self.release(conn)

    def release(self, conn: UpstreamConnection) -> None:
        """A connection is free again: give it to a waiter or keep it idle."""
        if conn.closed or conn.tunnel:
            return
        if self.closed or (self.max_requests_per_connection and conn.requests >= self.max_requests_per_connection):
            conn.close()
            return
        if self.pending:
            self.pending.popleft()(conn, None)
            return
        conn.idle_since = conn.loop.time()
        self.idle.append(conn)
        if self._sweeper is None:
            interval = max(0.05, min(self.idle_timeout / 2, 30.0))
            self._sweeper = asyncio.get_event_loop().call_later(interval, self._sweep, interval)

    def _sweep(self, interval: float) -> None:
        now = asyncio.get_event_loop().time()
        for conn in [c for c in self.idle if now - c.idle_since >= self.idle_timeout]:
            self.idle.remove(conn)
            conn.close()
        self._sweeper = None
        if self.idle:
            self._sweeper = asyncio.get_event_loop().call_later(interval, self._sweep, interval)

    def forget(self, conn: UpstreamConnection) -> None:
        self.connections.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        """Close idle connections now and busy ones when their exchange ends (drain)."""
        self.closed = True
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 client connection; `exchange` is the request it currently carries."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.security: ConnectionSecurity | None = None  # set on TLS connections (the server's identity)
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.requests = 0
        self.idle_since = 0.0
        self.closed = False
        self.tunnel = False
        self._headers: Headers = []  # the response's, without RESPONSE_FRAMING names
        self._length: int | None = None
        self._chunked = False
        self._connection = b""
        self._upgrade: bytes | None = None
        self._informational = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if self.tunnel and ex is not None:
            ex.stream.tunnel_data(data)
            return
        if ex is None:  # bytes while idle: the upstream is confused; do not reuse
            self.close()
            return
        if not ex.first_byte_time:
            ex.first_byte_time = ex.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self.exchange is not None:
                self.exchange._upgraded(data[exc.args[0]:])
        except httptools.HttpParserError as exc:
            if not isinstance(exc.__context__, _HeadResponseDone):
                self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in RESPONSE_FRAMING:  # framing and hop-by-hop: noted, not forwarded
            if name == b"content-length":
                self._length = int(value)
            elif name == b"transfer-encoding":
                self._chunked = b"chunked" in value.lower()
            elif name == b"connection":
                self._connection = value
            elif name == b"upgrade":
                self._upgrade = value
        else:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers, self._headers = self._headers, []
        length, chunked, connection = self._length, self._chunked, self._connection
        self._length, self._chunked, self._connection = None, False, b""
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True  # 100 Continue etc.: we answered the client ourselves
            return
        ex = self.exchange
        if ex is None:
            return
        tokens = connection_tokens(connection) if connection else frozenset()
        ex._response_head(status, headers, None if chunked else length, chunked, tokens,
                          self._upgrade if status == 101 else None)
        if ex.method == b"HEAD":
            # llhttp would wait for the body a HEAD response's content-length announces
            self.parser = httptools.HttpResponseParser(self)
            ex._response_end(b"close" not in connection.lower())
            raise _HeadResponseDone()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange._response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        ex = self.exchange
        if ex is not None and ex.status != 101:  # after a 101 the tunnel follows
            ex._response_end(self.parser.should_keep_alive())

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.stream.pause_body()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.stream.resume_body()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.pool.forget(self)
        ex, self.exchange = self.exchange, None
        if ex is not None:
            ex._upstream_lost()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()


class _HeadResponseDone(Exception):
    """Stops the parser after a HEAD response's headers (it has no body)."""


RESET_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: "
FAILURE_REASONS = {"connect_failure": b"connection failure", "overflow": b"overflow",
                   "reset": b"connection termination"}


class Exchange(ExchangeReport):
    """Carries `stream` through one pool: request out, response back, both streamed.

    `headers` are the request headers to send (already rewritten, see headers.py).
    `on_error(report)` is called when the exchange failed before anything was sent
    downstream (connect_failure, overflow, reset, or a status `retry_on_status`
    claimed): the caller may retry with a new Exchange on the same stream; without it
    the exchange answers 503 as Envoy does. `on_complete(report)` is called at the end
    of a response that went downstream (outcome ok, or reset mid-response).
    `on_response_headers(status, headers) -> headers`, when set, edits the response
    headers before they go downstream (route response_headers_to_add, CORS...).
    """

    __slots__ = ("stream", "pool", "headers", "method", "path", "on_error", "on_complete", "retry_on_status",
                 "on_response_headers", "conn", "loop", "_chunked", "_intercepted", "_started", "_finished", "_until_close")

    def __init__(self, stream: Stream, pool: Pool, headers: Headers, *, method: bytes | None = None,
                 path: bytes | None = None, on_error: Callable[[ExchangeReport], None] | None = None,
                 on_complete: Callable[[ExchangeReport], None] | None = None,
                 retry_on_status: Callable[[int], bool] | None = None) -> None:
        head = stream.head
        assert head is not None
        self.stream = stream
        self.pool = pool
        self.headers = headers
        self.method = method or head.method
        self.path = path or head.path
        self.on_error = on_error
        self.on_complete = on_complete
        self.retry_on_status = retry_on_status
        self.on_response_headers: Callable[[int, Headers], Headers] | None = None
        self.conn: UpstreamConnection | None = None
        self.loop = stream.conn.loop
        self._init_report(pool.address, self.loop.time())
        self._chunked = head.chunked
        self._intercepted = False
        self._started = False  # the response head went downstream
        self._finished = False
        self._until_close = False  # a response without length: its end is the close

    def start(self) -> None:
        self.pool.acquire(self._connected)

    def _connected(self, conn: UpstreamConnection | None, failure: str | None) -> None:
        if conn is None:
            self._fail(failure or "connect_failure")
            return
        if self._finished:  # the downstream left while we waited
            self.pool.release(conn)
            return
        self.conn = conn
        conn.exchange = self
        self.reused = conn.requests > 0
        conn.requests += 1
        self.connect_time = self.loop.time()
        frame = b"transfer-encoding: chunked\r\n" if self._chunked else b""
        conn.transport.write(b"%s %s HTTP/1.1\r\n%s%s\r\n" % (  # type: ignore[union-attr]
            self.method, self.path, serialize(self.headers), frame))
        self.stream.attach(self)

    # -- request body (BodySink) -----------------------------------------------------
    def body_data(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return
        if self._chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        conn.transport.write(data)  # type: ignore[union-attr]

    def body_end(self) -> None:
        conn = self.conn
        if self._chunked and conn is not None and not conn.closed:
            conn.transport.write(b"0\r\n\r\n")  # type: ignore[union-attr]

    def downstream_blocked(self, blocked: bool) -> None:
        conn = self.conn
        if conn is not None and not conn.closed and conn.transport is not None:
            if blocked:
                conn.transport.pause_reading()
            else:
                conn.transport.resume_reading()

    def downstream_reset(self) -> None:
        """The client went away: abandon the upstream connection (it may be mid-message)."""
        self._finished = True
        self.outcome = "downstream_reset"
        self.pool.cancel(self._connected)
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.exchange = None
            if conn.transport is not None:
                conn.transport.abort()

    # -- response (called by UpstreamConnection) -------------------------------------
    def _response_head(self, status: int, headers: Headers, length: int | None, chunked: bool,
                       tokens: frozenset[bytes], upgrade: bytes | None) -> None:
        self.status = status
        if self.retry_on_status is not None and self.retry_on_status(status):
            self._intercepted = True
            return
        self._started = True
        self._until_close = length is None and not chunked and status >= 200 and status not in (204, 304)
        ms = int((self.loop.time() - self.start_time) * 1000)
        headers = finish_response_headers(headers, tokens=tokens, service_time_ms=ms, upgrade=upgrade)
        if self.on_response_headers is not None:
            headers = self.on_response_headers(status, headers)
        self.stream.respond_head(status, headers, content_length=length)

    def _response_body(self, data: bytes) -> None:
        if not self._intercepted:
            self.stream.respond_data(data)

    def _response_end(self, keep_alive: bool) -> None:
        conn, self.conn = self.conn, None
        self._finished = True
        report: ExchangeReport = self
        report.end_time = self.loop.time()
        if conn is not None:
            conn.exchange = None
            if keep_alive and self.stream.body_complete:
                self.pool.release(conn)
            else:
                conn.close()
        self.stream.detach()
        if self._intercepted:
            report.outcome = "status"
            self._error(report)
            return
        report.outcome = "ok"
        self.stream.respond_end()
        if self.on_complete is not None:
            self.on_complete(report)

    def _upgraded(self, rest: bytes) -> None:
        conn = self.conn
        if conn is None or self.status != 101:
            return
        conn.tunnel = True
        self.pool.forget(conn)
        transport = conn.transport
        assert transport is not None

        def close() -> None:
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

        self.stream.start_tunnel(transport.write, close)
        if rest:
            self.stream.tunnel_data(rest)

    def _upstream_lost(self) -> None:
        """The connection closed before the response ended."""
        if self._finished:
            return
        report: ExchangeReport = self
        conn, self.conn = self.conn, None
        if conn is not None and conn.tunnel:
            self._finished = True
            report.outcome = "ok"
            downstream = self.stream.conn.transport
            if downstream is not None:
                downstream.close()  # after the buffered bytes
            if self.on_complete is not None:
                self.on_complete(report)
            return
        if self._started:
            if self._until_close:
                self._response_end(False)
                return
            self._finished = True
            report.outcome = "reset"
            report.end_time = self.loop.time()
            self.stream.reset()
            if self.on_complete is not None:
                self.on_complete(report)
            return
        if (report.reused and not report.first_byte_time and not report.stale_retried and self.stream.retryable
                and (self.method in IDEMPOTENT or not self.stream.received)):
            report.stale_retried = True  # the keep-alive race: once, on a fresh connection
            self.stream.detach()
            self.pool.acquire(self._connected, fresh=True)
            return
        self._fail("reset")

    def _fail(self, outcome: str) -> None:
        self._finished = True
        self.outcome = outcome
        self.end_time = self.loop.time()
        self.stream.detach()
        self._error(self)

    def _error(self, report: ExchangeReport) -> None:
        if self.on_error is not None:
            self.on_error(report)
            return
        if report.outcome == "status":  # claimed for a retry but nobody retries
            self.stream.local_reply(report.status or 503, b"")
            return
        extra: Headers = [(b"x-envoy-overloaded", b"true")] if report.outcome == "overflow" else []
        self.stream.local_reply(503, RESET_BODY + FAILURE_REASONS.get(report.outcome, b"connection termination"),
                                extra)
