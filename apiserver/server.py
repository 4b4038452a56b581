"""Entry point of the API server process (`mkp apiserver`).

Opens the store under the data directory, starts the app on uvloop and, with port 0,
publishes the port the OS chose (atomically, to `port_file`) once it is listening, so
a supervisor can wait for the file and then for /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web


@contextlib.asynccontextmanager
async def running_apiserver(data_dir: Path, host: str, port: int,
                            service_cidr: str = "10.96.0.0/12") -> AsyncIterator[int]:
    """The API server listening on `host:port` (0: the OS picks) for the duration of the
    block; yields the bound port. Everything it started is stopped on the way out."""
    from apiserver.app import build_app, open_storage, start_server, stop_tasks
    from apiserver.kubernetes_service import ensure_kubernetes_service

    storage = open_storage(data_dir)
    server, tasks = await start_server(storage, address=f"{host}:{port}", service_cidr=service_cidr)
    runner = web.AppRunner(build_app(server), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        bound = runner.addresses[0][1]
        server.address = f"{host}:{bound}"
        await ensure_kubernetes_service(server, host, bound)
        yield bound
    finally:
        await runner.cleanup()
        await stop_tasks(tasks)
        await storage.close()


def publish_port(port_file: Path | None, port: int) -> None:
    """Write the bound port atomically, for a supervisor waiting on the file."""
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, port_file)


async def wait_for_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(data_dir: Path, host: str, port: int, port_file: Path | None,
                service_cidr: str = "10.96.0.0/12") -> None:
    """Serve until SIGTERM/SIGINT or cancellation."""
    async with running_apiserver(data_dir, host, port, service_cidr) as bound:
        publish_port(port_file, bound)
        await wait_for_signal()


def main(data_dir: str, host: str = "127.0.0.1", port: int = 6443, port_file: str | None = None,
         service_cidr: str = "10.96.0.0/12") -> None:
    import gc

    import uvloop

    # Every request allocates thousands of short-lived dicts and lists (decoded bodies,
    # copies, field sets); with the default threshold (700) the young generation is
    # collected every few requests, and full collections walk the whole heap often.
    # Fewer, larger collections cost less CPU; reference cycles are still collected.
    gc.set_threshold(50_000, 20, 100)
    logging.basicConfig(level=os.environ.get("MKP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(serve(Path(data_dir), host, port, Path(port_file) if port_file else None, service_cidr))
