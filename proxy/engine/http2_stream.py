"""One HTTP/2 stream as the request flow sees it: `H2Stream` offers http1.Stream's
interface (head, attach/detach, respond_*, local_reply, reset, pause_body/resume_body,
received/bytes_sent/status/done...), so flow.py and upstream.py carry an HTTP/2 stream
to an HTTP/1.1 upstream without knowing the difference. The frames themselves (windows,
DATA, RST_STREAM) are the connection's business (http2.Http2Connection): a stream keeps
its waiting response bytes and its unacknowledged request bytes, and asks the connection.

`request_head` maps HTTP/2 request headers onto http1.RequestHead: pseudo-headers to
method and path, :authority to `host`, split cookies joined again (RFC 9113 8.2.3), and
a body without content-length marked chunked, which is how it must go to HTTP/1.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from proxy.engine.headers import HOP_BY_HOP, Headers
from proxy.engine.http1 import NO_BODY_STATUS, BodySink, RequestHead

if TYPE_CHECKING:
    from proxy.engine.http2 import Http2Connection

_NOT_FORWARDED = HOP_BY_HOP | {b"content-length", b"host"}  # content-length: set by respond_head


def request_head(headers: Headers, end_stream: bool) -> RequestHead:
    """An http1.RequestHead from HTTP/2 request headers: the pseudo-headers give method and
    path, :authority becomes `host` (first), cookies are joined again for HTTP/1.1."""
    pseudo: dict[bytes, bytes] = {}
    out: Headers = []
    cookies: list[bytes] = []
    length: int | None = None
    expect = False
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        elif name == b"cookie":
            cookies.append(value)
        elif name == b"expect" and value.lower() == b"100-continue":
            expect = True  # answered here, not forwarded (as http1)
        elif name == b"host" and b":authority" in pseudo:
            continue
        else:
            if name == b"content-length":
                length = int(value)
            out.append((name, value))
    if cookies:
        out.append((b"cookie", b"; ".join(cookies)))
    authority = pseudo.get(b":authority")
    if authority is not None:
        out.insert(0, (b"host", authority))
    chunked = not end_stream and length is None  # a body of unknown length: chunked upstream
    method = pseudo.get(b":method", b"GET")
    return RequestHead(method, pseudo.get(b":path", b"/"), "2", out, True, method == b"CONNECT",
                       expect and not end_stream, chunked, None if end_stream and not length else length)


class H2Stream:
    """One HTTP/2 stream, with http1.Stream's interface (see flow.py and upstream.py)."""

    __slots__ = ("id", "head", "conn", "start_time", "sink", "_kept", "_pending", "_attached_once", "received",
                 "body_complete", "response_started", "done", "status", "bytes_sent", "body_bytes_sent",
                 "_unacked", "_paused", "_out", "_out_bytes", "_end_pending", "_blocked", "_deferred", "_closed")

    def __init__(self, stream_id: int, head: RequestHead, conn: Http2Connection, start_time: float) -> None:
        self.id = stream_id
        self.head = head
        self.conn = conn
        self.start_time = start_time
        self.sink: BodySink | None = None
        self._kept: list[bytes] | None = []
        self._pending: list[bytes] = []
        self._attached_once = False
        self.received = 0
        self.body_complete = not head.has_body
        self.response_started = False
        self.done = False  # the response ended (or the stream was reset)
        self.status = 0
        self.bytes_sent = 0
        self.body_bytes_sent = 0
        self._unacked = 0  # flow-controlled bytes received but not yet handed back to the peer
        self._paused = False
        self._out: list[bytes] = []  # response DATA waiting for the peer's window
        self._out_bytes = 0
        self._end_pending = False
        self._blocked = False
        self._deferred: list[tuple[bytes, bytes]] | None = None  # headers of a bodiless response
        self._closed = False  # forgotten by the connection

    @property
    def remote_address(self) -> str:
        return self.conn.remote_address

    @property
    def retryable(self) -> bool:
        return self._kept is not None

    # -- request body ----------------------------------------------------------------
    def attach(self, sink: BodySink) -> None:
        """Send the body (received so far, then live) to `sink`; again for a retry."""
        if self._attached_once:
            if self._kept is None:
                raise RuntimeError("request body exceeded the buffer limit: it cannot be replayed")
            chunks = self._kept
        else:
            chunks, self._pending = self._pending, []
            self._attached_once = True
        self.sink = sink
        if self._closed:  # the client reset the stream while the upstream was being connected
            sink.downstream_reset()
            return
        for chunk in chunks:
            sink.body_data(chunk)
        if self.body_complete and self.head.has_body:
            sink.body_end()
        self._ack()

    def detach(self) -> None:
        self.sink = None

    def _body(self, data: bytes, flow_length: int) -> None:
        self._unacked += flow_length
        if not data:  # an empty DATA frame (END_STREAM alone): nothing to forward (to a chunked
            self._ack()  # upstream body an empty chunk would be its end)
            return
        self.received += len(data)
        if self._kept is not None:
            if self.received <= self.conn.buffer_limit:
                self._kept.append(data)
            else:
                self._kept = None
        if self.sink is not None:
            self.sink.body_data(data)
            self._ack()
        elif not self._attached_once:
            self._pending.append(data)  # not acknowledged: the client's window bounds it

    def _body_end(self) -> None:
        if self.body_complete:
            return
        self.body_complete = True
        if self.sink is not None:
            self.sink.body_end()

    def _ack(self) -> None:
        if self._unacked and not self._paused and self.sink is not None:
            n, self._unacked = self._unacked, 0
            self.conn.acknowledge(self.id, n)

    def pause_body(self) -> None:
        """The upstream cannot take more body now: stop opening the client's window."""
        self._paused = True

    def resume_body(self) -> None:
        self._paused = False
        self._ack()

    # -- response --------------------------------------------------------------------
    def respond_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                     reason: bytes | None = None) -> None:
        """Start the response: `:status`, then the headers without HTTP/1.1's hop-by-hop ones."""
        if self.done or self._closed:
            return
        self.status = status
        self.response_started = True
        out = [(b":status", b"%d" % status)]
        out += [(n, v.strip()) for n, v in headers if n not in _NOT_FORWARDED]
        no_body = status in NO_BODY_STATUS or self.head.method == b"HEAD"
        if content_length is not None and status not in NO_BODY_STATUS:
            out.append((b"content-length", b"%d" % content_length))
        self.bytes_sent += sum(len(n) + len(v) for n, v in out)
        if no_body:
            self._deferred = out  # sent with END_STREAM by respond_end
        else:
            self.conn.send_headers(self, out, False)

    def respond_data(self, data: bytes) -> None:
        if self.done or self._closed or not data or self._deferred is not None:
            return
        self.body_bytes_sent += len(data)
        self.bytes_sent += len(data)
        self._out.append(data)
        self._out_bytes += len(data)
        self.conn.flush_stream(self)

    def respond_end(self) -> None:
        if self.done:
            return
        self.done = True
        if self._closed:
            return
        if self._deferred is not None:
            out, self._deferred = self._deferred, None
            self.conn.send_headers(self, out, True)
            return
        self._end_pending = True
        self.conn.flush_stream(self)

    def local_reply(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        """Answer without an upstream (direct_response, 503 UO, 429, 404 NR...)."""
        hs: Headers = list(headers or ())
        if body:
            hs.append((b"content-type", b"text/plain"))
        hs.append((b"server", b"envoy"))
        self.respond_head(status, hs, content_length=len(body))
        self.respond_data(body)
        self.respond_end()

    def reset(self) -> None:
        """RST_STREAM (an upstream reset after the response began): only this stream ends."""
        self.done = True
        self.conn.reset_stream(self, ErrorCodes.INTERNAL_ERROR)

    def start_tunnel(self, write: Callable[[bytes], None], close: Callable[[], None]) -> None:
        """Upgrades and CONNECT are not carried over HTTP/2 here: the stream is reset."""
        close()
        self.reset()

    def tunnel_data(self, data: bytes) -> None:
        pass

    # -- connection callbacks ---------------------------------------------------------
    def _update_blocked(self) -> None:
        blocked = self._out_bytes > self.conn.buffer_limit or self.conn.write_blocked
        if blocked != self._blocked:
            self._blocked = blocked
            if self.sink is not None:
                self.sink.downstream_blocked(blocked)

    def _gone(self) -> None:
        """The client reset the stream or the connection went away."""
        self._closed = True
        self._out.clear()
        self._out_bytes = 0
        if self.sink is not None and not self.done:
            self.sink.downstream_reset()
        self.done = True
