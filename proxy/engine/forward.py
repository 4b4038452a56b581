"""A minimal forwarding proxy built from http1, upstream and headers: no routing, the
upstream endpoints taken round-robin. It is what tests and bench/proxy_bench.py run, and
the shape the integrator generalises (a router choosing the pool instead of `next`).

    python -m proxy.engine.forward --listen 127.0.0.1:10000 --upstream 127.0.0.1:8080[,127.0.0.1:8081]

`--workers N` runs N processes on one port (SO_REUSEPORT: the kernel spreads
connections), the way past one core's limit for a Python data path.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal

from proxy.engine.headers import request_headers
from proxy.engine.http1 import MAX_REQUEST_HEADERS_KB, DownstreamConnection, Stream
from proxy.engine.upstream import CONNECT_TIMEOUT, Exchange, Pool


class ForwardHandler:
    """Sends each request to the next pool, round-robin (an http1.Handler)."""

    def __init__(self, pools: list[Pool], *, edge: bool = True) -> None:
        if not pools:
            raise ValueError("upstream: at least one endpoint is needed")
        self.pools = pools
        self.edge = edge
        self._next = 0

    def __call__(self, stream: Stream) -> None:
        head = stream.head
        assert head is not None
        pool = self.pools[self._next]
        self._next = (self._next + 1) % len(self.pools)
        headers = request_headers(head.headers, remote_address=stream.conn.remote_address_bytes, edge=self.edge,
                                  upgrade=head.upgrade)
        Exchange(stream, pool, headers).start()


def parse_address(text: str, what: str) -> tuple[str, int]:
    """`host:port` -> (host, port), or a ValueError naming `what`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    return host, int(port)


async def start(listen: tuple[str, int], upstreams: list[tuple[str, int]], *,
                connect_timeout: float = CONNECT_TIMEOUT,
                max_request_headers_kb: int = MAX_REQUEST_HEADERS_KB,
                reuse_port: bool = False) -> tuple[asyncio.Server, list[Pool]]:
    """Listen on `listen` and forward to `upstreams`; returns the server and its pools."""
    pools = [Pool(a, connect_timeout=connect_timeout) for a in upstreams]
    handler = ForwardHandler(pools)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: DownstreamConnection(handler, max_request_headers_kb=max_request_headers_kb),
        *listen, reuse_address=True, reuse_port=reuse_port or None, backlog=1024)
    return server, pools


async def _main(args: argparse.Namespace) -> None:
    listen = parse_address(args.listen, "--listen")
    upstreams = [parse_address(u, "--upstream") for part in args.upstream for u in part.split(",") if u]
    server, pools = await start(listen, upstreams, connect_timeout=args.connect_timeout,
                                reuse_port=args.workers > 1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"forwarding {args.listen} -> {','.join(args.upstream)}", flush=True)
    await stop.wait()
    server.close()
    for pool in pools:
        pool.close()
    for pid in args.children:
        os.kill(pid, signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m proxy.engine.forward", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept HTTP/1.1 on")
    parser.add_argument("--upstream", required=True, action="append", help="HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers: at least 1")
    children: list[int] = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:  # a child serves like the parent and ends with it
            children.clear()
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            break
        children.append(pid)
    args.children = children
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        asyncio.run(_main(args))
    else:
        uvloop.run(_main(args))


if __name__ == "__main__":
    main()
