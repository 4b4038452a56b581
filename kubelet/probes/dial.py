"""The kubelet's probe dialer: how every probe connects, and Go's wording of what goes
wrong (probe failure messages quote it: `dial tcp 10.0.0.5:80: connect: connection
refused`, `dial tcp: lookup db: no such host`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct

from kubelet.probes.spec import join_host_port


class DialError(Exception):
    """A connection could not be made; the text is Go's net.OpError."""


async def dial(host: str, port: int, *, limit: int = 2**16) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to host:port (a name is resolved, its addresses tried in order; the first
    error is reported, as Go's dialer does). Raises DialError."""
    if is_ip(host):
        addresses = [host]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise DialError(f"dial tcp: lookup {host}: no such host") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    first: DialError | None = None
    for address in addresses:
        try:
            reader, writer = await asyncio.open_connection(address, port, limit=limit)
        except OSError as exc:
            first = first or DialError(f"dial tcp {join_host_port(address, port)}: connect: {strerror(exc)}")
            continue
        set_linger(writer)
        return reader, writer
    raise first or DialError(f"dial tcp: lookup {host}: no such host")


def set_linger(writer: asyncio.StreamWriter) -> None:
    """SO_LINGER 1 s, as the kubelet's probe dialer: probe sockets should not pile up in
    TIME_WAIT on a busy node."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 1))


def abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


def strerror(exc: OSError) -> str:
    """Go's syscall.Errno text: `connection refused`, `no route to host`."""
    if exc.errno:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return str(exc)


def is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False
