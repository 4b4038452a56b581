"""The listener manager and the HTTP connection manager's request flow: what turns a
Bootstrap into sockets that route, balance, retry and time out like Envoy.

`ProxyServer(bootstrap)` binds every listener whose filter chain is an
http_connection_manager (plain TCP), builds one `Router` per connection manager and one
`ClusterRuntime` per cluster (its hosts, its load balancer, one `Pool` per endpoint, its
`cluster.<name>.*` stats). Each request is one `_Flow`: route -> redirect / direct
response / 404 NR, or pick a host and forward with an `Exchange`; on an error the
route's retry policy (`RetryState`) decides whether another attempt goes out (the load
balancer avoids previous hosts when the policy says so); the route timeout answers 504.

`swap(new_bootstrap)` builds a new generation (listeners bound with SO_REUSEPORT next to
the old ones, then the old listeners closed), and drains the old generation's
connections: requests under way finish on the old clusters, new ones see the new config.

Not yet: TLS listeners and tcp_proxy (refused with a ConfigError), STRICT/LOGICAL_DNS
clusters, outlier detection, circuit breakers, response header mutations, mirrors.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from proxy.engine.cluster import Cluster, Endpoint, Host
from proxy.engine.config import Bootstrap, ConfigError
from proxy.engine.config.cluster import Cluster as ClusterConfig
from proxy.engine.config.listener import HttpConnectionManager, Listener
from proxy.engine.config.route import RetryPolicy as RouteRetryPolicy
from proxy.engine.headers import request_headers
from proxy.engine.http1 import DownstreamConnection, Stream
from proxy.engine.lb import LoadBalancer, new_load_balancer
from proxy.engine.retry import Action, AttemptOutcome, Reset, RetryBackOff, RetryPolicy, RetryState
from proxy.engine.router import Request, Router, RouteResult, apply_header_mutations
from proxy.engine.telemetry.stats import ClusterStats, HttpStats, StatsStore
from proxy.engine.upstream import FAILURE_REASONS, RESET_BODY, Exchange, ExchangeReport, Pool

log = logging.getLogger("proxy.engine.server")

_RESETS = {"connect_failure": Reset.CONNECT_FAILURE, "reset": Reset.CONNECTION_TERMINATION,
           "overflow": Reset.OVERFLOW}


def retry_policy(p: RouteRetryPolicy | None) -> RetryPolicy | None:
    """The route's config RetryPolicy as retry.RetryPolicy (retriable_request_headers: not yet)."""
    if p is None:
        return None
    back_off = RetryBackOff(p.retry_back_off.base_interval, p.retry_back_off.max_interval) \
        if p.retry_back_off is not None else RetryBackOff()
    return RetryPolicy(retry_on=p.retry_on, num_retries=p.num_retries, per_try_timeout=p.per_try_timeout,
                       retriable_status_codes=p.retriable_status_codes, retry_back_off=back_off,
                       retry_host_predicate=tuple(x.name for x in p.retry_host_predicate),
                       host_selection_retry_max_attempts=p.host_selection_retry_max_attempts)


class ClusterRuntime:
    """One configured cluster at run time: hosts, load balancer, a Pool per endpoint, stats."""

    def __init__(self, cfg: ClusterConfig, store: StatsStore, path: str) -> None:
        if cfg.type != "STATIC":
            raise ConfigError(f"{path}.type", f"{cfg.type} clusters are not yet supported (STATIC only)")
        endpoints = []
        if cfg.load_assignment is not None:
            for loc in cfg.load_assignment.endpoints:
                for lbe in loc.lb_endpoints:
                    sa = lbe.endpoint.address.socket_address
                    endpoints.append(Endpoint(sa.address, sa.port_value, lbe.load_balancing_weight,
                                              health_status=lbe.health_status))
        self.name = cfg.name
        self.cluster = Cluster(cfg.name, endpoints)
        self.lb: LoadBalancer = new_load_balancer(cfg.lb_policy, self.cluster)
        self.pools: dict[tuple[str, int], Pool] = {
            e.key: Pool(e.key, connect_timeout=cfg.connect_timeout) for e in endpoints}
        self.stats = ClusterStats(store, cfg.name)
        self.stats.membership_total.value = len(self.cluster.hosts)
        self.stats.membership_healthy.value = len(self.cluster.healthy_hosts())

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


