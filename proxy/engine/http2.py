"""The downstream side of HTTP/2 (h2c with prior knowledge, h2 over TLS by ALPN), driving
the `h2` package's sans-IO `H2Connection` from an asyncio Protocol.

Why the same shape as http1.py: the request flow (flow.py) and the upstream exchange
(upstream.py) only see a stream's interface (head, attach/detach, respond_*,
local_reply, reset, pause_body/resume_body...). An `H2Stream` (http2_stream.py) offers that, so
each HTTP/2 stream runs through the same flow and goes upstream as HTTP/1.1, as Envoy
does with an HTTP/2 listener in front of an HTTP/1.1 cluster. Streams are independent:
each one is dispatched as soon as its HEADERS arrive (no ordering, unlike pipelining).

Flow control is HTTP/2's own, both ways:
- request bodies: received DATA is acknowledged (WINDOW_UPDATE) only once forwarded to
  the upstream, and not while the upstream connection is backed up (`pause_body`), so a
  slow upstream closes the client's window instead of growing our memory;
- responses: DATA goes out as far as the peer's windows allow; the rest waits per
  stream and is sent on WINDOW_UPDATE. When a stream's waiting bytes pass the buffer
  limit (or the socket's write buffer is full) its sink is told `downstream_blocked`,
  which stops reading that stream's upstream connection.

Settings are Envoy's Http2ProtocolOptions defaults (max_concurrent_streams 2^31-1,
256 MiB initial stream and connection windows, 60 KiB of request headers).

Drain (config swap, shutdown): one GOAWAY naming the last stream taken; open streams
finish, later ones are refused (REFUSED_STREAM, which clients retry elsewhere), and the
connection closes when the last stream ends. The GOAWAY frame is written by hand because
h2's `close_connection` forbids sending anything afterwards, even on open streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from proxy.engine.headers import Headers
from proxy.engine.http1 import BUFFER_LIMIT, MAX_REQUEST_HEADERS_KB, Handler
from proxy.engine.http2_stream import H2Stream, request_head

if TYPE_CHECKING:
    from proxy.engine.tls import ConnectionSecurity

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_CONCURRENT_STREAMS = 2**31 - 1  # Envoy's Http2ProtocolOptions defaults
INITIAL_STREAM_WINDOW_SIZE = 256 * 1024 * 1024
INITIAL_CONNECTION_WINDOW_SIZE = 256 * 1024 * 1024
log = logging.getLogger("proxy.engine.http2")


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 client connection; `handler` is called per stream, as its HEADERS arrive.
    `streams`: those under way (request or response not finished), by stream id."""

    def __init__(self, handler: Handler, *, max_request_headers_kb: int = MAX_REQUEST_HEADERS_KB,
                 buffer_limit: int = BUFFER_LIMIT, on_close: Callable[[Http2Connection], None] | None = None,
                 max_concurrent_streams: int = MAX_CONCURRENT_STREAMS,
                 initial_stream_window_size: int = INITIAL_STREAM_WINDOW_SIZE,
                 initial_connection_window_size: int = INITIAL_CONNECTION_WINDOW_SIZE) -> None:
        self.handler = handler
        self.buffer_limit = buffer_limit
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.remote_address = ""
        self.remote_address_bytes = b""
        self.security: ConnectionSecurity | None = None
        self.loop = asyncio.get_event_loop()
        self.streams: dict[int, H2Stream] = {}
        self.closing = False
        self.closed = False
        self.write_blocked = False
        self.last_stream_id = 0  # after a GOAWAY: the last stream we take
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True))
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_stream_window_size,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: max_request_headers_kb * 1024})
        self._connection_window = initial_connection_window_size

    # -- transport callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else ""
        self.remote_address_bytes = self.remote_address.encode()
        self.h2.initiate_connection()
        if self._connection_window > 65535:
            self.h2.increment_flow_control_window(self._connection_window - 65535)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            log.info("HTTP/2 protocol error from %s: %s", self.remote_address, e)
            self._flush()  # h2 queued the GOAWAY: close after it is written
            self.closing = True
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None or stream._closed:
                self.acknowledge(event.stream_id, event.flow_controlled_length)
            else:
                stream._body(event.data, event.flow_controlled_length)
        elif isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._body_end()
                self._maybe_forget(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream._gone()
                self._stream_closed(stream)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            for stream in list(self.streams.values()):
                if stream._out or stream._end_pending:
                    self.flush_stream(stream, flush=False)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True
            if self.transport is not None:
                self._flush()
                self.transport.close()

    def _request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        if self.closing and sid > self.last_stream_id:
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)  # crossed our GOAWAY
            return
        head = request_head(list(event.headers), event.stream_ended is not None)  # type: ignore[arg-type]
        stream = self.streams[sid] = H2Stream(sid, head, self, self.loop.time())
        if head.upgrade:  # CONNECT: Envoy answers an upgrade it was not configured for with 403
            stream.local_reply(403, b"CONNECT is not supported over HTTP/2 by this proxy")
            return
        if head.expect_continue:
            self.h2.send_headers(sid, [(b":status", b"100")])
        try:
            self.handler(stream)  # type: ignore[arg-type]
        except Exception:  # a handler bug answers 500 (or resets) and is logged, once
            log.exception("handler failed for %r", head.path)
            if not stream.response_started:
                stream.local_reply(500, b"Internal Server Error")
            else:
                stream.reset()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            stream._gone()
        if self.on_close is not None:
            self.on_close(self)

    def pause_writing(self) -> None:
        self.write_blocked = True
        for stream in list(self.streams.values()):
            stream._update_blocked()

    def resume_writing(self) -> None:
        self.write_blocked = False
        for stream in list(self.streams.values()):
            stream._update_blocked()

    # -- called by streams ---------------------------------------------------------------
    def send_headers(self, stream: H2Stream, headers: Headers, end_stream: bool) -> None:
        try:
            self.h2.send_headers(stream.id, headers, end_stream=end_stream)
        except (h2.exceptions.ProtocolError, ValueError) as e:  # closed meanwhile, or a header h2 refuses
            log.info("stream %d: response headers not sent: %s", stream.id, e)
            self.reset_stream(stream, ErrorCodes.INTERNAL_ERROR)
            return
        self._flush()
        if end_stream:
            self._response_sent(stream)

    def flush_stream(self, stream: H2Stream, *, flush: bool = True) -> None:
        """Send what the peer's windows allow of the stream's waiting DATA (and its end)."""
        h = self.h2
        try:
            while stream._out:
                window = min(h.local_flow_control_window(stream.id), h.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = stream._out[0]
                if len(chunk) > window:
                    stream._out[0] = chunk[window:]
                    chunk = chunk[:window]
                else:
                    stream._out.pop(0)
                stream._out_bytes -= len(chunk)
                h.send_data(stream.id, chunk)
            if stream._end_pending and not stream._out:
                stream._end_pending = False
                h.end_stream(stream.id)
                self._response_sent(stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            stream._gone()
            self._forget(stream)
        stream._update_blocked()
        if flush:
            self._flush()

    def _response_sent(self, stream: H2Stream) -> None:
        if not stream.body_complete:  # answered before the request ended: stop the upload (as Envoy)
            self.h2.reset_stream(stream.id, ErrorCodes.NO_ERROR)
            stream.body_complete = True
        self._maybe_forget(stream)

    def reset_stream(self, stream: H2Stream, code: ErrorCodes) -> None:
        if not stream._closed and not self.closed:
            try:
                self.h2.reset_stream(stream.id, code)
            except h2.exceptions.ProtocolError:
                pass
            self._flush()
        stream._closed = True
        self._forget(stream)

    def acknowledge(self, stream_id: int, n: int) -> None:
        if n and not self.closed:
            self.h2.acknowledge_received_data(n, stream_id)
            self._flush()

    def _maybe_forget(self, stream: H2Stream) -> None:
        if stream.done and stream.body_complete and not stream._out and not stream._end_pending \
                and stream._deferred is None:
            self._forget(stream)

    def _forget(self, stream: H2Stream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
            self._stream_closed(stream)

    def _stream_closed(self, stream: H2Stream) -> None:
        if stream._unacked:  # give the connection window back
            n, stream._unacked = stream._unacked, 0
            self.acknowledge(stream.id, n)
        if self.closing and not self.streams and self.transport is not None and not self.closed:
            self._flush()
            self.transport.close()

    # -- connection ------------------------------------------------------------------
    def drain(self) -> None:
        """Graceful close: GOAWAY with the last stream taken, finish those, then close."""
        if self.closing or self.closed or self.transport is None:
            return
        self.closing = True
        self.last_stream_id = self.h2.highest_inbound_stream_id
        self._flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.last_stream_id
        frame.error_code = ErrorCodes.NO_ERROR
        self.transport.write(frame.serialize())
        if not self.streams:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)
