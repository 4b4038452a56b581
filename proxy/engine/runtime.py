"""A configured cluster at run time (`ClusterRuntime`): its hosts, load balancer, one
connection `Pool` per endpoint, circuit breakers, outlier detection and its
`cluster.<name>.*` stats. Built from the bootstrap's `static_resources.clusters`, one per
cluster per config generation.

Circuit breakers are cluster-wide, as Envoy's: `max_connections` counts the connections
of every endpoint's pool (over it a request waits as pending), `max_pending_requests`
the requests waiting across the pools (over it: 503 UO), `max_requests` the requests in
flight (checked by the flow before each attempt), `max_retries` the retries waiting for
their back-off (RetryState holds the slot).

Outlier detection: the flow reports every attempt's result (`report`); the detector ejects
inline and its interval sweep (un-ejection, rate detectors) runs from a timer armed at
the first report on (a cluster never used has no timer).

STRICT_DNS / LOGICAL_DNS: each endpoint's hostname is resolved at start and every
`dns_refresh_rate`; STRICT_DNS makes one host per resolved address (hosts that stay keep
their state), LOGICAL_DNS one host, the first address. Until the first resolution ends
the cluster has no hosts (503 UH), as Envoy's cluster warming would hold the listener.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from proxy.engine.circuit import CircuitBreaker, Thresholds
from proxy.engine.cluster import Cluster, CommonLbConfig, Endpoint
from proxy.engine.config import ConfigError
from proxy.engine.config.cluster import Cluster as ClusterConfig
from proxy.engine.lb import (
    LeastRequestLbConfig,
    LoadBalancer,
    MaglevLbConfig,
    RingHashLbConfig,
    new_load_balancer,
)
from proxy.engine.outlier import LocalOrigin, OutlierDetection, OutlierDetector, OutlierEvent
from proxy.engine.telemetry.stats import ClusterStats, StatsStore
from proxy.engine.tls import cluster_tls
from proxy.engine.upstream import IDLE_TIMEOUT, Pool

log = logging.getLogger("proxy.engine.runtime")
_FAMILIES = {"V4_ONLY": socket.AF_INET, "V6_ONLY": socket.AF_INET6}


class _ClusterLimits:
    """upstream.Limits over the whole cluster (every pool's connections and waiters)."""

    __slots__ = ("rt",)

    def __init__(self, rt: ClusterRuntime) -> None:
        self.rt = rt

    def allow_connection(self, open_connections: int) -> bool:
        rt = self.rt
        n = sum(len(p.connections) + p.connecting for p in rt.pools.values())
        if n < rt.circuit.thresholds.max_connections:
            return True
        rt.circuit.upstream_cx_overflow += 1
        rt.stats.upstream_cx_overflow.value += 1
        return False

    def allow_pending(self, pending_requests: int) -> bool:
        rt = self.rt
        n = sum(len(p.pending) for p in rt.pools.values())
        if n < rt.circuit.thresholds.max_pending_requests:
            return True
        rt.circuit.upstream_rq_pending_overflow += 1
        rt.stats.upstream_rq_pending_overflow.value += 1
        return False


def _outlier_config(cfg: ClusterConfig) -> OutlierDetection | None:
    od = cfg.outlier_detection
    if od is None:
        return None
    kw = {n: getattr(od, n) for n in OutlierDetection.__dataclass_fields__ if hasattr(od, n)}
    return OutlierDetection(**kw)


def _lb(cfg: ClusterConfig, cluster: Cluster) -> LoadBalancer:
    lr = cfg.least_request_lb_config
    rh = cfg.ring_hash_lb_config
    mg = cfg.maglev_lb_config
    return new_load_balancer(
        cfg.lb_policy, cluster,
        least_request_lb_config=LeastRequestLbConfig(choice_count=lr.choice_count) if lr else None,
        ring_hash_lb_config=RingHashLbConfig(rh.minimum_ring_size, rh.maximum_ring_size) if rh else None,
        maglev_lb_config=MaglevLbConfig(mg.table_size) if mg else None)


class ClusterRuntime:
    """One configured cluster at run time: hosts, load balancer, a Pool per endpoint, stats."""

    def __init__(self, cfg: ClusterConfig, store: StatsStore, path: str) -> None:
        self.config = cfg
        self.name = cfg.name
        self.dns = cfg.type in ("STRICT_DNS", "LOGICAL_DNS")
        endpoints = [] if self.dns else [
            Endpoint(e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value,
                     e.load_balancing_weight, health_status=e.health_status) for e in cfg.endpoints()]
        panic = cfg.common_lb_config.healthy_panic_threshold if cfg.common_lb_config else None
        common = CommonLbConfig(50.0 if panic is None else panic.value)
        self.cluster = Cluster(cfg.name, endpoints, common_lb_config=common)
        try:
            self.lb: LoadBalancer = _lb(cfg, self.cluster)
            t = cfg.thresholds
            self.circuit = CircuitBreaker(Thresholds(t.max_connections, t.max_pending_requests, t.max_requests,
                                                     t.max_retries))
            od = _outlier_config(cfg)
        except ValueError as e:
            raise ConfigError(path, str(e)) from None
        self.limits = _ClusterLimits(self)
        opts = cfg.http_protocol_options
        common_opts = opts.common_http_protocol_options if opts else None
        idle = common_opts.idle_timeout if common_opts and common_opts.idle_timeout is not None else IDLE_TIMEOUT
        self._pool_args = {"connect_timeout": cfg.connect_timeout, "idle_timeout": idle or IDLE_TIMEOUT,
                           "max_requests_per_connection": cfg.requests_per_connection, "limits": self.limits}
        # transport_socket tls (UpstreamTlsContext): every pool's connects handshake with it (tls.py)
        self.tls = cluster_tls(cfg, store, path)
        self._pool_args["tls"] = self.tls
        self.pools: dict[tuple[str, int], Pool] = {e.key: self._new_pool(e.key) for e in endpoints}
        self.stats = ClusterStats(store, cfg.name)
        self.active_requests = 0
        self.outlier: OutlierDetector | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._resolver: asyncio.Task | None = None
        self.closed = False
        if od is not None:
            self.outlier = OutlierDetector(self.cluster, od, clock=self._clock, on_event=self._outlier_event)
        self._membership()

    def _new_pool(self, key: tuple[str, int]) -> Pool:
        return Pool(key, **self._pool_args)  # type: ignore[arg-type]

    @staticmethod
    def _clock() -> float:
        return asyncio.get_event_loop().time()

    def _membership(self) -> None:
        self.stats.membership_total.value = len(self.cluster.hosts)
        self.stats.membership_healthy.value = len(self.cluster.healthy_hosts())

    # -- outlier detection -------------------------------------------------------------
    def report(self, host: object, *, status: int = 0, local: LocalOrigin | None = None) -> None:
        """An attempt's result on `host`: a response status, or a local-origin event."""
        od = self.outlier
        if od is None:
            return
        if local is not None:
            od.report_local_origin(host, local)  # type: ignore[arg-type]
        else:
            od.report_http_status(host, status)  # type: ignore[arg-type]
        if self._sweep is None and not self.closed:
            self._arm()

    def _arm(self) -> None:
        assert self.outlier is not None
        loop = asyncio.get_event_loop()
        self._sweep = loop.call_at(self.outlier.next_sweep, self._tick)

    def _tick(self) -> None:
        self._sweep = None
        assert self.outlier is not None
        self.outlier.tick()
        self._membership()
        if not self.closed:
            self._arm()

    def _outlier_event(self, ev: OutlierEvent) -> None:
        self._membership()
        st = self.stats
        st.outlier_detection_ejections_active.value = sum(h.ejected for h in self.cluster.hosts)
        if ev.action == "eject":
            st.outlier_detection_ejections_enforced_total.value += 1
            st.store.counter("cluster", self.name, f"outlier_detection.ejections_enforced_{ev.detector}").value += 1
            log.info("cluster %s: eject %s (%s) for %.1fs", self.name, ev.host, ev.detector, ev.ejection_seconds)
        else:
            log.info("cluster %s: uneject %s", self.name, ev.host)

    # -- DNS clusters ------------------------------------------------------------------
    def start(self) -> None:
        """Start what runs in the background (DNS resolution); needs a running loop."""
        if self.dns and self._resolver is None:
            self._resolver = asyncio.get_running_loop().create_task(self._resolve_loop())

    async def _resolve_loop(self) -> None:
        cfg = self.config
        family = _FAMILIES.get(cfg.dns_lookup_family, socket.AF_UNSPEC)
        loop = asyncio.get_running_loop()
        while not self.closed:
            endpoints: list[Endpoint] = []
            seen: set[tuple[str, int]] = set()
            for e in cfg.endpoints():
                sa = e.endpoint.address.socket_address
                try:
                    infos = await loop.getaddrinfo(sa.address, sa.port_value, family=family, type=socket.SOCK_STREAM)
                except OSError as err:
                    log.warning("cluster %s: resolving %s: %s", self.name, sa.address, err)
                    self.stats.store.counter("cluster", self.name, "update_failure").value += 1
                    continue
                addrs = [i[4][0] for i in infos]
                if cfg.type == "LOGICAL_DNS":
                    addrs = addrs[:1]
                for a in addrs:
                    if (a, sa.port_value) not in seen:
                        seen.add((a, sa.port_value))
                        endpoints.append(Endpoint(a, sa.port_value, e.load_balancing_weight,
                                                  health_status=e.health_status))
            if self.closed:
                return
            self._set_endpoints(endpoints)
            await asyncio.sleep(cfg.dns_refresh_rate)

    def _set_endpoints(self, endpoints: list[Endpoint]) -> None:
        if {e.key for e in endpoints} == {h.endpoint.key for h in self.cluster.hosts}:
            return
        _, removed = self.cluster.update(endpoints)
        for e in endpoints:
            if e.key not in self.pools:
                self.pools[e.key] = self._new_pool(e.key)
        for h in removed:
            pool = self.pools.pop(h.endpoint.key, None)
            if pool is not None:
                pool.close()
        if self.outlier is not None:
            self.outlier.forget_removed()
        self.stats.store.counter("cluster", self.name, "membership_change").value += 1
        self._membership()

    def close(self) -> None:
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self._resolver is not None:
            self._resolver.cancel()
            self._resolver = None
        for pool in self.pools.values():
            pool.close()
