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
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson

from proxy.engine import loggers
from proxy.engine.config import config_dump
from proxy.engine.http1 import Handler, Stream, serve
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


def request(stream: Stream) -> tuple[str, str, dict[str, str]]:
    """(method, path, query parameters) of an admin request."""
    head = stream.head
    assert head is not None
    url = urlsplit(head.path.decode("latin-1"))
    return head.method.decode("latin-1"), url.path, dict(parse_qsl(url.query, keep_blank_values=True))


def not_found(path: str) -> tuple[int, bytes, bytes]:
    return 404, f"invalid path: {path}\n{_HELP}".encode(), _TEXT


def reply(stream: Stream, status: int, body: bytes, ctype: bytes) -> None:
    """Answer with one content-type (Stream.local_reply would add text/plain as a second)."""
    if stream.done or stream.conn.closed:  # the client left while a (parent's) answer was gathered
        return
    stream.respond_head(status, [(b"content-type", ctype), (b"cache-control", b"no-cache, max-age=0"),
                                 (b"x-content-type-options", b"nosniff"), (b"server", b"envoy")],
                        content_length=len(body))
    stream.respond_data(body)
    stream.respond_end()


class AdminHandler:
    """The http1.Handler of the admin listener: one synchronous answer per request."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.started = time.time()
        self.routes: dict[str, Callable[[str, dict[str, str]], tuple[int, bytes, bytes]]] = {
            "/": self.help, "/ready": self.ready, "/config_dump": self.dump, "/clusters": self.clusters,
            "/stats": self.stats, "/stats/prometheus": self.prometheus, "/logging": self.logging}

    def __call__(self, stream: Stream) -> None:
        method, path, q = request(stream)
        route = self.routes.get(path)
        if route is None:
            reply(stream, *not_found(path))
        elif method not in ("GET", "HEAD", "POST"):
            reply(stream, 405, b"method not allowed\n", _TEXT)
        else:
            reply(stream, *route(method, q))

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


async def start_admin(server: ProxyServer | Handler, host: str, port: int) -> tuple[AdminServer, int]:
    """Serve the admin endpoints of `server` (or a handler: workers.SupervisorAdmin) on
    host:port (0: any free port); returns it and the port."""
    handler = AdminHandler(server) if isinstance(server, ProxyServer) else server
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(serve(handler), host, port, reuse_address=True)
    return AdminServer(srv), srv.sockets[0].getsockname()[1]


async def start_admin_unix(server: ProxyServer, path: str) -> AdminServer:
    """A worker's admin, for its parent only: a unix socket in the parent's private directory."""
    srv = await asyncio.get_running_loop().create_unix_server(serve(AdminHandler(server)), path)
    return AdminServer(srv)


# -- the parent's admin with --concurrency N: workers' answers merged -----------------------

class Workers(Protocol):
    """What SupervisorAdmin needs of workers.Supervisor."""

    def state(self) -> str: ...

    async def fan_out(self, method: str, target: str) -> list[tuple[int, bytes]]: ...


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eEn") else int(text)


def _show(v: int | float) -> str:
    return str(v) if isinstance(v, int) or not v.is_integer() else str(int(v))


def merge_stats_text(bodies: list[bytes]) -> bytes:
    """Envoy's /stats is process-wide: each `name: value` summed over the workers."""
    total: dict[str, int | float] = {}
    for body in bodies:
        for line in body.decode().splitlines():
            name, _, value = line.rpartition(": ")
            if name:
                total[name] = total.get(name, 0) + _number(value)
    return "".join(f"{n}: {_show(v)}\n" for n, v in sorted(total.items())).encode()


