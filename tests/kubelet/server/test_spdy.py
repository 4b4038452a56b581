"""SPDY/3.1 framing and sessions (kubelet/server/spdy.py).

Test vectors are built here from the spec's wire layout (big-endian fields, 24-bit
lengths, zlib with the SPDY/3 dictionary), independently of the module's encoder."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from kubelet.server import spdy


def control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload


def block(pairs: list[tuple[str, str]]) -> bytes:
    out = struct.pack(">I", len(pairs))
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value.encode()
    return out


def deflater() -> zlib._Compress:
    return zlib.compressobj(zdict=spdy.DICTIONARY)


def compressed(z: zlib._Compress, raw: bytes) -> bytes:
    return z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)


def test_dictionary_is_the_spdy3_dictionary():
    d = spdy.DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1" in d
    assert b"\x00\x00\x00\x06origin100101201202205206300" in d
    assert d.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_syn_stream_from_the_wire_decodes_headers_compressed_with_the_dictionary():
    raw = block([("streamtype", "error"), ("port", "8080"), ("requestid", "0")])
    payload = struct.pack(">IIBB", 1, 0, 0, 0) + compressed(deflater(), raw)
    (frame,) = spdy.FrameDecoder().feed(control(spdy.SYN_STREAM, spdy.FLAG_FIN, payload))
    assert frame == spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}, fin=True)


def test_encoded_syn_reply_inflates_with_the_dictionary_to_the_spec_layout():
    wire = spdy.FrameEncoder().encode(spdy.SynReply(3, {"Port": "80", "multi": ["a", "b"]}))
    kind, flags_length = struct.unpack(">HI", wire[2:8])
    assert wire[:2] == b"\x80\x03" and kind == spdy.SYN_REPLY and flags_length == len(wire) - 8
    assert struct.unpack(">I", wire[8:12]) == (3,)
    inflater = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert inflater.decompress(wire[12:]) == block([("port", "80"), ("multi", "a\0b")])


def test_header_blocks_share_one_zlib_stream_per_direction():
    encoder, decoder = spdy.FrameEncoder(), spdy.FrameDecoder()
    first = encoder.encode(spdy.SynStream(1, {"port": "80", "streamtype": "data"}))
    second = encoder.encode(spdy.SynStream(3, {"port": "80", "streamtype": "data"}))
    assert len(second) < len(first)  # the second block refers back into the first
    assert [f.headers for f in decoder.feed(first + second)] == [{"port": ["80"], "streamtype": ["data"]}] * 2
    with pytest.raises(spdy.SpdyError):
        spdy.FrameDecoder().feed(second)  # alone, its back-references mean nothing


@pytest.mark.parametrize("frame, wire", [
    pytest.param(spdy.DataFrame(5, b"hi", fin=True), b"\x00\x00\x00\x05\x01\x00\x00\x02hi", id="data-fin"),
    pytest.param(spdy.RstStream(5, spdy.CANCEL), control(3, 0, struct.pack(">II", 5, 5)), id="rst"),
    pytest.param(spdy.Ping(7), control(6, 0, struct.pack(">I", 7)), id="ping"),
    pytest.param(spdy.GoAway(9, spdy.GOAWAY_OK), control(7, 0, struct.pack(">II", 9, 0)), id="goaway"),
    pytest.param(spdy.WindowUpdate(0, 65536), control(9, 0, struct.pack(">II", 0, 65536)), id="window-update"),
    pytest.param(spdy.Settings([(1, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)]),
                 control(4, 0, struct.pack(">III", 1, 0x01000007, 1 << 20)), id="settings"),
])
def test_frames_encode_to_the_spec_bytes_and_decode_back(frame, wire):
    assert spdy.FrameEncoder().encode(frame) == wire
    assert spdy.FrameDecoder().feed(wire) == [frame]


def test_frames_split_byte_by_byte_or_coalesced_decode_the_same():
    encoder = spdy.FrameEncoder()
    frames = [spdy.SynStream(1, {"port": ["1"]}), spdy.DataFrame(1, b"x" * 100), spdy.Ping(1),
              spdy.HeadersFrame(1, {"a": ["b"]}, fin=True), spdy.DataFrame(1, b"", fin=True)]
    wire = b"".join(encoder.encode(f) for f in frames)
    decoder = spdy.FrameDecoder()
    one_by_one = [f for i in range(len(wire)) for f in decoder.feed(wire[i:i + 1])]
    assert one_by_one == frames
    # the same bytes again, in one message, need a fresh decoder (new zlib stream)
    assert spdy.FrameDecoder().feed(wire) == frames


def test_unknown_control_frames_are_skipped():
    wire = control(0x0A, 0, b"credential") + spdy.FrameEncoder().encode(spdy.Ping(3))
    assert spdy.FrameDecoder().feed(wire) == [spdy.Ping(3)]


def test_other_versions_and_malformed_frames_are_session_errors():
    with pytest.raises(spdy.SpdyError) as err:
        spdy.FrameDecoder().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")
    assert err.value.status == spdy.UNSUPPORTED_VERSION
    with pytest.raises(spdy.SpdyError, match="truncated"):
        spdy.FrameDecoder().feed(control(spdy.RST_STREAM, 0, b"\0\0"))
    bad_block = struct.pack(">IIBB", 1, 0, 0, 0) + compressed(deflater(), struct.pack(">II", 1, 99) + b"x")
    with pytest.raises(spdy.SpdyError, match="header"):
        spdy.FrameDecoder().feed(control(spdy.SYN_STREAM, 0, bad_block))


# ---- sessions ------------------------------------------------------------------------


class Pipe:
    """Two Connections wired back to back; bytes are delivered in small pieces, as
    kubectl's framer writes them (8-byte header, then the payload)."""

    def __init__(self, on_stream=None, *, client_updates: bool = True) -> None:
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.to_client: asyncio.Queue[bytes] = asyncio.Queue()
        self.server = spdy.Connection(self._queue(self.to_client), on_stream=on_stream, server=True)
        self.client = spdy.Connection(self._queue(self.to_server), on_stream=None, server=False)
        if not client_updates:  # behave like spdystream: never announce WINDOW_UPDATE
            async def no_updates(stream, n):
                return None
            self.client._consumed = no_updates  # type: ignore[method-assign]
        self.tasks = [asyncio.ensure_future(self._pump(self.to_server, self.server)),
                      asyncio.ensure_future(self._pump(self.to_client, self.client))]

    @staticmethod
    def _queue(queue: asyncio.Queue[bytes]):
        async def send(data: bytes) -> None:
            for piece in (data[:8], data[8:]):
                if piece:
                    await queue.put(piece)
        return send

    @staticmethod
    async def _pump(queue: asyncio.Queue[bytes], conn: spdy.Connection) -> None:
        while True:
            await conn.feed(await queue.get())

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.server.close()
        self.client.close()


