"""podinfo's main: parse flags and env, log, start the burners, serve, and shut down
gracefully on SIGTERM/SIGINT (a second signal exits 1 at once)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from . import config as flags
from .logger import Logger


def main(version: str, revision: str, argv: list[str] | None = None) -> int:
    try:
        config = flags.parse(sys.argv[1:] if argv is None else argv, dict(os.environ), version)
    except flags.UsageError as exc:
        return flags.fail(str(exc))
    if config["version"]:
        print(version)
        return 0
    logger = Logger(config["level"])
    from . import stress

    stress.begin(config["stress-cpu"], config["stress-memory"], logger)
    try:
        return asyncio.run(_serve(config, version, revision, logger))
    except KeyboardInterrupt:
        return 1


async def _serve(config: flags.Config, version: str, revision: str, logger: Logger) -> int:
    from aiohttp import web

    from .handlers import State, build_app

    state = State(config, version, revision, flags.hostname(), logger)
    if config["grpc-port"]:
        logger.warn("gRPC is not served by mkp's podinfo", port=config["grpc-port"])
    logger.info("Starting podinfo", version=version, revision=revision, port=str(config["port"]))
    host = config["host"] or os.environ.get("MKP_POD_IP") or None
    runners = []
    app_runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await app_runner.setup()
    runners.append(app_runner)
    if config["port"]:
        logger.info("Starting HTTP Server.", addr=f"{config['host']}:{config['port']}")
        await web.TCPSite(app_runner, host, config["port"], reuse_address=True).start()
    if config["port-metrics"]:
        runners.append(await _metrics_server(state, host, config["port-metrics"]))
    state.healthy = not config["unhealthy"]
    state.ready = not config["unready"]
    await _wait_for_signal(logger)
    state.healthy = state.ready = False
    timeout = config["http-server-shutdown-timeout"]
    logger.info("Shutting down HTTP/HTTPS server", timeout=int(timeout) if timeout == int(timeout) else timeout)
    if config["level"] != "debug":
        await asyncio.sleep(3)  # let readiness probes take the pod out of endpoints first
    for runner in runners:
        await asyncio.wait_for(runner.cleanup(), timeout=timeout or None)
    return 0


async def _metrics_server(state: object, host: str | None, port: int) -> object:
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=state.metrics.render(), content_type="text/plain")  # type: ignore[attr-defined]

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


async def _wait_for_signal(logger: Logger) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(1)  # second signal: exit directly
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