def merge_prometheus(bodies: list[bytes]) -> bytes:
    """Each series (`name{labels}`) summed over the workers, by family, in first-seen order;
    counters, gauges and histogram buckets, sums and counts are all sums of the workers'."""
    families: dict[str, tuple[list[str], dict[str, int | float]]] = {}
    for body in bodies:
        comments: list[str] = []
        samples: dict[str, int | float] | None = None
        for line in body.decode().splitlines():
            if line.startswith("#"):
                if samples is not None:  # a new family starts
                    comments, samples = [], None
                comments.append(line)
                if line.startswith("# TYPE "):
                    family = families.setdefault(line.split()[2], (comments, {}))
                    samples = family[1]
            elif line and samples is not None:
                series, _, value = line.rpartition(" ")
                samples[series] = samples.get(series, 0) + _number(value)
    out = []
    for comments, samples in families.values():
        out += comments
        out += [f"{s} {_show(v)}" for s, v in samples.items()]
    return ("\n".join(out) + "\n").encode() if out else b""


_HOST_SUMS = frozenset(("cx_active", "cx_connect_fail", "cx_total", "rq_active", "rq_error", "rq_total",
                        "times_ejected"))


def merge_clusters(bodies: list[bytes]) -> bytes:
    """/clusters over the workers: per-host counters summed, a host unhealthy in any worker
    shown so, the rest (thresholds, weights: the same config) as the first worker says."""
    merged: dict[str, str] = {}
    for body in bodies:
        for line in body.decode().splitlines():
            key, _, value = line.rpartition("::")
            stat = key.rpartition("::")[2]
            if key not in merged:
                merged[key] = value
            elif stat in _HOST_SUMS:
                merged[key] = str(int(merged[key]) + int(value))
            elif stat == "health_flags" and value != "healthy":
                merged[key] = value
    return "".join(f"{k}::{v}\n" for k, v in merged.items()).encode()


class SupervisorAdmin:
    """The admin of `mkp proxy --concurrency N`'s parent: /stats, /stats/prometheus and
    /clusters merged from every worker's private admin, /logging applied to the parent and
    every worker, /config_dump from a worker (what is being served), /ready LIVE only when
    every worker is up. Answers are gathered in a task, so http1's handler returns at once."""

    _MERGE = {"/stats": merge_stats_text, "/stats/prometheus": merge_prometheus, "/clusters": merge_clusters}
    _CTYPE = {"/stats/prometheus": b"text/plain; version=0.0.4", "/config_dump": _JSON}

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, stream: Stream) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, stream: Stream) -> None:
        method, path, q = request(stream)
        assert stream.head is not None
        target = stream.head.path.decode("latin-1")
        if path not in ("/", "/ready", "/logging", "/config_dump", *self._MERGE):
            return reply(stream, *not_found(path))
        if method not in ("GET", "HEAD", "POST"):
            return reply(stream, 405, b"method not allowed\n", _TEXT)
        if path == "/":
            return reply(stream, 200, _HELP.encode(), _TEXT)
        if path == "/ready":
            state = self.workers.state()
            return reply(stream, 200 if state == "LIVE" else 503, f"{state}\n".encode(), _TEXT)
        if path == "/logging":
            return reply(stream, *await self._logging(method, target, q))
        answers = await self.workers.fan_out(method, target)
        if not answers:
            return reply(stream, 503, b"no worker is serving\n", _TEXT)
        failed = next(((s, b) for s, b in answers if s != 200), None)
        if failed is not None:  # a bad ?filter= regex: every worker says the same
            return reply(stream, failed[0], failed[1], _TEXT)
        merge = self._MERGE.get(path)
        body = merge([b for _, b in answers]) if merge is not None else answers[0][1]
        reply(stream, 200, body, self._CTYPE.get(path, _TEXT))

    async def _logging(self, method: str, target: str, q: dict[str, str]) -> tuple[int, bytes, bytes]:
        if q and method != "POST":
            return 405, b"This endpoint requires POST to change levels.\n", _TEXT
        try:
            loggers.change(q)
        except loggers.LoggingError as e:
            return 404, f"{e}\n{loggers.USAGE}".encode(), _TEXT
        if q:
            for status, body in await self.workers.fan_out(method, target):
                if status != 200:
                    return status, body, _TEXT
        return 200, loggers.active_loggers().encode(), _TEXT
