"""Envoy's admin interface, the part a learner uses to see what the proxy does:
/ready, /config_dump, /clusters, /stats, /stats/prometheus and /logging, on
`admin.address`.

It is served by the engine's own HTTP/1.1 code (http1.py) on its own listener: off the
data path, and without a web framework in the proxy's memory. Formats follow Envoy's: /ready
answers `LIVE`, /clusters prints `cluster::host:port::stat::value` lines, /stats
`name: value` lines (`?filter=REGEX`), /config_dump the ConfigDump document.
/stats/prometheus is Envoy's stats followed by Istio's standard metrics (istio_*), as
Istio's merged endpoint serves them. /logging lists the engine's loggers and levels (GET)
and changes them (POST `?level=debug`, `?<logger>=<level>`, `?paths=a:debug,b:info`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import orjson

from proxy.engine import loggers
from proxy.engine.config import config_dump
from proxy.engine.http1 import Stream, serve
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


_TEXT = b"text/plain; charset=UTF-8"
_JSON = b"application/json"
_HELP = """admin commands are:
  /: print this help
  /clusters: upstream cluster status
  /config_dump: dump current Envoy configs
  /logging: query/change logging levels
  /ready: print server state, return 200 if LIVE, otherwise return 503
  /stats: print server stats
  /stats/prometheus: print server stats in prometheus format
"""


class AdminHandler:
    """The http1.Handler of the admin listener: one synchronous answer per request."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.started = time.time()
        self.routes: dict[str, Callable[[str, dict[str, str]], tuple[int, bytes, bytes]]] = {
            "/": self.help, "/ready": self.ready, "/config_dump": self.dump, "/clusters": self.clusters,
            "/stats": self.stats, "/stats/prometheus": self.prometheus, "/logging": self.logging}

    def __call__(self, stream: Stream) -> None:
        head = stream.head
        assert head is not None
        url = urlsplit(head.path.decode("latin-1"))
        method = head.method.decode("latin-1")
        route = self.routes.get(url.path)
        if route is None:
            status, body, ctype = 404, f"invalid path: {url.path}\n{_HELP}".encode(), _TEXT
        elif method not in ("GET", "HEAD", "POST"):
            status, body, ctype = 405, b"method not allowed\n", _TEXT
        else:
            status, body, ctype = route(method, dict(parse_qsl(url.query, keep_blank_values=True)))
        stream.local_reply(status, body, [(b"content-type", ctype), (b"cache-control", b"no-cache, max-age=0"),
                                          (b"x-content-type-options", b"nosniff")])

    def help(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        return 200, _HELP.encode(), _TEXT

    def ready(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        return 200, b"LIVE\n", _TEXT

    def dump(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        body = orjson.dumps(config_dump(self.server.bootstrap, last_updated=self.started), option=orjson.OPT_INDENT_2)
        return 200, body, _JSON

    def clusters(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        return 200, clusters_text(self.server).encode(), _TEXT

    def stats(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        try:
            text = self.server.stats.render_text(q.get("filter") or None)
        except Exception as e:  # a bad regex: Envoy answers 400 too
            return 400, f"filter: {e}\n".encode(), _TEXT
        return 200, text.encode(), _TEXT

    def prometheus(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        text = self.server.stats.render_prometheus() + self.server.telemetry.render_prometheus()
        return 200, text.encode(), b"text/plain; version=0.0.4"

    def logging(self, method: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        if q and method != "POST":
            return 405, b"This endpoint requires POST to change levels.\n", _TEXT
        try:
            loggers.change(q)
        except loggers.LoggingError as e:  # Envoy answers an invalid request with 404 and the usage
            return 404, f"{e}\n{loggers.USAGE}".encode(), _TEXT
        return 200, loggers.active_loggers().encode(), _TEXT


class AdminServer:
    """The running admin listener; `await cleanup()` closes it."""

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server

    async def cleanup(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_admin(server: ProxyServer, host: str, port: int) -> tuple[AdminServer, int]:
    """Serve the admin endpoints on host:port (0: any free port); returns it and the port."""
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(serve(AdminHandler(server)), host, port, reuse_address=True)
    return AdminServer(srv), srv.sockets[0].getsockname()[1]
