"""A cluster's endpoints and their live state: what load balancing chooses from.

Envoy keeps one `Host` object per endpoint address and, on an EDS (or STRICT_DNS)
update, keeps the objects of endpoints that stay, so active-request counts, outlier
ejections and the ejection multiplier survive a membership change; only the weight,
locality and metadata are refreshed. `Cluster.update` does the same, keyed by
(address, port).

Which hosts the load balancer may use is `Cluster.lb_hosts()`: the healthy ones (not
ejected by outlier detection, not marked unhealthy by EDS), unless fewer than
`healthy_panic_threshold` percent of all hosts are healthy, in which case Envoy enters
*panic mode* and balances over all hosts (a half-dead cluster still gets traffic rather
than overloading the rest). Envoy's default threshold is 50 %; 0 disables panic mode.

Istio: a DestinationRule's `outlierDetection.minHealthPercent` is what istiod writes
into `common_lb_config.healthy_panic_threshold` (Istio's default 0 %, i.e. never panic:
"below it outlier detection is off and all hosts are used" is the panic behaviour seen
from Istio's side). So the config parser maps minHealthPercent 1:1 onto
`CommonLbConfig.healthy_panic_threshold`, and an Envoy config without the field gets 50.

`version` grows on every change of membership or health, so a load balancer can cache
what it builds (EDF schedules, hash rings) and rebuild only when the set changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

HEALTH_STATUSES = ("UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED")
_UNUSABLE = frozenset({"UNHEALTHY", "DRAINING", "TIMEOUT"})


@dataclass(frozen=True)
class Locality:
    """config.core.v3.Locality (Istio: the node's topology labels)."""

    region: str = ""
    zone: str = ""
    sub_zone: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One lb_endpoint of a ClusterLoadAssignment.

    address/port: endpoint.address.socket_address; load_balancing_weight (default 1,
    must be >= 1); health_status as EDS reports it; metadata: the endpoint's labels
    (Istio: the pod's labels, used for subsets; kept flat as str -> str).
    """

    address: str
    port: int
    load_balancing_weight: int = 1
    locality: Locality | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    health_status: str = "UNKNOWN"

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("endpoint.address.socket_address.address: must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"endpoint.address.socket_address.port_value: {self.port} is not a port")
        if self.load_balancing_weight < 1:
            raise ValueError(f"load_balancing_weight: {self.load_balancing_weight} must be >= 1")
        if self.health_status not in HEALTH_STATUSES:
            raise ValueError(f"health_status: {self.health_status!r} is not one of {', '.join(HEALTH_STATUSES)}")

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class CommonLbConfig:
    """config.cluster.v3.Cluster.CommonLbConfig (the part implemented).

    healthy_panic_threshold: percent, Envoy default 50; Istio writes minHealthPercent
    here (default 0 = panic mode off).
    """

    healthy_panic_threshold: float = 50.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.healthy_panic_threshold <= 100.0:
            raise ValueError(
                f"common_lb_config.healthy_panic_threshold: {self.healthy_panic_threshold} is not in 0..100"
            )


class Host:
    """An endpoint plus what the proxy learned about it; shared by LB, outlier detection, admin."""

    __slots__ = (
        "endpoint", "active_requests", "ejected", "ejected_at", "times_ejected",
        "ejection_multiplier", "last_unejected_at", "rq_total", "rq_error",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.active_requests = 0
        self.ejected = False                       # Envoy's FAILED_OUTLIER_CHECK flag
        self.ejected_at: float | None = None
        self.times_ejected = 0                     # lifetime count, for /clusters
        self.ejection_multiplier = 0               # Envoy's ejectTimeBackoff
        self.last_unejected_at: float | None = None
        self.rq_total = 0
        self.rq_error = 0

    @property
    def address(self) -> str:
        return self.endpoint.address

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def weight(self) -> int:
        return self.endpoint.load_balancing_weight

    @property
    def healthy(self) -> bool:
        return not self.ejected and self.endpoint.health_status not in _UNUSABLE

    def __repr__(self) -> str:
        return f"Host({self.address}:{self.port}, w={self.weight}, ejected={self.ejected})"


class Cluster:
    """A cluster's hosts, their state and the set load balancing may pick from."""

    def __init__(
        self, name: str, endpoints: Iterable[Endpoint] = (), *, common_lb_config: CommonLbConfig | None = None
    ) -> None:
        if not name:
            raise ValueError("cluster.name: must not be empty")
        self.name = name
        self.common_lb_config = common_lb_config or CommonLbConfig()
        self.hosts: tuple[Host, ...] = ()
        self.version = 0
        self._lb_cache: tuple[int, tuple[Host, ...], bool] | None = None
        self.update(endpoints)

    def update(self, endpoints: Iterable[Endpoint]) -> tuple[list[Host], list[Host]]:
        """Replace the endpoint list; hosts staying keep their state. Returns (added, removed)."""
        old = {h.endpoint.key: h for h in self.hosts}
        hosts: list[Host] = []
        added: list[Host] = []
        seen: set[tuple[str, int]] = set()
        for ep in endpoints:
            if ep.key in seen:
                raise ValueError(f"cluster {self.name}: endpoint {ep.address}:{ep.port} listed twice")
            seen.add(ep.key)
            host = old.get(ep.key)
            if host is None:
                host = Host(ep)
                added.append(host)
            else:
                host.endpoint = ep
            hosts.append(host)
        removed = [h for k, h in old.items() if k not in seen]
        self.hosts = tuple(hosts)
        self.changed()
        return added, removed

    def changed(self) -> None:
        """Membership or health changed: invalidates what load balancers cached."""
        self.version += 1
        self._lb_cache = None

    def healthy_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.healthy)

    def in_panic(self) -> bool:
        return self.lb_hosts()[1]

    def lb_hosts(self) -> tuple[tuple[Host, ...], bool]:
        """(hosts to balance over, panic?): healthy ones, or all of them in panic mode."""
        cache = self._lb_cache
        if cache is not None and cache[0] == self.version:
            return cache[1], cache[2]
        healthy = self.healthy_hosts()
        total = len(self.hosts)
        threshold = self.common_lb_config.healthy_panic_threshold
        panic = total > 0 and threshold > 0 and 100.0 * len(healthy) / total < threshold
        chosen = self.hosts if panic else healthy
        self._lb_cache = (self.version, chosen, panic)
        return chosen, panic
