"""The downstream side of HTTP/1.1: a raw asyncio Protocol fed to httptools' parser.

Why raw callbacks: a proxy parses every request twice (downstream and upstream), so the
per-request cost is what limits it. Here no coroutine or task is created per request:
the parser's callbacks build a `RequestHead`, a `Stream` is handed to the `Handler`
(synchronously), and the response is written by whoever the handler attached (the
upstream exchange, or a local reply).

Pipelining: the parser consumes everything it is fed, so a later request may be parsed
while an earlier one is still being answered. Streams are queued in arrival order and a
stream's handler runs only when every earlier response has ended, so responses never
interleave. A queued stream's body is held (and reading paused past the buffer limit).

Bodies are streamed: each parsed chunk goes to the stream's sink as it arrives; while it
fits `buffer_limit` (Envoy's per_connection_buffer_limit_bytes, 1 MiB) the body is also
kept, so a handler may replay it to another upstream (retries); a bigger body turns
`Stream.retryable` off. Flow control both ways: the upstream pausing our writes pauses
reading the downstream (`pause_body`), and the downstream's transport passing its
high-water mark tells the sink (`downstream_blocked`) to stop reading the upstream.

Upgrades: after the upstream's 101 the handler calls `Stream.start_tunnel` and both
connections relay raw bytes.
"""

from __future__ import annotations

import asyncio
import collections
import http
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import httptools

from proxy.engine.headers import Headers, serialize

if TYPE_CHECKING:
    from proxy.engine.tls import ConnectionSecurity

MAX_REQUEST_HEADERS_KB = 60  # Envoy's http_connection_manager default
BUFFER_LIMIT = 1024 * 1024  # Envoy's per_connection_buffer_limit_bytes default
MAX_QUEUED = 32  # pipelined requests parsed ahead before reading pauses

REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
NO_BODY_STATUS = frozenset((204, 304))
log = logging.getLogger("proxy.engine.http1")


class RequestHead:
    """A parsed request line and headers (names lower-cased, order kept)."""

    __slots__ = ("method", "path", "version", "headers", "keep_alive", "upgrade", "expect_continue",
                 "chunked", "content_length")

    def __init__(self, method: bytes, path: bytes, version: str, headers: Headers, keep_alive: bool,
                 upgrade: bool, expect_continue: bool, chunked: bool, content_length: int | None) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.chunked = chunked
        self.content_length = content_length

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


class BodySink(Protocol):
    """Receives a stream's request body and the downstream's state (an upstream exchange)."""

    def body_data(self, data: bytes) -> None: ...

    def body_end(self) -> None: ...

    def downstream_blocked(self, blocked: bool) -> None: ...

    def downstream_reset(self) -> None: ...


class Handler(Protocol):
    """Called once per request, in order, when the stream may start answering."""

    def __call__(self, stream: Stream) -> None: ...


