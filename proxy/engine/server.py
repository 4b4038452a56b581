"""The listener manager: what turns a Bootstrap into sockets that route, balance, retry
and time out like Envoy, or relay TCP.

`ProxyServer(bootstrap)` builds each listener's filter chains (listener.py): an
http_connection_manager chain gets one `HttpConnectionManagerHandler` (its Router, HTTP
filters, observers), a tcp_proxy chain one `tcp.TcpProxyFilter`; a chain with a
DownstreamTlsContext serves TLS (SIMPLE or, with require_client_certificate, MUTUAL;
its SAN matchers checked), several chains are chosen per connection as Envoy's
filter_chain_match does (PERMISSIVE and STRICT inbound listeners). One `ClusterRuntime`
per cluster (hosts, load balancer, a `Pool` per endpoint, upstream TLS, stats). Each
request is one `flow._Flow`.

`swap(new_bootstrap)` builds a new generation (listeners bound with SO_REUSEPORT next to
the old ones, then the old listeners closed), and drains the old generation's
connections: requests under way finish on the old clusters, new ones see the new config;
tcp_proxy connections go on until they end or `stop` closes them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any

from proxy.engine import filters, observe
from proxy.engine.config import Bootstrap, ConfigError
from proxy.engine.config.listener import FilterChain, HttpConnectionManager, Listener, TcpProxy
from proxy.engine.flow import HttpConnectionManagerHandler
from proxy.engine.listener import ChainRuntime, ListenerRuntime, chain_store, http_protocol
from proxy.engine.runtime import ClusterRuntime
from proxy.engine.tcp import IstioTcpObserver, TcpProxyFilter, TcpProxySession
from proxy.engine.telemetry.stats import StatsStore
from proxy.engine.tls import PLAINTEXT, ConnectionSecurity

log = logging.getLogger("proxy.engine.server")


class _Generation:
    """One bootstrap's listeners, handlers, clusters and downstream connections."""

    def __init__(self, boot: Bootstrap, store: StatsStore, telemetry: observe.Telemetry, *,
                 certificate_check_interval: float = 1.0) -> None:
        self.boot = boot
        self.store = store
        self.telemetry = telemetry
        self.check_interval = certificate_check_interval
        self.clusters: dict[str, ClusterRuntime] = {}
        self.handlers: list[tuple[Listener, HttpConnectionManagerHandler]] = []
        self.listeners: list[ListenerRuntime] = []
        # HTTP/1.1 and HTTP/2 connections (and ones whose first bytes have not yet told which)
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.tcp_sessions: weakref.WeakSet[TcpProxySession] = weakref.WeakSet()
        for i, c in enumerate(boot.static_resources.clusters):
            self.clusters[c.name] = ClusterRuntime(c, store, f"static_resources.clusters[{i}]")
        for i, lst in enumerate(boot.static_resources.listeners):
            path = f"static_resources.listeners[{i}]"
            chains = {id(fc): self._chain(lst, fc, f"{path}.filter_chains[{j}]")
                      for j, fc in enumerate(lst.filter_chains)}
            if lst.default_filter_chain is not None:
                chains[id(lst.default_filter_chain)] = self._chain(lst, lst.default_filter_chain,
                                                                   f"{path}.default_filter_chain")
            self.listeners.append(ListenerRuntime(lst, chains, store))

    def _chain(self, lst: Listener, chain: FilterChain, path: str) -> ChainRuntime:
        if len(chain.filters) != 1:
            raise ConfigError(f"{path}.filters", "exactly one (terminal) network filter is supported")
        cfg = chain.filters[0].typed_config
        where = f"{path}.filters[0].typed_config"
        store = chain_store(chain, path, http=isinstance(cfg, HttpConnectionManager),
                            check_interval=self.check_interval)
        if isinstance(cfg, HttpConnectionManager):
            port = lst.address.socket_address.port_value
            pre, observers = observe.build(cfg, lst, self.boot, self.telemetry, where)
            handler = HttpConnectionManagerHandler(
                cfg, port, self.clusters, self.store, filters=pre + filters.build(cfg, where, self.store),
                observers=observers)
            if store is not None:
                handler.scheme = b"https"
            self.handlers.append((lst, handler))
            return ChainRuntime(chain, store, self._http_factory(handler), handler)
        if isinstance(cfg, TcpProxy):
            tcp = TcpProxyFilter(cfg, self.clusters, self.store)
            names = [c.name for c in cfg.weighted_clusters.clusters] if cfg.weighted_clusters else [cfg.cluster or ""]
            tcp.observers.append(IstioTcpObserver(
                {n: observe.tcp_reporter(lst, self.boot, self.telemetry, n) for n in names}))
            if cfg.access_log:
                tcp.observers.append(observe.TcpAccessLog(cfg, self.telemetry, where))
            return ChainRuntime(chain, store, self._tcp_factory(tcp), tcp)
        raise ConfigError(where, f"network filter {chain.filters[0].name!r} is not supported")

    def _http_factory(self, handler: HttpConnectionManagerHandler) -> Callable[[ConnectionSecurity],
                                                                               asyncio.Protocol]:
        st = handler.stats

        def closed(conn: object) -> None:
            st.downstream_cx_active.value -= 1
            st.downstream_cx_destroy.value += 1

        def make(security: ConnectionSecurity = PLAINTEXT) -> asyncio.Protocol:
            st.downstream_cx_total.value += 1
            st.downstream_cx_active.value += 1
            if security is not PLAINTEXT:
                st.downstream_cx_ssl_total.value += 1
            # HTTP/1.1 or HTTP/2 by codec_type, ALPN or the preface (listener.http_protocol)
            return http_protocol(handler, security, on_close=closed, track=self.connections.add)
        return make

    def _tcp_factory(self, f: TcpProxyFilter) -> Callable[[ConnectionSecurity], TcpProxySession]:
        def make(security: ConnectionSecurity = PLAINTEXT) -> TcpProxySession:
            session = f(security)
            self.tcp_sessions.add(session)
            return session
        return make

    async def bind(self) -> None:
        try:
            for lst in self.listeners:
                await lst.bind()
        except BaseException:
            self.close_listeners()
            raise
        for c in self.clusters.values():
            c.start()  # DNS resolution, in the running loop

    def close_listeners(self) -> None:
        for lst in self.listeners:
            lst.close()

    def drain(self) -> None:
        self.close_listeners()
        for conn in list(self.connections):
            conn.drain()
        for c in self.clusters.values():
            c.close()

    def idle(self) -> bool:
        return not any(c.streams for c in self.connections if not c.closed) and \
            not any(not s.closed for s in self.tcp_sessions)

    def close_connections(self) -> None:
        for conn in list(self.connections):
            if conn.transport is not None and not conn.closed:
                conn.transport.close()
        for s in list(self.tcp_sessions):
            s.abort()


