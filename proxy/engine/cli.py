"""`mkp proxy --config FILE`: the Envoy-like proxy engine as a process, from an Envoy v3
static bootstrap (YAML or JSON), the way `envoy -c FILE` runs.

    mkp proxy --config envoy.yaml [--log-level info] [--concurrency N]

Only the click command lives at import time (registering it costs `mkp` nothing); the
engine is imported when the command runs. The process runs on uvloop, serves the admin
interface on `admin.address` when the bootstrap has one, reloads the file when it
changes (a bad file is logged and the old config keeps serving), and on SIGTERM or
SIGINT closes its listeners, lets requests under way finish, writes the access log lines
and sends the spans left, and exits 0. With `--concurrency N` (N > 1) it is a parent of N such processes sharing
the listeners through SO_REUSEPORT (workers.py); the parent serves the admin address.
"""

from __future__ import annotations

import asyncio
import logging
import os

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


async def run(config: str, *, reload_interval: float = 0.5, drain_timeout: float = 5.0,
              admin_socket: str | None = None, ports: dict[str, int] | None = None) -> None:
    """Serve `config` until SIGTERM/SIGINT; reload it on change. Raises ConfigError/OSError at start.
    A worker of `--concurrency N` serves its admin on `admin_socket` (for the parent) instead of
    admin.address, and puts its port-0 listeners on `ports` (workers.pin_ports)."""
    import signal

    from proxy.engine.admin import start_admin, start_admin_unix
    from proxy.engine.config import ConfigError, load, watch
    from proxy.engine.server import ProxyServer
    from proxy.engine.workers import pin_ports

    ports = ports or {}
    server = ProxyServer(pin_ports(load(config), ports))
    await server.start()
    settle_heap()
    for lst, (host, port) in zip(server.bootstrap.static_resources.listeners, server.addresses(), strict=True):
        log.info("listener %s on %s:%d", lst.name or "(unnamed)", host, port)
    runner = None
    admin = server.bootstrap.admin
    if admin_socket is not None:
        runner = await start_admin_unix(server, admin_socket)
    elif admin is not None and admin.address is not None:
        sa = admin.address.socket_address
        runner, port = await start_admin(server, sa.address, sa.port_value)
        log.info("admin on %s:%d", sa.address, port)

    reloading: set[asyncio.Task[None]] = set()

    async def swap(boot: object) -> None:
        try:
            await server.swap(pin_ports(boot, ports))  # type: ignore[arg-type]
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
    await server.stop(drain_timeout)  # and flushes the access log lines and spans left
    if runner is not None:
        await runner.cleanup()
    log.info("stopped")


async def supervise(config: str, concurrency: int, log_level: str, *, drain_timeout: float = 5.0) -> None:
    """`--concurrency N`: validate the config, start N workers, serve the admin over them,
    until SIGTERM/SIGINT (forwarded). Raises ConfigError before any worker starts."""
    import signal

    from proxy.engine.admin import SupervisorAdmin, start_admin
    from proxy.engine.config import load
    from proxy.engine.server import ProxyServer
    from proxy.engine.workers import Supervisor, reserve_ports

    boot = load(config)
    await ProxyServer(boot).telemetry.aclose()  # built as a worker builds it: the same ConfigErrors
    ports, held = reserve_ports(boot)
    sup = Supervisor(config, concurrency, log_level=log_level, ports=ports, drain_timeout=drain_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    def on_signal() -> None:
        sup.stopping = True  # before any worker's exit is seen: Ctrl-C reaches the workers too
        stop.set()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    runner = None
    try:
        if boot.admin is not None and boot.admin.address is not None:
            sa = boot.admin.address.socket_address
            runner, port = await start_admin(SupervisorAdmin(sup), sa.address, sa.port_value)
            log.info("admin on %s:%d", sa.address, port)
        starting = loop.create_task(sup.start())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # WorkerError: a worker could not start
            log.info("serving %s with %d workers (pids %s)", config, concurrency, sup.pids())
            await stopping
        else:
            starting.cancel()
        log.info("draining %d workers", concurrency)
    finally:
        await sup.stop()
        if runner is not None:
            await runner.cleanup()
        for s in held:
            s.close()
    log.info("stopped")


@click.command("proxy")
@click.option("--config", "-c", "config", required=True, type=click.Path(dir_okay=False),
              help="Envoy v3 bootstrap (YAML or JSON); reloaded when it changes.")
@click.option("--log-level", "-l", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes sharing the listeners (SO_REUSEPORT), as Envoy's worker threads.")
@click.option("--worker-of", type=int, hidden=True)
@click.option("--admin-socket", hidden=True)
@click.option("--listener-ports", default="{}", hidden=True)
def proxy_command(config: str, log_level: str, concurrency: int, worker_of: int | None,
                  admin_socket: str | None, listener_ports: str) -> None:
    """Run the Envoy-like L7 proxy from an Envoy bootstrap file, in the foreground."""
    import json

    level = logging.DEBUG if log_level == "trace" else getattr(logging, log_level.upper())
    who = ""
    if worker_of is not None:
        from proxy.engine.workers import die_with_parent

        die_with_parent(worker_of)
        who = f"[{os.path.basename(admin_socket or 'worker').removesuffix('.sock')}] "
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s")
    from proxy.engine.config import ConfigError
    from proxy.engine.workers import WorkerError

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        runner = asyncio.run
    else:
        runner = uvloop.run
    if concurrency > 1 and worker_of is None:
        main = supervise(config, concurrency, log_level)
    else:
        main = run(config, admin_socket=admin_socket, ports=json.loads(listener_ports))
    try:
        runner(main)
    except ConfigError as e:
        raise click.ClickException(f"{config}: {e}") from None
    except OSError as e:
        raise click.ClickException(f"{config}: cannot listen: {e}") from None
    except WorkerError as e:
        raise click.ClickException(f"{config}: {e}") from None


if __name__ == "__main__":  # a worker of `--concurrency N` (workers.py starts it so)
    proxy_command()