class HttpConnectionManagerHandler:
    """The http1.Handler of one listener's http_connection_manager."""

    def __init__(self, hcm: HttpConnectionManager, port: int, clusters: dict[str, ClusterRuntime],
                 store: StatsStore) -> None:
        if hcm.route_config is None:
            raise ConfigError("http_connection_manager.rds", "RDS is not yet supported: use route_config")
        self.router = Router(hcm.route_config)
        self.port = port
        self.clusters = clusters
        self.stats = HttpStats(store, hcm.stat_prefix)
        self.edge = hcm.use_remote_address

    def __call__(self, stream: Stream) -> None:
        _Flow(self, stream).start()


class _FlowExchange(Exchange):
    """An Exchange that also tells its flow when the client went away (no other callback
    reports it), so the host's active request count and the route timer are released."""

    __slots__ = ("flow",)

    def downstream_reset(self) -> None:
        super().downstream_reset()
        self.flow._downstream_reset(self)


class _Flow:
    """One downstream request through route, attempts and the route timeout."""

    __slots__ = ("h", "stream", "loop", "result", "cluster", "state", "headers", "method", "path",
                 "exchange", "timer", "retry_timer", "finished", "host")

    def __init__(self, h: HttpConnectionManagerHandler, stream: Stream) -> None:
        self.h = h
        self.stream = stream
        self.loop = stream.conn.loop
        self.exchange: Exchange | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.retry_timer: asyncio.TimerHandle | None = None
        self.finished = False
        self.host: Host | None = None

    def _host_done(self, error: bool) -> None:
        """The current attempt's host is free again (LEAST_REQUEST's count, /clusters' rq_error)."""
        host, self.host = self.host, None
        if host is not None:
            host.active_requests -= 1
            host.rq_error += error

    def _reply(self, status: int, body: bytes = b"", headers: list | None = None) -> None:
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.h.stats.response(status)
        self.stream.local_reply(status, body, headers)

    def start(self) -> None:
        head = self.stream.head
        assert head is not None
        stats = self.h.stats
        stats.downstream_rq_total.value += 1
        stats.downstream_rq_http1_total.value += 1
        hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers]
        authority = next((v for n, v in hs if n == "host"), "")
        r = self.h.router.route(Request(authority, head.path.decode("latin-1"), head.method.decode("latin-1"),
                                        hs, self.h.port, "http"))
        if r is None:
            stats.no_route.value += 1
            self._reply(404)
            return
        if r.action == "redirect":
            stats.rq_redirect.value += 1
            self._reply(r.status, b"", [(b"location", r.location.encode("latin-1"))])
            return
        if r.action == "direct_response":
            stats.rq_direct_response.value += 1
            self._reply(r.status, r.body)
            return
        self.result = r
        cluster = self.h.clusters.get(r.cluster)
        if cluster is None:
            self._reply(503)  # Envoy's cluster_not_found_response_code default (NC)
            return
        self.cluster = cluster
        out = request_headers(head.headers, remote_address=self.stream.conn.remote_address_bytes,
                              edge=self.h.edge, upgrade=head.upgrade)
        self.headers = self._mutate(out, r)
        self.method = head.method
        self.path = r.path.encode("latin-1") if r.path else head.path
        self.state = RetryState(retry_policy(r.retry_policy), clock=self.loop.time, route_timeout=r.timeout or None)
        if r.timeout:
            self.timer = self.loop.call_later(r.timeout, self._timeout)
        self._attempt()

    @staticmethod
    def _mutate(out: list, r: RouteResult) -> list:
        if not r.request_mutations and r.host is None:
            return out
        hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in out]
        hs = apply_header_mutations(hs, r.request_mutations)
        if r.host is not None:
            hs = [(n, r.host if n == "host" else v) for n, v in hs]
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in hs]

    def _gone(self) -> bool:
        return self.finished or self.stream.done or self.stream.conn.closed

    def _attempt(self) -> None:
        self.retry_timer = None
        if self._gone():
            return
        c = self.cluster
        host = c.lb.pick(self.state.pick_context())
        if host is None:
            self.state.finish()
            self._reply(503, b"no healthy upstream")  # UH
            return
        self.state.host_used(host)
        self.host = host
        host.rq_total += 1
        host.active_requests += 1
        c.stats.upstream_rq_total.value += 1
        ex = self.exchange = _FlowExchange(self.stream, c.pools[(host.address, host.port)], self.headers,
                                           method=self.method, path=self.path, on_error=self._on_error,
                                           on_complete=self._on_complete, retry_on_status=self._retry_status)
        ex.flow = self
        ex.start()

    def _retry_status(self, status: int) -> bool:
        """Claim a response for a retry only when one will go out (its body is dropped)."""
        p = self.state.policy
        return (p is not None and self.state.retries_done < p.num_retries and self.stream.retryable
                and RetryState._retriable(p, AttemptOutcome(status=status)))

    def _on_error(self, report: ExchangeReport) -> None:
        self.exchange = None
        self._host_done(True)
        if self._gone():
            return
        c = self.cluster
        if report.outcome == "status":
            c.stats.response(report.status)
            outcome = AttemptOutcome(status=report.status)
        else:
            if report.outcome == "connect_failure":
                c.stats.upstream_cx_connect_fail.value += 1
            reset = _RESETS.get(report.outcome, Reset.CONNECTION_TERMINATION)
            outcome = AttemptOutcome(reset=reset, request_sent=reset is not Reset.CONNECT_FAILURE)
        decision = self.state.decide(outcome)
        if decision.action is Action.RETRY and self.stream.retryable:
            c.stats.upstream_rq_retry.value += 1
            self.retry_timer = self.loop.call_later(decision.delay, self._attempt)
            return
        if decision.action is Action.TIMEOUT and self.timer is not None:
            return  # the route timer answers 504
        self.state.finish()
        if report.outcome == "status":
            self._reply(report.status or 503)
        else:
            extra = [(b"x-envoy-overloaded", b"true")] if report.outcome == "overflow" else []
            self._reply(503, RESET_BODY + FAILURE_REASONS.get(report.outcome, b"connection termination"), extra)

    def _on_complete(self, report: ExchangeReport) -> None:
        self.exchange = None
        self._host_done(report.outcome != "ok" or report.status >= 500)
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.state.finish()
        if report.status:
            self.cluster.stats.response(report.status)
            self.h.stats.response(report.status)

    def _downstream_reset(self, ex: Exchange) -> None:
        if self.exchange is not ex:
            return  # our own abandon (the route timeout), already accounted
        self.exchange = None
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self._host_done(False)
        self.state.finish()

    def _timeout(self) -> None:
        self.timer = None
        if self._gone():
            return
        self.cluster.stats.upstream_rq_timeout.value += 1
        self.h.stats.downstream_rq_timeout.value += 1
        if self.retry_timer is not None:
            self.retry_timer.cancel()
        ex, self.exchange = self.exchange, None
        if ex is not None:
            self._host_done(True)
            ex.downstream_reset()  # abandon the upstream attempt
        self.stream.detach()
        self.state.finish()
        if self.stream.response_started:
            self.finished = True
            self.stream.reset()
        else:
            self._reply(504, b"upstream request timeout")  # UT


