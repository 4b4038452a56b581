"""tcpSocket probes: the port accepts a connection within timeoutSeconds, or not.

As pkg/probe/tcp: connect, close at once, never send a byte. A refused or timed-out dial
is a failure whose message is Go's dial error (`dial tcp 10.0.0.5:6379: connect:
connection refused`, `dial tcp 10.0.0.5:6379: i/o timeout`).
"""

from __future__ import annotations

import asyncio
import contextlib

from kubelet.probes.dial import DialError, dial
from kubelet.probes.spec import FAILURE, SUCCESS, Outcome, join_host_port


async def tcp_probe(host: str, port: int, timeout: float) -> Outcome:
    address = join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await dial(host, port)
    except TimeoutError:
        return Outcome(FAILURE, f"dial tcp {address}: i/o timeout")
    except DialError as exc:
        return Outcome(FAILURE, str(exc))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Outcome(SUCCESS, "")
