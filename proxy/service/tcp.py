"""TCP forwarding: each accepted connection is spliced to a backend connection.

Both sides are asyncio Protocols, so bytes move in the event loop's read callbacks with
no per-connection task copying through small buffers (a StreamReader loop would read
64 KiB at most per await and wake a task per chunk). Flow control is the transports':
when one side's write buffer passes its high-water mark its protocol gets
`pause_writing` and stops reading the *other* side, until `resume_writing`.

Half-close: an EOF from one side is passed on as a FIN to the other (`write_eof`, after
the buffered bytes), and the connection stays open the other way until that side ends
too, as a kernel-level proxy would. A reset on one side aborts the other (RST).

Choosing the backend happens once per connection, before the client is read from: the
target picks an endpoint; a dial that fails (refused, timed out) tries the next pick,
at most four times with growing timeouts, as the userspace kube-proxy did; no endpoint
(or a refused policy check) resets the client connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from proxy.service.endpoints import Endpoint

log = logging.getLogger("proxy.service.tcp")

CONNECT_TIMEOUTS = (0.5, 1.0, 2.0, 4.0)  # seconds per dial attempt


class Target(Protocol):
    """Where a listener's new connections go (proxy.service.listeners.Target)."""

    def pick(self, client_ip: str) -> Endpoint | None: ...

    def dial_failed(self, client_ip: str, endpoint: Endpoint, error: BaseException) -> None: ...

    def connection_opened(self) -> None: ...

    def connection_closed(self) -> None: ...


class Pipe(asyncio.Protocol):
    """One side of a proxied connection; `peer` is the other side."""

    def __init__(self, peer: Pipe | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer = peer
        self.eof = False
        self.closed = False
        self.pending: list[bytes] = []  # read before the peer existed (uvloop reads even when paused early)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is not None:
            if self.peer.closed:  # the client left while we dialled
                self.transport.abort()
                return
            self.peer.peer = self

    def _linked(self) -> Pipe | None:
        peer = self.peer
        return peer if peer is not None and peer.transport is not None else None

    def data_received(self, data: bytes) -> None:
        peer = self._linked()
        if peer is None:
            self.pending.append(data)
            if self.transport is not None:
                self.transport.pause_reading()
        elif not peer.closed:
            peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        if self.eof:  # uvloop may report it again after a resume_reading
            return True
        self.eof = True
        peer = self._linked()
        if peer is None:
            return True  # passed on once linked
        return self._pass_eof(peer)

    def _pass_eof(self, peer: Pipe) -> bool:
        assert peer.transport is not None
        if peer.closed:
            return False
        if peer.eof:  # both directions are finished
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # keep our write side open (half-close)

    def pause_writing(self) -> None:
        peer = self._linked()
        if peer is not None and not peer.closed:
            peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        peer = self._linked()
        if peer is not None and not peer.closed and not peer.eof:
            peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self._linked()
        if peer is not None and not peer.closed:
            if exc is not None:
                peer.transport.abort()  # type: ignore[union-attr]
            else:
                peer.transport.close()  # type: ignore[union-attr]


class ClientSide(Pipe):
    """An accepted connection: dial a backend, then splice."""

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
        self._dial: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.target.connection_opened()
        self.transport.pause_reading()  # nothing is read until a backend is connected
        self._dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else ""
        loop = asyncio.get_running_loop()
        for timeout in CONNECT_TIMEOUTS:
            endpoint = self.target.pick(client_ip)
            if endpoint is None or self.closed:
                break
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: Pipe(peer=self), endpoint.ip, endpoint.port), timeout)
            except (OSError, TimeoutError) as exc:
                self.target.dial_failed(client_ip, endpoint, exc)
                continue
            self._start_splicing()
            return
        if not self.closed:
            self.transport.abort()  # RST: no endpoint would take the connection

    def _start_splicing(self) -> None:
        """The backend is connected: hand over what was read meanwhile, then read on."""
        peer = self._linked()
        if self.closed or peer is None:
            return
        assert self.transport is not None and peer.transport is not None
        for data in self.pending:
            peer.transport.write(data)
        self.pending.clear()
        if self.eof:
            if not self._pass_eof(peer):
                self.transport.close()
        else:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        self.target.connection_closed()
        super().connection_lost(exc)
