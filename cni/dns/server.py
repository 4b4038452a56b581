"""The DNS listeners: UDP and TCP on each address, one handler for both.

UDP answers fit the client's size (512 octets without EDNS0, else what the OPT record
advertises) and set TC when something was left out, so the client retries over TCP;
TCP messages carry the 2-byte length prefix of RFC 1035 4.2.2, several queries may
share a connection, and an idle connection is closed after 8 s (miekg/dns's default
for CoreDNS). Responses (QR set) are dropped; other opcodes than QUERY get NOTIMP, a
query we cannot read FORMERR, an EDNS version above 0 BADVERS, as CoreDNS does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass

from cni.dns import wire
from cni.dns.metrics import Metrics
from cni.dns.zone import ClusterZone

log = logging.getLogger("cni.dns")

TCP_IDLE_TIMEOUT = 8.0


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        """`192.168.49.2:53` or `[::1]:53`; the host must be an IP address."""
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            raise ValueError(f"listen address {text!r}: want IP:PORT (e.g. 127.0.0.1:53)") from None
        if not sep or not 0 < number < 65536:
            raise ValueError(f"listen address {text!r}: port out of range")
        return cls(host, number)

    @property
    def family(self) -> str:
        """CoreDNS's family label: 1 for IPv4, 2 for IPv6."""
        return "1" if ipaddress.ip_address(self.host).version == 4 else "2"

    @property
    def server(self) -> str:
        """CoreDNS's server label (dns://host:port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"dns://{host}:{self.port}"


class DnsHandler:
    """Bytes in, bytes out, counted."""

    def __init__(self, zone: ClusterZone, metrics: Metrics) -> None:
        self.zone = zone
        self.metrics = metrics

    def handle(self, data: bytes, listen: Listen, tcp: bool) -> bytes | None:
        try:
            return self._handle(data, listen, tcp)
        except Exception:  # noqa: BLE001 - one bad query must not stop a listener
            log.exception("answering a query on %s failed", listen.server)
            return wire.error_response(data, wire.SERVFAIL)

    def _handle(self, data: bytes, listen: Listen, tcp: bool) -> bytes | None:
        started = time.perf_counter()
        try:
            query = wire.parse_query(data)
        except wire.FormatError:
            if len(data) >= 12 and data[2] & 0x80:
                return None
            return wire.error_response(data, wire.FORMERR)
        if query.flags & wire.QR:
            return None
        if query.flags & wire.OPCODE_MASK:
            reply, rcode, plugin = wire.response(query, wire.NOTIMP, authoritative=False), wire.NOTIMP, ""
        elif query.edns and query.edns_version > 0:
            reply, rcode, plugin = wire.response(query, wire.BADVERS, authoritative=False), wire.BADVERS, ""
        else:
            answered = self.zone.answer(query, wire.max_size(query, tcp))
            reply, rcode, plugin = answered.data, answered.rcode, answered.plugin
        self.metrics.observe(listen.server, "tcp" if tcp else "udp", listen.family, query.qtype, rcode, plugin,
                             time.perf_counter() - started)
        return reply


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DnsHandler, listen: Listen) -> None:
        self.handler, self.listen = handler, listen
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.handler.handle(data, self.listen, False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp %s: %s", self.listen.server, exc)


class DnsServer:
    """UDP and TCP listeners on every address, answering from one ClusterZone."""

    def __init__(self, handler: DnsHandler, listens: list[Listen]) -> None:
        if not listens:
            raise ValueError("give at least one --listen address")
        self.handler = handler
        self.listens = listens
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listen in self.listens:
            proto = "udp"
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda listen=listen: _UdpProtocol(self.handler, listen), local_addr=(listen.host, listen.port))
                self._udp.append(transport)
                proto = "tcp"
                server = await asyncio.start_server(
                    lambda r, w, listen=listen: self._serve_tcp(r, w, listen), listen.host, listen.port,
                    reuse_address=True)
                self._tcp.append(server)
            except OSError as exc:
                await self.close()
                raise OSError(f"cannot listen on {listen.host}:{listen.port}/{proto}: {exc}") from exc
            log.info("serving DNS on %s (udp, tcp)", listen.server)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listen: Listen) -> None:
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                message = await asyncio.wait_for(reader.readexactly(int.from_bytes(header, "big")), TCP_IDLE_TIMEOUT)
                reply = self.handler.handle(message, listen, True)
                if reply is None:
                    continue
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
            # Do not wait_closed: since 3.12 it waits for open client connections too.
        self._udp, self._tcp = [], []
