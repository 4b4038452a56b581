"""The listener manager and the HTTP connection manager's request flow: what turns a
Bootstrap into sockets that route, balance, retry and time out like Envoy.

`ProxyServer(bootstrap)` binds every listener whose filter chain is an
http_connection_manager (plain TCP), builds one `Router` per connection manager and one
`ClusterRuntime` per cluster (its hosts, its load balancer, one `Pool` per endpoint, its
`cluster.<name>.*` stats). Each request is one `flow._Flow` (route, attempts, timeouts); each
cluster one `runtime.ClusterRuntime`.

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

from proxy.engine import filters, observe
from proxy.engine.config import Bootstrap, ConfigError
from proxy.engine.config.listener import HttpConnectionManager, Listener
from proxy.engine.flow import HttpConnectionManagerHandler
from proxy.engine.http1 import DownstreamConnection
from proxy.engine.runtime import ClusterRuntime
from proxy.engine.telemetry.stats import StatsStore

log = logging.getLogger("proxy.engine.server")


class _Generation:
    """One bootstrap's listeners, handlers, clusters and downstream connections."""

    def __init__(self, boot: Bootstrap, store: StatsStore, telemetry: observe.Telemetry) -> None:
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
            where = f"{path}.filter_chains[0].filters[0].typed_config"
            pre, observers = observe.build(hcms[0], lst, boot, telemetry, where)
            self.handlers.append((lst, HttpConnectionManagerHandler(
                hcms[0], port, self.clusters, store, filters=pre + filters.build(hcms[0], where, store),
                observers=observers)))

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
        for c in self.clusters.values():
            c.start()  # DNS resolution, in the running loop

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

    def __init__(self, bootstrap: Bootstrap, *, stats: StatsStore | None = None,
                 telemetry: observe.Telemetry | None = None) -> None:
        self.stats = stats or StatsStore()
        self.telemetry = telemetry or observe.Telemetry()
        self.current = _Generation(bootstrap, self.stats, self.telemetry)  # validates: ConfigError before any bind
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
        new = _Generation(bootstrap, self.stats, self.telemetry)
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