async def read_all(stream: spdy.Stream) -> bytes:
    out = bytearray()
    while chunk := await stream.read():
        out += chunk
    return bytes(out)


async def test_stream_open_reply_data_both_ways_and_half_close():
    opened: list[spdy.Stream] = []

    async def on_stream(stream: spdy.Stream) -> None:
        opened.append(stream)
        await stream.reply()

    pipe = Pipe(on_stream)
    try:
        stream = await pipe.client.open_stream({"streamType": "data", "port": "80"})
        await asyncio.wait_for(stream.replied.wait(), 5)
        (theirs,) = opened
        assert theirs.header("streamtype") == "data" and theirs.header("Port") == "80"
        await stream.write(b"ping")
        await stream.close()
        assert await asyncio.wait_for(read_all(theirs), 5) == b"ping"
        await theirs.write(b"pong")
        await theirs.close()
        assert await asyncio.wait_for(read_all(stream), 5) == b"pong"
        assert not pipe.server.streams and not pipe.client.streams  # both sides closed: gone
        with pytest.raises(spdy.StreamClosed):
            await theirs.write(b"late")
    finally:
        await pipe.close()


async def test_reset_ends_reads_and_writes():
    opened: list[spdy.Stream] = []

    async def on_stream(stream: spdy.Stream) -> None:
        opened.append(stream)
        await stream.reply()

    pipe = Pipe(on_stream)
    try:
        stream = await pipe.client.open_stream({"port": "1"})
        await asyncio.wait_for(stream.replied.wait(), 5)
        await stream.reset(spdy.CANCEL)
        assert await asyncio.wait_for(opened[0].read(), 5) == b""
        assert opened[0].reset_status == spdy.CANCEL
        with pytest.raises(spdy.StreamClosed):
            await opened[0].write(b"x")
    finally:
        await pipe.close()


async def test_peer_pings_are_echoed_and_streams_after_goaway_refused():
    pipe = Pipe(on_stream=lambda s: s.reply())
    try:
        await asyncio.wait_for(pipe.client.ping(), 5)
        await pipe.client.goaway()
        await asyncio.sleep(0.05)
        stream = await pipe.client.open_stream({"port": "1"})
        await asyncio.wait_for(stream.replied.wait(), 5)
        assert stream.reset_status == spdy.REFUSED_STREAM
    finally:
        await pipe.close()


async def test_sender_keeps_to_the_window_of_a_peer_that_does_flow_control():
    opened: list[spdy.Stream] = []

    async def on_stream(stream: spdy.Stream) -> None:
        opened.append(stream)
        await stream.reply()

    pipe = Pipe(on_stream)
    try:
        stream = await pipe.client.open_stream({"port": "1"})
        await asyncio.wait_for(stream.replied.wait(), 5)
        # the client reads a little so that it announces a WINDOW_UPDATE: the server now enforces
        await opened[0].write(b"y" * 40000)
        assert len(await stream.read()) > 0
        await asyncio.sleep(0.05)
        assert pipe.server.enforce_send_window
        writer = asyncio.ensure_future(opened[0].write(b"z" * 1_000_000))
        await asyncio.sleep(0.2)
        assert not writer.done()  # blocked: the client stopped reading
        assert opened[0].send_window <= 0 or pipe.server.session_send_window <= 0
        received = 0
        while received < 1_000_000:  # reading opens the window again
            received += len(await asyncio.wait_for(stream.read(), 5))
        await asyncio.wait_for(writer, 5)
    finally:
        await pipe.close()


async def test_a_peer_without_flow_control_is_not_stalled_after_64_kib():
    opened: list[spdy.Stream] = []

    async def on_stream(stream: spdy.Stream) -> None:
        opened.append(stream)
        await stream.reply()

    pipe = Pipe(on_stream, client_updates=False)
    try:
        stream = await pipe.client.open_stream({"port": "1"})
        await asyncio.wait_for(stream.replied.wait(), 5)
        await asyncio.wait_for(opened[0].write(b"q" * 300_000), 5)  # no reader yet, no WINDOW_UPDATE
        await opened[0].close()
        assert len(await asyncio.wait_for(read_all(stream), 5)) == 300_000
    finally:
        await pipe.close()


async def test_session_errors_answer_goaway():
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    conn = spdy.Connection(send)
    with pytest.raises(spdy.SpdyError):
        await conn.feed(struct.pack(">HHI", 0x8002, 1, 0))
    assert spdy.FrameDecoder().feed(b"".join(sent)) == [spdy.GoAway(0, spdy.GOAWAY_PROTOCOL_ERROR)]
    assert conn.closed
