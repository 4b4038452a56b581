"""What Envoy's `envoy.filters.listener.tls_inspector` learns from a connection's first
bytes, before any handshake: whether it is TLS, and from the ClientHello the SNI server
name and the ALPN protocols the client offers. A listener needs these to choose a filter
chain (`filter_chain_match.server_names`, `transport_protocol`, `application_protocols`)
and so to know which certificate to present; Python's `ssl` only shows them during the
handshake, after the context is chosen, so the ClientHello is parsed here from bytes
peeked (MSG_PEEK) off the socket.

Only the first TLS record is parsed: a ClientHello fits one record (16 KiB) in practice;
one that does not yields no SNI/ALPN, as a malformed one does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_HELLO = 5 + 16384 + 256  # one record header plus the largest record TLS allows
_SNI, _ALPN = 0, 16


@dataclass(frozen=True)
class ClientHello:
    """What a listener knows about a new connection when it picks a filter chain."""

    tls: bool = False
    server_name: str = ""
    alpn: tuple[str, ...] = ()

    @property
    def transport_protocol(self) -> str:
        return "tls" if self.tls else "raw_buffer"


def record_length(first: bytes) -> int | None:
    """The bytes the first TLS record needs (header included); None before its header."""
    if len(first) < 5:
        return None
    return 5 + struct.unpack_from("!H", first, 3)[0]


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ValueError("truncated")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self.take(2))[0]

    def vec(self, length_bytes: int) -> _Reader:
        n = self.u8() if length_bytes == 1 else self.u16() if length_bytes == 2 else \
            int.from_bytes(self.take(3), "big")
        start = self.pos
        self.take(n)
        return _Reader(self.buf, start, start + n)


def parse_client_hello(record: bytes) -> ClientHello:
    """The SNI and ALPN of a complete first record (`record_length` bytes); a record that
    is not a well-formed ClientHello is still TLS, just without names."""
    try:
        r = _Reader(record, 5, min(len(record), record_length(record) or 0))
        if r.u8() != 1:  # handshake type client_hello
            return ClientHello(tls=True)
        body = r.vec(3)
        body.take(2 + 32)  # legacy_version, random
        body.vec(1)  # legacy_session_id
        body.vec(2)  # cipher_suites
        body.vec(1)  # legacy_compression_methods
        if body.pos == body.end:
            return ClientHello(tls=True)
        extensions = body.vec(2)
        server_name, alpn = "", ()
        while extensions.pos < extensions.end:
            kind = extensions.u16()
            data = extensions.vec(2)
            if kind == _SNI:
                names = data.vec(2)
                while names.pos < names.end:
                    name_type = names.u8()
                    name = names.vec(2)
                    if name_type == 0:  # host_name
                        server_name = name.take(name.end - name.pos).decode("ascii", "replace").lower()
            elif kind == _ALPN:
                protos = data.vec(2)
                found = []
                while protos.pos < protos.end:
                    p = protos.vec(1)
                    found.append(p.take(p.end - p.pos).decode("ascii", "replace"))
                alpn = tuple(found)
        return ClientHello(tls=True, server_name=server_name, alpn=alpn)
    except ValueError:
        return ClientHello(tls=True)
