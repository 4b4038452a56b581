"""What the kubelet's probe dialer does to every probe socket, and Go's wording of
socket errors (probe failure messages quote them: `connect: connection refused`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct


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
