"""SPDY/3.1 framing and a small asyncio SPDY connection, as `kubectl port-forward` speaks it.

kubectl 1.32 tunnels a SPDY/3.1 session (moby/spdystream on its side) through a WebSocket
(subprotocol `SPDY/3.1+portforward.k8s.io`); the bytes of the session arrive split and
coalesced arbitrarily across WebSocket messages, so `FrameDecoder` buffers and yields whole
frames. Name/value header blocks are zlib-compressed with the SPDY/3 dictionary, one zlib
stream per direction for the whole session, each block ended by a SYNC_FLUSH: the codec
objects therefore live as long as the session and must see every block in wire order.

`Connection` is transport-agnostic: the owner feeds received bytes into `feed()` and gives
a coroutine that sends bytes. Flow control follows SPDY/3.1 (64 KiB initial windows per
stream and per session): we always announce WINDOW_UPDATE for data our consumers have read.
spdystream itself neither sends WINDOW_UPDATE nor honours it, like the real kubelet; so we
only hold our own sending to the peer's windows once the peer shows it does flow control
(its first WINDOW_UPDATE). Without that, kubectl would stall after the first 64 KiB.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

VERSION = 3
DEFAULT_WINDOW = 64 * 1024
MAX_LENGTH = (1 << 24) - 1  # 24-bit length field of every frame
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01
SETTINGS_INITIAL_WINDOW_SIZE = 7

# Control frame types.
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9

# RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9

# GOAWAY status codes.
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2


def _dictionary() -> bytes:
    """The SPDY/3 header-compression dictionary (spec section 2.6.10.1): length-prefixed
    header names and values, then a run of common strings. 1423 bytes."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status"
    ).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


DICTIONARY = _dictionary()

Headers = dict[str, list[str]]


