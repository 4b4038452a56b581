"""A configured cluster at run time (`ClusterRuntime`): its hosts, load balancer, one
connection `Pool` per endpoint and its `cluster.<name>.*` stats. Built from the
bootstrap's `static_resources.clusters`, one per cluster per config generation."""

from __future__ import annotations

from proxy.engine.cluster import Cluster, Endpoint
from proxy.engine.config import ConfigError
from proxy.engine.config.cluster import Cluster as ClusterConfig
from proxy.engine.lb import LoadBalancer, new_load_balancer
from proxy.engine.telemetry.stats import ClusterStats, StatsStore
from proxy.engine.upstream import Pool


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