class _Generation:
    """One bootstrap's listeners, handlers, clusters and downstream connections."""

    def __init__(self, boot: Bootstrap, store: StatsStore) -> None:
        self.boot = boot
        self.clusters: dict[str, ClusterRuntime] = {}
        self.handlers: list[tuple[Listener, HttpConnectionManagerHandler]] = []
        self.servers: list[asyncio.Server] = []
        self.connections: weakref.WeakSet[DownstreamConnection] = weakref.WeakSet()
        for i, c in enumerate(boot.static_resources.clusters):
            self.clusters[c.name] = ClusterRuntime(c, store, f"static_resources.clusters[{i}]")
        for i, lst in enumerate(boot.static_resources.listeners):
            path = f"static_resources.listeners[{i}]"
            chains = list(lst.filter_chains) + ([lst.default_filter_chain] if lst.default_filter_chain else [])
            if len(chains) != 1:
                raise ConfigError(f"{path}.filter_chains", "exactly one filter chain is supported yet")
            chain = chains[0]
            if chain.transport_socket is not None:
                raise ConfigError(f"{path}.filter_chains[0].transport_socket", "TLS listeners are not yet supported")
            hcms = [f.typed_config for f in chain.filters if isinstance(f.typed_config, HttpConnectionManager)]
            if len(hcms) != 1 or len(chain.filters) != 1:
                raise ConfigError(f"{path}.filter_chains[0].filters",
                                  "only one http_connection_manager is supported yet (tcp_proxy: not yet)")
            port = lst.address.socket_address.port_value
            self.handlers.append((lst, HttpConnectionManagerHandler(hcms[0], port, self.clusters, store)))

    def _factory(self, handler: HttpConnectionManagerHandler) -> Callable[[], DownstreamConnection]:
        def make() -> DownstreamConnection:
            conn = DownstreamConnection(handler)
            self.connections.add(conn)
            return conn
        return make

    async def bind(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for lst, handler in self.handlers:
                sa = lst.address.socket_address
                self.servers.append(await loop.create_server(self._factory(handler), sa.address, sa.port_value,
                                                             reuse_address=True, reuse_port=True, backlog=1024))
        except BaseException:
            self.close_listeners()
            raise

    def close_listeners(self) -> None:
        for s in self.servers:
            s.close()

    def drain(self) -> None:
        self.close_listeners()
        for conn in list(self.connections):
            conn.drain()
        for c in self.clusters.values():
            c.close()

    def idle(self) -> bool:
        return not any(c.streams for c in self.connections if not c.closed)


class ProxyServer:
    """Serves a Bootstrap: `await start()`, `await swap(new)`, `await stop()`."""

    def __init__(self, bootstrap: Bootstrap, *, stats: StatsStore | None = None) -> None:
        self.stats = stats or StatsStore()
        self.current = _Generation(bootstrap, self.stats)  # validates: ConfigError before any bind
        self._old: list[_Generation] = []

    @property
    def bootstrap(self) -> Bootstrap:
        return self.current.boot

    @property
    def clusters(self) -> dict[str, ClusterRuntime]:
        return self.current.clusters

    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of each listener, in config order (port 0 -> the real one)."""
        return [s.sockets[0].getsockname()[:2] for s in self.current.servers]

    async def start(self) -> None:
        await self.current.bind()

    async def swap(self, bootstrap: Bootstrap) -> None:
        """Serve `bootstrap` from now on; the old generation drains. A bad bootstrap raises
        (ConfigError, OSError) and the old one keeps serving."""
        new = _Generation(bootstrap, self.stats)
        try:
            await new.bind()
        except BaseException:
            for c in new.clusters.values():
                c.close()
            raise
        old, self.current = self.current, new
        old.drain()
        self._old = [g for g in self._old if not g.idle()] + [old]

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Close the listeners, let requests under way finish (up to drain_timeout), close."""
        gens = [*self._old, self.current]
        for g in gens:
            g.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while loop.time() < deadline and not all(g.idle() for g in gens):
            await asyncio.sleep(0.02)
        for g in gens:
            for conn in list(g.connections):
                if conn.transport is not None and not conn.closed:
                    conn.transport.close()