class ProxyServer:
    """Serves a Bootstrap: `await start()`, `await swap(new)`, `await stop()`."""

    def __init__(self, bootstrap: Bootstrap, *, stats: StatsStore | None = None,
                 telemetry: observe.Telemetry | None = None, certificate_check_interval: float = 1.0) -> None:
        """`certificate_check_interval`: how often (at most) TLS contexts look for rotated files."""
        self.stats = stats or StatsStore()
        self.telemetry = telemetry or observe.Telemetry()
        self.check_interval = certificate_check_interval
        self.current = self._generation(bootstrap)  # validates: ConfigError before any bind
        self._old: list[_Generation] = []

    def _generation(self, bootstrap: Bootstrap) -> _Generation:
        return _Generation(bootstrap, self.stats, self.telemetry, certificate_check_interval=self.check_interval)

    @property
    def bootstrap(self) -> Bootstrap:
        return self.current.boot

    @property
    def clusters(self) -> dict[str, ClusterRuntime]:
        return self.current.clusters

    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of each listener, in config order (port 0 -> the real one)."""
        return [lst.address() for lst in self.current.listeners]

    async def start(self) -> None:
        await self.current.bind()

    async def swap(self, bootstrap: Bootstrap) -> None:
        """Serve `bootstrap` from now on; the old generation drains. A bad bootstrap raises
        (ConfigError, OSError) and the old one keeps serving."""
        new = self._generation(bootstrap)
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
            g.close_connections()
        await self.telemetry.aclose()  # the last spans and access log lines
