"""Envoy's admin interface, the part a learner uses to see what the proxy does:
/ready, /config_dump, /clusters, /stats, /stats/prometheus and /logging, on
`admin.address`.

It is a separate aiohttp app (not the engine's own HTTP path) because it is off the data
path and aiohttp gives query parsing and JSON for free. Formats follow Envoy's: /ready
answers `LIVE`, /clusters prints `cluster::host:port::stat::value` lines, /stats
`name: value` lines (`?filter=REGEX`), /config_dump the ConfigDump document.
/stats/prometheus is Envoy's stats followed by Istio's standard metrics (istio_*), as
Istio's merged endpoint serves them. /logging lists the engine's loggers and levels (GET)
and changes them (POST `?level=debug`, `?<logger>=<level>`, `?paths=a:debug,b:info`).
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from proxy.engine import loggers
from proxy.engine.config import config_dump
from proxy.engine.server import ProxyServer


def clusters_text(server: ProxyServer) -> str:
    """Envoy's /clusters text: per cluster its circuit-breaker thresholds and outlier
    detection's success-rate markers, per host its counters, health and ejection state."""
    lines: list[str] = []
    for name, rt in server.clusters.items():
        t = rt.circuit.thresholds
        lines += [f"{name}::default_priority::max_connections::{t.max_connections}",
                  f"{name}::default_priority::max_pending_requests::{t.max_pending_requests}",
                  f"{name}::default_priority::max_requests::{t.max_requests}",
                  f"{name}::default_priority::max_retries::{t.max_retries}"]
        if rt.outlier is not None:
            lines += [f"{name}::outlier::success_rate_average::-1",
                      f"{name}::outlier::success_rate_ejection_threshold::-1"]
        for host in rt.cluster.hosts:
            prefix = f"{name}::{host.address}:{host.port}"
            pool = rt.pools.get((host.address, host.port))
            cx_active = len(pool.connections) if pool is not None else 0
            cx_total = pool.connects if pool is not None else 0
            cx_fail = pool.connect_failures if pool is not None else 0
            flags = []
            if host.ejected:
                flags.append("/failed_outlier_check")
            if host.endpoint.health_status not in ("UNKNOWN", "HEALTHY"):
                flags.append(f"/eds_status_{host.endpoint.health_status.lower()}")
            lines += [f"{prefix}::cx_active::{cx_active}", f"{prefix}::cx_connect_fail::{cx_fail}",
                      f"{prefix}::cx_total::{cx_total}", f"{prefix}::rq_active::{host.active_requests}",
                      f"{prefix}::rq_error::{host.rq_error}", f"{prefix}::rq_total::{host.rq_total}",
                      f"{prefix}::weight::{host.weight}",
                      f"{prefix}::health_flags::{''.join(flags) or 'healthy'}",
                      f"{prefix}::times_ejected::{host.times_ejected}"]
    return "\n".join(lines) + "\n" if lines else ""


def admin_app(server: ProxyServer) -> web.Application:
    """The admin endpoints over `server` (its current generation at each request)."""
    started = time.time()

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="LIVE\n")

    async def dump(_: web.Request) -> web.Response:
        body = orjson.dumps(config_dump(server.bootstrap, last_updated=started), option=orjson.OPT_INDENT_2)
        return web.Response(body=body, content_type="application/json")

    async def clusters(_: web.Request) -> web.Response:
        return web.Response(text=clusters_text(server))

    async def stats(request: web.Request) -> web.Response:
        try:
            text = server.stats.render_text(request.query.get("filter") or None)
        except Exception as e:  # a bad regex: Envoy answers 400 too
            return web.Response(status=400, text=f"filter: {e}\n")
        return web.Response(text=text)

    async def prometheus(_: web.Request) -> web.Response:
        text = server.stats.render_prometheus() + server.telemetry.render_prometheus()
        return web.Response(text=text, content_type="text/plain")

    async def logging_(request: web.Request) -> web.Response:
        params = dict(request.query)
        if params and request.method != "POST":
            return web.Response(status=405, text="This endpoint requires POST to change levels.\n")
        try:
            loggers.change(params)
        except loggers.LoggingError as e:  # Envoy answers an invalid request with 404 and the usage
            return web.Response(status=404, text=f"{e}\n{loggers.USAGE}")
        return web.Response(text=loggers.active_loggers())

    app = web.Application()
    app.router.add_get("/ready", ready)
    app.router.add_get("/config_dump", dump)
    app.router.add_get("/clusters", clusters)
    app.router.add_get("/stats", stats)
    app.router.add_get("/stats/prometheus", prometheus)
    app.router.add_route("GET", "/logging", logging_)
    app.router.add_route("POST", "/logging", logging_)
    return app


async def start_admin(server: ProxyServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the admin app on host:port (0: any free port); returns the runner and the port."""
    runner = web.AppRunner(admin_app(server), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
