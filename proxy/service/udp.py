"""UDP forwarding: a flow per client address, each with its own connected socket.

The first datagram from a client address picks an endpoint (round robin, affinity,
policy, like a TCP connection) and opens a flow: a UDP socket connected to that
endpoint, read with `add_reader`, so a reply is relayed back to the client from the
frontend socket (source address = the Service address, which resolvers check). Later
datagrams of the same client address use the same flow, as conntrack keeps a UDP
"connection" on one endpoint. A flow idle for `idle_timeout` seconds is closed; the
next datagram picks again (and so sees endpoint changes).

Everything here is synchronous in loop callbacks (a connected UDP socket's connect
and send do not block), so a DNS query through the proxy costs one socket and two
callbacks. Without an endpoint the datagram is dropped: a userspace proxy cannot
send the ICMP error kube-proxy's REJECT would (when a Service has no endpoints at all
the proxy closes its listener, and then the kernel does send it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from proxy.service.endpoints import Endpoint
from proxy.service.tcp import Target

log = logging.getLogger("proxy.service.udp")

DEFAULT_IDLE_TIMEOUT = 30.0  # seconds, as nf_conntrack_udp_timeout
MAX_FLOWS = 4096  # per frontend; beyond this the least recently used flow is closed
MAX_DATAGRAM = 65535
READ_BATCH = 64  # datagrams relayed per readable callback


class Flow:
    """One client address's datagrams to one endpoint."""

    def __init__(self, frontend: UdpFrontend, client: tuple[Any, ...], endpoint: Endpoint) -> None:
        self.frontend = frontend
        self.client = client
        self.endpoint = endpoint
        self.loop = asyncio.get_running_loop()
        self.last_used = self.loop.time()
        family = socket.AF_INET6 if ":" in endpoint.ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(endpoint.address)
            self.loop.add_reader(self.sock.fileno(), self._readable)
        except OSError:
            self.sock.close()
            raise

    def send(self, data: bytes) -> None:
        self.last_used = self.loop.time()
        try:
            self.sock.send(data)
        except OSError as exc:  # a queued ICMP error (refused), or a full buffer: drop
            log.debug("udp %s -> %s: %s", self.client, self.endpoint, exc)

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as exc:  # ECONNREFUSED from an ICMP error: nothing to relay
                log.debug("udp %s <- %s: %s", self.client, self.endpoint, exc)
                return
            self.last_used = self.loop.time()
            self.frontend.reply(data, self.client)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class UdpFrontend(asyncio.DatagramProtocol):
    """The protocol of one UDP listener."""

    def __init__(self, target: Target, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.target = target
        self.idle_timeout = idle_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[Any, ...], Flow] = {}  # insertion order = least recently opened first
        self._sweeper: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self._open(addr)
            if flow is None:
                return  # dropped
        flow.send(data)

    def _open(self, addr: tuple[Any, ...]) -> Flow | None:
        endpoint = self.target.pick(str(addr[0]))
        if endpoint is None:
            return None
        try:
            flow = Flow(self, addr, endpoint)
        except OSError as exc:
            self.target.dial_failed(str(addr[0]), endpoint, exc)
            return None
        if len(self.flows) >= MAX_FLOWS:
            self.close_flow(next(iter(self.flows)))
        self.flows[addr] = flow
        self.target.connection_opened()
        if self._sweeper is None:
            self._schedule_sweep()
        return flow

    def reply(self, data: bytes, client: tuple[Any, ...]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def _schedule_sweep(self) -> None:
        interval = max(0.05, min(1.0, self.idle_timeout / 2))
        self._sweeper = asyncio.get_running_loop().call_later(interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for addr in [a for a, f in self.flows.items() if now - f.last_used > self.idle_timeout]:
            self.close_flow(addr)
        if self.flows and self.transport is not None:
            self._schedule_sweep()

    def close_flow(self, addr: tuple[Any, ...]) -> None:
        flow = self.flows.pop(addr, None)
        if flow is not None:
            flow.close()
            self.target.connection_closed()

    def error_received(self, exc: Exception) -> None:
        log.debug("udp listener error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        """The listener closed: its flows end with it (a UDP 'connection' has no life of
        its own once nothing receives the client's datagrams)."""
        self.transport = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for addr in list(self.flows):
            self.close_flow(addr)
