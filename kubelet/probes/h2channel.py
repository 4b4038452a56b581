"""One cleartext HTTP/2 connection carrying a unary gRPC call, for grpc probes.

Kept apart from `grpc` so the `h2` package (framing, HPACK, flow control) is imported
only on nodes that run grpc probes. `Channel.open` is ready once the server's SETTINGS
arrive, which is what grpc-go's blocking dial waits for; anything that fails before
that raises `Broken` (the caller retries), anything after becomes an `RpcError`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from kubelet.probes.dial import DialError, abort, dial
from kubelet.probes.grpc import INTERNAL, UNAVAILABLE, RpcError
from kubelet.probes.http import USER_AGENT


class Broken(Exception):
    """The connection failed before it was ready (refused, not HTTP/2, closed)."""


@dataclass
class Reply:
    headers: dict[str, str] = field(default_factory=dict)
    trailers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)


class Channel:
    """One HTTP/2 client connection carrying one unary call."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)

    @classmethod
    async def open(cls, host: str, port: int) -> Channel:
        try:
            reader, writer = await dial(host, port)
        except DialError as exc:
            raise Broken(str(exc)) from None
        channel = cls(reader, writer)
        try:
            channel.conn.initiate_connection()
            await channel._flush()
            while True:  # ready once the server's SETTINGS arrive
                events = await channel._receive()
                if any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events):
                    return channel
                if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                    raise Broken("GOAWAY during the handshake")
        except (OSError, h2.exceptions.ProtocolError) as exc:
            channel.close()
            raise Broken(str(exc)) from None
        except BaseException:
            channel.close()
            raise

    async def unary(self, path: str, authority: str, message: bytes, grpc_timeout: str) -> Reply:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
            ("content-type", "application/grpc"), ("user-agent", USER_AGENT), ("te", "trailers"),
            ("grpc-timeout", grpc_timeout),
        ])
        self.conn.send_data(stream, b"\x00" + len(message).to_bytes(4, "big") + message, end_stream=True)
        await self._flush()
        reply = Reply()
        while True:
            try:
                events = await self._receive()
            except (Broken, OSError, h2.exceptions.ProtocolError) as exc:
                raise RpcError(UNAVAILABLE, f"error reading from server: {exc or 'EOF'}") from None
            for event in events:
                if getattr(event, "stream_id", stream) != stream:
                    continue
                if self._handle(event, reply):
                    await self._flush()
                    return reply
            await self._flush()

    def _handle(self, event: h2.events.Event, reply: Reply) -> bool:
        """Fold one event into `reply`; True when the call is over."""
        if isinstance(event, h2.events.ResponseReceived):
            reply.headers = dict(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            reply.trailers = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            reply.data += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            code = {8: 1, 7: UNAVAILABLE}.get(event.error_code, INTERNAL)  # CANCEL, REFUSED_STREAM
            name = getattr(event.error_code, "name", str(event.error_code))
            raise RpcError(code, f"stream terminated by RST_STREAM with error code: {name}")
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise RpcError(UNAVAILABLE, "the connection is draining")
        return isinstance(event, h2.events.StreamEnded)

    async def _receive(self) -> list[h2.events.Event]:
        data = await self.reader.read(65536)
        if not data:
            raise Broken("EOF")
        return self.conn.receive_data(data)

    async def _flush(self) -> None:
        if pending := self.conn.data_to_send():
            self.writer.write(pending)
            await self.writer.drain()

    def close(self) -> None:
        abort(self.writer)