class Stream:
    """One request/response exchange on a downstream connection."""

    __slots__ = ("head", "conn", "start_time", "sink", "_kept", "_pending", "_pending_bytes", "received",
                 "body_complete", "response_started", "done", "status", "_out", "_chunked_out", "_no_body",
                 "_tunnel", "_tunnel_close", "_early", "error_status", "bytes_sent", "_attached_once",
                 "body_bytes_sent")

    def __init__(self, head: RequestHead | None, conn: DownstreamConnection, start_time: float) -> None:
        self.head = head
        self.conn = conn
        self.start_time = start_time
        self.sink: BodySink | None = None
        self._kept: list[bytes] | None = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._attached_once = False
        self.received = 0
        self.body_complete = head is None or not head.has_body
        self.response_started = False
        self.done = False
        self.status = 0
        self.bytes_sent = 0  # on the wire: head, framing, body
        self.body_bytes_sent = 0  # the response body alone (Envoy's BYTES_SENT, istio_response_bytes)
        self._out: bytes | None = None
        self._chunked_out = False
        self._no_body = False
        self._tunnel: Callable[[bytes], None] | None = None
        self._tunnel_close: Callable[[], None] | None = None
        self._early: list[bytes] = []  # bytes after an upgrade request, before the 101
        self.error_status = 0

    @property
    def remote_address(self) -> str:
        return self.conn.remote_address

    @property
    def retryable(self) -> bool:
        """True while the whole body received so far is kept (fits the buffer limit)."""
        return self._kept is not None

    # -- request body ----------------------------------------------------------------
    def attach(self, sink: BodySink) -> None:
        """Send the body (received so far, then live) to `sink`; again for a retry."""
        if self._attached_once:
            if self._kept is None:
                raise RuntimeError("request body exceeded the buffer limit: it cannot be replayed")
            chunks = self._kept
        else:
            chunks, self._pending, self._pending_bytes = self._pending, [], 0
            self._attached_once = True
            self.conn.resume("pending")
        self.sink = sink
        for chunk in chunks:
            sink.body_data(chunk)
        if self.body_complete and self.head is not None and self.head.has_body:
            sink.body_end()

    def detach(self) -> None:
        """Stop sending the body to the current sink (before a retry)."""
        self.sink = None

    def _body(self, data: bytes) -> None:
        self.received += len(data)
        if self._kept is not None:
            if self.received <= self.conn.buffer_limit:
                self._kept.append(data)
            else:
                self._kept = None
        if self.sink is not None:
            self.sink.body_data(data)
        elif not self._attached_once or self._kept is None:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self.conn.buffer_limit:
                self.conn.pause("pending")

    def _body_end(self) -> None:
        if self.body_complete:  # no body: nothing to tell the sink
            return
        self.body_complete = True
        if self.sink is not None:
            self.sink.body_end()

    def pause_body(self) -> None:
        """The upstream cannot take more body now: stop reading the downstream."""
        self.conn.pause("upstream")

    def resume_body(self) -> None:
        self.conn.resume("upstream")

    # -- response --------------------------------------------------------------------
    def respond_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                     reason: bytes | None = None) -> None:
        """Start the response; `headers` are final except framing and connection headers."""
        head = self.head
        self.status = status
        self.response_started = True
        no_body = status in NO_BODY_STATUS or status < 200 or (head is not None and head.method == b"HEAD")
        close = not self.body_complete or not self.conn.keep_alive_after(self)
        frame = b""
        if content_length is not None:
            frame = b"content-length: %d\r\n" % content_length
        elif not no_body:
            if head is not None and head.version == "1.1":
                self._chunked_out = True
                frame = b"transfer-encoding: chunked\r\n"
            else:
                close = True  # the body ends when the connection closes
        if status == 101:
            close = False
        elif head is not None and head.upgrade:
            close = True  # the upgrade was refused: what the client sends next is not HTTP
        if close:
            frame += b"connection: close\r\n"
            self.conn.closing = True
        elif head is not None and head.version == "1.0":
            frame += b"connection: keep-alive\r\n"
        self._no_body = no_body
        self._out = b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (status, reason or REASONS.get(status, b"Unknown"),
                                                    serialize(headers), frame)

    def respond_data(self, data: bytes) -> None:
        if self._no_body or not data:
            return
        self.body_bytes_sent += len(data)
        if self._chunked_out:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        out = self._out
        if out is not None:
            self._out = None
            data = out + data
        self.bytes_sent += len(data)
        self.conn.write(data)

    def respond_end(self) -> None:
        """End the response; the next pipelined request may start."""
        if self.done:
            return
        out = self._out or b""
        self._out = None
        if self._chunked_out and not self._no_body:
            out += b"0\r\n\r\n"
        if out:
            self.bytes_sent += len(out)
            self.conn.write(out)
        self.done = True
        if not self.body_complete:  # answered before the request ended: the rest is unread, so close
            self.conn.closing = True
        self.conn.stream_done(self)

    def local_reply(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        """Answer without an upstream (direct_response, 503 UO, 429, 400...)."""
        hs: Headers = list(headers or ())
        if body:
            hs.append((b"content-type", b"text/plain"))
        hs.append((b"server", b"envoy"))
        self.respond_head(status, hs, content_length=len(body))
        self.respond_data(body)
        self.respond_end()

    def reset(self) -> None:
        """Abort the downstream connection (an upstream reset after the response began)."""
        self.done = True
        self.conn.abort()

    # -- upgrades --------------------------------------------------------------------
    def start_tunnel(self, write: Callable[[bytes], None], close: Callable[[], None]) -> None:
        """After a 101 was sent: relay downstream bytes to `write`, EOF/close to `close`."""
        if self._out is not None:
            self.conn.write(self._out)
            self._out = None
        self._tunnel, self._tunnel_close = write, close
        self.conn.tunnel = self
        for chunk in self._early:
            write(chunk)
        self._early = []
        self.conn.resume("upgrade")

    def tunnel_data(self, data: bytes) -> None:
        """Upstream bytes of the tunnel to the downstream."""
        self.conn.write(data)

    def _tunnel_in(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel(data)
        else:
            self._early.append(data)
            self.conn.pause("upgrade")

    def _downstream_gone(self) -> None:
        if self._tunnel_close is not None:
            self._tunnel_close()
        elif self.sink is not None and not self.done:
            self.sink.downstream_reset()


class DownstreamConnection(asyncio.Protocol):
    """One accepted client connection; `handler` is called per request, in order."""

    def __init__(self, handler: Handler, *, max_request_headers_kb: int = MAX_REQUEST_HEADERS_KB,
                 buffer_limit: int = BUFFER_LIMIT, on_close: Callable[[DownstreamConnection], None] | None = None
                 ) -> None:
        self.handler = handler
        self.header_limit = max_request_headers_kb * 1024
        self.buffer_limit = buffer_limit
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.remote_address = ""
        self.remote_address_bytes = b""
        # tls.ConnectionSecurity of a TLS connection (peer principal, mutual_tls); None: plaintext
        self.security: ConnectionSecurity | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.streams: collections.deque[Stream] = collections.deque()
        self.tunnel: Stream | None = None
        self.closing = False
        self.closed = False
        self._paused: set[str] = set()
        self._write_blocked = False
        self.loop = asyncio.get_event_loop()
        self._reset_message()

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: Headers = []
        self._header_bytes = 0
        self._current: Stream | None = None

    # -- transport callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else ""
        self.remote_address_bytes = self.remote_address.encode()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel._tunnel_in(data)
            return
        if self.closing and not self.streams:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0]:]
            stream = self.streams[-1] if self.streams else None
            if stream is not None and rest:
                stream._early.append(rest)
            if self.tunnel is None:
                self.pause("upgrade")  # until the 101: the bytes after it are the tunnel's
        except httptools.HttpParserError as exc:
            self._protocol_error(431 if isinstance(exc.__context__, _HeadersTooLarge) else 400)

    def eof_received(self) -> bool:
        if self.tunnel is not None:
            self.tunnel._downstream_gone()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        for stream in self.streams:
            stream._downstream_gone()
        self.streams.clear()
        if self.on_close is not None:
            self.on_close(self)

    def pause_writing(self) -> None:
        self._write_blocked = True
        if self.streams and self.streams[0].sink is not None:
            self.streams[0].sink.downstream_blocked(True)

    def resume_writing(self) -> None:
        self._write_blocked = False
        if self.streams and self.streams[0].sink is not None:
            self.streams[0].sink.downstream_blocked(False)

    # -- parser callbacks ------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)
        if self._header_bytes > self.header_limit:
            raise _HeadersTooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > self.header_limit:
            raise _HeadersTooLarge()

    def on_headers_complete(self) -> None:
        p = self.parser
        headers = self._headers
        chunked, length, expect = False, None, False
        for name, value in headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        if expect:
            headers = [h for h in headers if h[0] != b"expect"]  # Envoy answers 100 itself
        head = RequestHead(p.get_method(), self._url, p.get_http_version(), headers, p.should_keep_alive(),
                           p.should_upgrade(), expect, chunked, None if chunked else length)
        stream = Stream(head, self, self.loop.time())
        self._current = stream
        self.streams.append(stream)
        if len(self.streams) == 1:
            self._dispatch(stream)
        elif len(self.streams) > MAX_QUEUED:
            self.pause("queue")

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current._body(body)

    def on_message_complete(self) -> None:
        stream = self._current
        self._reset_message()
        if stream is not None:
            stream._body_end()

    # -- streams ---------------------------------------------------------------------
    def _dispatch(self, stream: Stream) -> None:
        if stream.error_status:
            stream.local_reply(stream.error_status, REASONS[stream.error_status])
            return
        head = stream.head
        if head is not None and head.expect_continue and not stream.body_complete:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            self.handler(stream)
        except Exception:  # a handler bug answers 500 (or resets) and is logged, once
            log.exception("handler failed for %r", head.path if head else None)
            if not stream.response_started:
                stream.local_reply(500, b"Internal Server Error")
            else:
                stream.reset()

    def stream_done(self, stream: Stream) -> None:
        if self.streams and self.streams[0] is stream:
            self.streams.popleft()
        if self.closing or self.closed:
            if self.transport is not None and not self.closed:
                self.transport.close()
            return
        if len(self.streams) <= MAX_QUEUED:
            self.resume("queue")
        if self.streams:
            self._dispatch(self.streams[0])

    def drain(self) -> None:
        """Graceful close: finish the responses under way (the last says `connection:
        close`), take no new request, then close."""
        self.closing = True
        if not self.streams and self.transport is not None and not self.closed:
            self.transport.close()

    def keep_alive_after(self, stream: Stream) -> bool:
        head = stream.head
        return head is not None and head.keep_alive and not self.closing

    def _protocol_error(self, status: int) -> None:
        """Malformed input: answer `status` after the earlier responses, then close."""
        self._current = None
        stream = Stream(None, self, self.loop.time())
        stream.error_status = status
        self.closing = True
        self.streams.append(stream)
        self.pause("error")
        if len(self.streams) == 1:
            self._dispatch(stream)

    # -- io helpers ------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def pause(self, reason: str) -> None:
        """Stop reading for `reason` (pending, upstream, queue, upgrade, error)."""
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused.add(reason)

    def resume(self, reason: str) -> None:
        """Read again once no reason to pause remains."""
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()


class _HeadersTooLarge(Exception):
    """Raised in a parser callback: the request's headers exceed max_request_headers_kb."""


def serve(handler: Handler, **kwargs: object) -> Callable[[], DownstreamConnection]:
    """A protocol factory for `loop.create_server`."""
    return lambda: DownstreamConnection(handler, **kwargs)  # type: ignore[arg-type]