class SpdyError(Exception):
    """A session-level protocol error; `status` is the GOAWAY/RST status to answer with."""

    def __init__(self, message: str, status: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.status = status


# ---- frames --------------------------------------------------------------------------


@dataclass(slots=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(slots=True)
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    associated_to: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(slots=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(slots=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(slots=True)
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    clear: bool = False


@dataclass(slots=True)
class Ping:
    id: int


@dataclass(slots=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(slots=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(slots=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate


# ---- header blocks ---------------------------------------------------------------------


def encode_header_block(headers: Mapping[str, str | list[str]]) -> bytes:
    """Uncompressed SPDY/3 name/value block: 32-bit counts and lengths, lower-case names,
    several values of one name joined by NUL."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name = name.lower().encode()
        raw_value = "\0".join(value if isinstance(value, list) else [value]).encode()
        parts += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(parts)


def decode_header_block(block: bytes) -> Headers:
    """Inverse of encode_header_block; raises SpdyError on a malformed block."""
    try:
        (count,), pos = struct.unpack_from(">I", block), 4
        headers: Headers = {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name, pos = block[pos + 4:pos + 4 + n], pos + 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            value, pos = block[pos + 4:pos + 4 + n], pos + 4 + n
            if pos > len(block) or not name:
                raise SpdyError("truncated or empty header name in name/value block")
            headers.setdefault(name.decode().lower(), []).extend(value.decode().split("\0"))
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyError(f"malformed name/value header block: {exc}") from exc
    return headers


class HeaderCompressor:
    """One direction's zlib stream (SPDY dictionary, SYNC_FLUSH after each block)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: Mapping[str, str | list[str]]) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other direction's zlib stream; blocks must be given in wire order."""

    LIMIT = 1 << 20

    def __init__(self) -> None:
        self._z = zlib.decompressobj(15, DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block, self.LIMIT)
        except zlib.error as exc:
            raise SpdyError(f"header block does not decompress: {exc}") from exc
        if self._z.unconsumed_tail:
            raise SpdyError("decompressed header block is larger than 1 MiB")
        return decode_header_block(raw)


# ---- encoding and decoding frames ------------------------------------------------------


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise SpdyError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class FrameEncoder:
    """Serialises frames; owns the sending direction's header compressor."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            if len(frame.data) > MAX_LENGTH:
                raise SpdyError("data frame too large")
            head = struct.pack(">II", frame.stream_id & 0x7FFFFFFF, (int(frame.fin) << 24) | len(frame.data))
            return head + frame.data
        if isinstance(frame, SynStream):
            flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            fixed = struct.pack(">IIBB", frame.stream_id & 0x7FFFFFFF, frame.associated_to & 0x7FFFFFFF,
                                (frame.priority & 7) << 5, frame.slot)
            return _control(SYN_STREAM, flags, fixed + self._headers.compress(frame.headers))
        if isinstance(frame, SynReply | HeadersFrame):
            kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
            payload = struct.pack(">I", frame.stream_id & 0x7FFFFFFF) + self._headers.compress(frame.headers)
            return _control(kind, FLAG_FIN if frame.fin else 0, payload)
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id & 0x7FFFFFFF, frame.status))
        if isinstance(frame, Settings):
            body = b"".join(struct.pack(">II", (f << 24) | (i & 0xFFFFFF), v) for f, i, v in frame.entries)
            flags = FLAG_SETTINGS_CLEAR if frame.clear else 0
            return _control(SETTINGS, flags, struct.pack(">I", len(frame.entries)) + body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id & 0x7FFFFFFF, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id & 0x7FFFFFFF,
                                                          frame.delta & 0x7FFFFFFF))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Incremental parser: `feed()` any slice of the byte stream, get the whole frames.
    Owns the receiving direction's header decompressor. Unknown control frame types are
    skipped, as SPDY/3 requires."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        pos, frames = 0, []
        try:
            while len(self._buf) - pos >= 8:
                first, second = struct.unpack_from(">II", self._buf, pos)
                length = second & 0xFFFFFF
                if len(self._buf) - pos < 8 + length:
                    break
                payload = bytes(self._buf[pos + 8:pos + 8 + length])
                pos += 8 + length
                flags = second >> 24
                if not first & 0x80000000:
                    frames.append(DataFrame(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
                    continue
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}", UNSUPPORTED_VERSION)
                frame = self._control(first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
        finally:
            del self._buf[:pos]
        return frames

    def _control(self, kind: int, flags: int, p: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)
        try:
            if kind == SYN_STREAM:
                sid, assoc, prio, slot = struct.unpack_from(">IIBB", p)
                return SynStream(sid & 0x7FFFFFFF, self._headers.decompress(p[10:]), assoc & 0x7FFFFFFF,
                                 prio >> 5, slot, fin, bool(flags & FLAG_UNIDIRECTIONAL))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", p)
                cls = SynReply if kind == SYN_REPLY else HeadersFrame
                return cls(sid & 0x7FFFFFFF, self._headers.decompress(p[4:]), fin)
            if kind == RST_STREAM:
                sid, status = struct.unpack_from(">II", p)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", p)
                entries = [struct.unpack_from(">II", p, 4 + 8 * i) for i in range(count)]
                return Settings([(fi >> 24, fi & 0xFFFFFF, v) for fi, v in entries], bool(flags & FLAG_SETTINGS_CLEAR))
            if kind == PING:
                return Ping(struct.unpack_from(">I", p)[0])
            if kind == GOAWAY:
                sid, status = struct.unpack_from(">II", p) if len(p) >= 8 else (*struct.unpack_from(">I", p), 0)
                return GoAway(sid & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as exc:
            raise SpdyError(f"control frame type {kind} is truncated ({len(p)} bytes)") from exc
        return None


# ---- streams and the session -------------------------------------------------------------

MAX_CHUNK = 32 * 1024  # bytes per DATA frame we send (what io.Copy hands spdystream)
Send = Callable[[bytes], Awaitable[None]]


class StreamClosed(ConnectionError):
    """Writing to a stream that was reset or half-closed, or whose session has ended."""


class Stream:
    """One SPDY stream: its headers, received data waiting to be read, and writes that go
    out through the session (split into DATA frames, within the peer's window)."""

    def __init__(self, conn: Connection, stream_id: int, headers: Headers, *,
                 remote_fin: bool = False, local_fin: bool = False) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self.remote_closed = remote_fin
        self.local_closed = local_fin
        self.reset_status: int | None = None  # RST status, ours or the peer's; CANCEL when the session ends
        self.replied = asyncio.Event()  # SYN_REPLY seen (streams we opened) or sent (theirs); also set on reset
        self.send_window = conn.initial_send_window
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._unacked = 0  # bytes read but not yet returned to the peer by WINDOW_UPDATE
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __repr__(self) -> str:
        return f"<spdy stream {self.id} {self.headers}>"

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def is_reset(self) -> bool:
        return self.reset_status is not None

    async def read(self) -> bytes:
        """The next received chunk; b"" once the peer half-closed (FIN) or the stream was reset."""
        while not self._chunks:
            if self.remote_closed or self.is_reset:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered <= self.conn.max_buffer:
            self._room.set()
        await self.conn._consumed(self, len(data))
        return data

    async def write(self, data: bytes) -> None:
        await self.conn._send_data(self, data, fin=False)

    async def close(self) -> None:
        """Half-close our side (empty DATA frame with FIN); a no-op if already closed or reset."""
        if not (self.local_closed or self.is_reset or self.conn.closed):
            await self.conn._send_data(self, b"", fin=True)

    async def reply(self, headers: Mapping[str, str | list[str]] | None = None, *, fin: bool = False) -> None:
        self.replied.set()
        await self.conn._send(SynReply(self.id, dict(headers or {}), fin))
        if fin:
            self._local_fin()

    async def reset(self, status: int = CANCEL) -> None:
        if self.is_reset:
            return
        self._mark_reset(status)
        try:
            await self.conn._send(RstStream(self.id, status))
        except StreamClosed:
            pass

    # -- called by the session --
    def _deliver(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > self.conn.max_buffer:
            self._room.clear()
        self._readable.set()

    def _remote_fin(self) -> None:
        self.remote_closed = True
        self._readable.set()
        if self.local_closed:
            self.conn.streams.pop(self.id, None)

    def _local_fin(self) -> None:
        self.local_closed = True
        if self.remote_closed:
            self.conn.streams.pop(self.id, None)

    def _mark_reset(self, status: int) -> None:
        self.reset_status = status
        self._chunks.clear()
        self._buffered = 0
        for event in (self._readable, self._room, self.replied):
            event.set()
        self.conn.streams.pop(self.id, None)
        self.conn._wake_writers()


class Connection:
    """A SPDY/3.1 session over any byte transport. `feed()` the received bytes (one caller
    at a time, in order); `send` is awaited with the bytes of each outgoing frame.
    `on_stream(stream)` is awaited for each stream the peer opens: it should answer with
    `stream.reply()` or `stream.reset()` and hand long work to a task, since frames are
    handled one after another (as spdystream's frame workers do)."""

    def __init__(self, send: Send, *, on_stream: Callable[[Stream], Awaitable[None]] | None = None,
                 server: bool = True, max_buffer: int = 1 << 20) -> None:
        self._send_bytes = send
        self._on_stream = on_stream
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._write_lock = asyncio.Lock()
        self._window_event = asyncio.Event()
        self.streams: dict[int, Stream] = {}
        self._next_id = 2 if server else 1
        self._next_ping = 2 if server else 1
        self._pings: dict[int, asyncio.Future[None]] = {}
        self.last_remote_id = 0
        self.max_buffer = max_buffer  # per stream, before feed() waits for the reader (backpressure)
        self.initial_send_window = DEFAULT_WINDOW
        self.session_send_window = DEFAULT_WINDOW
        self.enforce_send_window = False  # becomes True at the peer's first WINDOW_UPDATE
        self._session_unacked = 0
        self.remote_goaway: GoAway | None = None
        self.closed = False

    async def feed(self, data: bytes) -> None:
        """Handle the whole frames now available. A session error answers GOAWAY, closes
        the session and is re-raised."""
        if self.closed:
            return
        try:
            for frame in self._decoder.feed(data):
                await self._handle(frame)
        except SpdyError as exc:
            await self.goaway(GOAWAY_PROTOCOL_ERROR)
            self.close()
            raise exc

    async def open_stream(self, headers: Mapping[str, str], *, fin: bool = False) -> Stream:
        """Open a stream (client side); await `stream.replied` for the peer's answer."""
        sid, self._next_id = self._next_id, self._next_id + 2
        stream = Stream(self, sid, {k.lower(): [v] for k, v in headers.items()}, local_fin=fin)
        self.streams[sid] = stream
        await self._send(SynStream(sid, dict(headers), fin=fin))
        return stream

    async def ping(self) -> None:
        """Send a PING and wait for its echo."""
        pid, self._next_ping = self._next_ping, self._next_ping + 2
        future = self._pings[pid] = asyncio.get_running_loop().create_future()
        await self._send(Ping(pid))
        await future

    async def goaway(self, status: int = GOAWAY_OK) -> None:
        try:
            await self._send(GoAway(self.last_remote_id, status))
        except StreamClosed:
            pass

    def forget(self, stream: Stream) -> None:
        """Drop a stream we are done with: later data for it is discarded."""
        if self.streams.get(stream.id) is stream:
            stream._mark_reset(stream.reset_status or CANCEL)

    def close(self) -> None:
        """The transport is gone: every stream ends (readers see EOF, writers StreamClosed)."""
        self.closed = True
        for stream in list(self.streams.values()):
            stream._mark_reset(CANCEL)
        for future in self._pings.values():
            if not future.done():
                future.set_exception(StreamClosed("SPDY session closed"))
        self._wake_writers()

    # -- frames in --
    async def _handle(self, frame: Frame) -> None:
        if isinstance(frame, DataFrame):
            await self._on_data(frame)
        elif isinstance(frame, SynStream):
            await self._on_syn_stream(frame)
        elif isinstance(frame, SynReply | HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                for name, values in frame.headers.items():
                    stream.headers.setdefault(name, []).extend(values)
                stream.replied.set()
                if frame.fin:
                    stream._remote_fin()
        elif isinstance(frame, RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream._mark_reset(frame.status)
        elif isinstance(frame, Settings):
            self._on_settings(frame)
        elif isinstance(frame, Ping):
            await self._on_ping(frame)
        elif isinstance(frame, GoAway):
            self.remote_goaway = frame
        elif isinstance(frame, WindowUpdate):
            self._on_window_update(frame)

    async def _on_syn_stream(self, frame: SynStream) -> None:
        sid = frame.stream_id
        if sid == 0 or sid % 2 == self._next_id % 2 or sid <= self.last_remote_id:
            await self._send(RstStream(sid, PROTOCOL_ERROR))
            return
        self.last_remote_id = sid
        if self._on_stream is None or self.remote_goaway is not None:
            await self._send(RstStream(sid, REFUSED_STREAM))
            return
        stream = Stream(self, sid, frame.headers, remote_fin=frame.fin, local_fin=frame.unidirectional)
        self.streams[sid] = stream
        await self._on_stream(stream)

    async def _on_data(self, frame: DataFrame) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.remote_closed:
            await self._consumed(None, len(frame.data))  # discarded: still give the session window back
            return
        if frame.data:
            stream._deliver(frame.data)
        if frame.fin:
            stream._remote_fin()
        if not stream._room.is_set():
            await stream._room.wait()

    async def _on_ping(self, frame: Ping) -> None:
        if frame.id % 2 != self._next_ping % 2:
            await self._send(frame)  # the peer's ping: echo it
        elif (future := self._pings.pop(frame.id, None)) is not None and not future.done():
            future.set_result(None)

    def _on_settings(self, frame: Settings) -> None:
        for _flags, setting, value in frame.entries:
            if setting == SETTINGS_INITIAL_WINDOW_SIZE:
                delta, self.initial_send_window = value - self.initial_send_window, value
                for stream in self.streams.values():
                    stream.send_window += delta
        self._wake_writers()

    def _on_window_update(self, frame: WindowUpdate) -> None:
        self.enforce_send_window = True
        if frame.stream_id == 0:
            self.session_send_window += frame.delta
        elif (stream := self.streams.get(frame.stream_id)) is not None:
            stream.send_window += frame.delta
        self._wake_writers()

    # -- frames out --
    async def _send(self, frame: Frame) -> None:
        async with self._write_lock:  # one frame at a time: the header zlib stream is order-sensitive
            if self.closed:
                raise StreamClosed("SPDY session closed")
            data = self._encoder.encode(frame)
            try:
                await self._send_bytes(data)
            except Exception as exc:
                self.close()
                raise StreamClosed(f"SPDY session closed: {exc}") from exc

    async def _send_data(self, stream: Stream, data: bytes, *, fin: bool) -> None:
        if stream.is_reset or self.closed:
            raise StreamClosed(f"stream {stream.id} was reset")
        if stream.local_closed:
            raise StreamClosed(f"stream {stream.id} is closed for writing")
        view = memoryview(data)
        while view or fin:
            n = min(len(view), MAX_CHUNK)
            if n and self.enforce_send_window:
                n = min(n, await self._wait_window(stream))
            chunk, view = bytes(view[:n]), view[n:]
            stream.send_window -= n
            self.session_send_window -= n
            last = fin and not view
            if last:
                stream._local_fin()
            await self._send(DataFrame(stream.id, chunk, last))
            if last:
                return

    async def _wait_window(self, stream: Stream) -> int:
        while stream.send_window <= 0 or self.session_send_window <= 0:
            if self.closed or stream.is_reset:
                raise StreamClosed(f"stream {stream.id} was reset")
            await self._window_event.wait()
        return min(stream.send_window, self.session_send_window)

    def _wake_writers(self) -> None:
        self._window_event.set()
        self._window_event = asyncio.Event()

    async def _consumed(self, stream: Stream | None, n: int) -> None:
        """Return read bytes to the peer's view of our receive windows, half a window at a time."""
        updates = []
        self._session_unacked += n
        if self._session_unacked >= DEFAULT_WINDOW // 2:
            updates.append(WindowUpdate(0, self._session_unacked))
            self._session_unacked = 0
        if stream is not None and not (stream.remote_closed or stream.is_reset):
            stream._unacked += n
            if stream._unacked >= DEFAULT_WINDOW // 2:
                updates.append(WindowUpdate(stream.id, stream._unacked))
                stream._unacked = 0
        for update in updates:
            try:
                await self._send(update)
            except StreamClosed:
                return
