"""`mkp proxy --config FILE`: the Envoy-like proxy engine as a process, from an Envoy v3
static bootstrap (YAML or JSON), the way `envoy -c FILE` runs.

    mkp proxy --config envoy.yaml [--log-level info]

Only the click command lives at import time (registering it costs `mkp` nothing); the
engine is imported when the command runs. The process runs on uvloop, serves the admin
interface on `admin.address` when the bootstrap has one, reloads the file when it
changes (a bad file is logged and the old config keeps serving), and on SIGTERM or
SIGINT closes its listeners, lets requests under way finish, writes the access log lines
and sends the spans left, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging

import click

log = logging.getLogger("proxy.engine")
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical")


def settle_heap() -> None:
    """Move what lives as long as a config (routes, clusters, stats, modules) out of the
    cyclic GC's reach: unfreeze what the last settle froze (an old config's objects can
    then be collected), collect, freeze the survivors. Requests leave no cycles (flow.py
    unlinks them), so the collector's remaining work is young objects only, and the
    full collections that scanned the whole heap (20-46 ms pauses under load) are gone.
    The young-generation threshold is raised, as collections now rarely find anything."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


async def run(config: str, *, reload_interval: float = 0.5, drain_timeout: float = 5.0) -> None:
    """Serve `config` until SIGTERM/SIGINT; reload it on change. Raises ConfigError/OSError at start."""
    import signal

    from proxy.engine.admin import start_admin
    from proxy.engine.config import ConfigError, load, watch
    from proxy.engine.server import ProxyServer

    server = ProxyServer(load(config))
    await server.start()
    settle_heap()
    for lst, (host, port) in zip(server.bootstrap.static_resources.listeners, server.addresses(), strict=True):
        log.info("listener %s on %s:%d", lst.name or "(unnamed)", host, port)
    runner = None
    admin = server.bootstrap.admin
    if admin is not None and admin.address is not None:
        sa = admin.address.socket_address
        runner, port = await start_admin(server, sa.address, sa.port_value)
        log.info("admin on %s:%d", sa.address, port)

    reloading: set[asyncio.Task[None]] = set()

    async def swap(boot: object) -> None:
        try:
            await server.swap(boot)  # type: ignore[arg-type]
        except (ConfigError, OSError, ValueError) as e:
            log.error("config reload failed, keeping the old config: %s", e)
        else:
            settle_heap()
            log.info("config reloaded from %s", config)

    def on_change(boot: object, error: ConfigError | None) -> None:
        if error is not None:
            log.error("config reload failed, keeping the old config: %s", error)
            return
        task = asyncio.get_running_loop().create_task(swap(boot))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    watcher = watch(config, on_change, interval=reload_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving %s", config)
    await stop.wait()
    log.info("draining")
    watcher.cancel()
    await server.stop(drain_timeout)
    await server.telemetry.aclose()  # the last access log lines and spans
    if runner is not None:
        await runner.cleanup()
    log.info("stopped")


@click.command("proxy")
@click.option("--config", "-c", "config", required=True, type=click.Path(dir_okay=False),
              help="Envoy v3 bootstrap (YAML or JSON); reloaded when it changes.")
@click.option("--log-level", "-l", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
def proxy_command(config: str, log_level: str) -> None:
    """Run the Envoy-like L7 proxy from an Envoy bootstrap file, in the foreground."""
    level = logging.DEBUG if log_level == "trace" else getattr(logging, log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from proxy.engine.config import ConfigError

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(run(config))
    except ConfigError as e:
        raise click.ClickException(f"{config}: {e}") from None
    except OSError as e:
        raise click.ClickException(f"{config}: cannot listen: {e}") from None
