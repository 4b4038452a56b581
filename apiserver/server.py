"""Entry point of the API server process (`mkp apiserver`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web


def build_minimal_app() -> web.Application:
    app = web.Application()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4"})

    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, ok)
    app.router.add_get("/version", version)
    return app


async def serve(data_dir: Path, host: str, port: int, port_file: Path | None) -> None:
    """Serve until cancelled. With port 0 the OS picks a port; it is written to
    `port_file` (atomically) once the server is listening."""
    data_dir.mkdir(parents=True, exist_ok=True)
    runner = web.AppRunner(build_minimal_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        os.replace(tmp, port_file)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(data_dir: str, host: str = "127.0.0.1", port: int = 6443, port_file: str | None = None) -> None:
    import uvloop

    uvloop.run(serve(Path(data_dir), host, port, Path(port_file) if port_file else None))
