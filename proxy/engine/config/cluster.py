"""Clusters (envoy.config.cluster.v3, envoy.config.endpoint.v3): static or DNS-resolved
endpoints, the load-balancing policy, circuit-breaker thresholds, outlier detection,
upstream HTTP protocol options and TLS. Defaults are Envoy's own (1024 connections,
pending and requests, 3 retries; 5 consecutive 5xx; 10 s interval; 30 s base ejection;
10 % max ejection); Istio's larger defaults are the control plane's business."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.engine.config.core import Address, Percent, UpstreamTransportSocket
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.listener import Http1ProtocolOptions, HttpProtocolOptionsCommon
from proxy.engine.config.schema import fld

LB_POLICIES = ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV")
HEALTH_STATUSES = ("UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    address: Address = fld(required=True)
    hostname: str = fld("")


@dataclass(frozen=True, kw_only=True)
class LbEndpoint:
    endpoint: Endpoint = fld(required=True)
    health_status: str = fld("UNKNOWN", enum=HEALTH_STATUSES)
    load_balancing_weight: int = fld(1, lo=1)


@dataclass(frozen=True, kw_only=True)
class Locality:
    region: str = fld("")
    zone: str = fld("")
    sub_zone: str = fld("")


@dataclass(frozen=True, kw_only=True)
class LocalityLbEndpoints:
    locality: Locality | None = fld()
    lb_endpoints: tuple[LbEndpoint, ...] = fld(factory=tuple)
    load_balancing_weight: int | None = fld(lo=1)
    priority: int = fld(0, lo=0, hi=127)


@dataclass(frozen=True, kw_only=True)
class ClusterLoadAssignment:
    cluster_name: str = fld(required=True)
    endpoints: tuple[LocalityLbEndpoints, ...] = fld(factory=tuple)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    priority: str = fld("DEFAULT", enum=("DEFAULT", "HIGH"))
    max_connections: int = fld(1024, lo=0)
    max_pending_requests: int = fld(1024, lo=0)
    max_requests: int = fld(1024, lo=0)
    max_retries: int = fld(3, lo=0)
    max_connection_pools: int | None = fld(lo=0)
    track_remaining: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class CircuitBreakers:
    thresholds: tuple[Thresholds, ...] = fld(factory=tuple)

    def check(self, path: str) -> None:
        priorities = [t.priority for t in self.thresholds]
        for i, p in enumerate(priorities):
            if p in priorities[:i]:
                raise ConfigError(f"{path}.thresholds[{i}].priority", f"{p} given twice")

    def for_priority(self, priority: str = "DEFAULT") -> Thresholds:
        """The thresholds of a priority; Envoy's defaults when none are given."""
        for t in self.thresholds:
            if t.priority == priority:
                return t
        return Thresholds(priority=priority)


@dataclass(frozen=True, kw_only=True)
class OutlierDetection:
    consecutive_5xx: int = fld(5, lo=0)
    interval: float = fld(10.0, duration=True)
    base_ejection_time: float = fld(30.0, duration=True)
    max_ejection_time: float = fld(300.0, duration=True)
    max_ejection_time_jitter: float = fld(0.0, duration=True)
    max_ejection_percent: int = fld(10, lo=0, hi=100)
    enforcing_consecutive_5xx: int = fld(100, lo=0, hi=100)
    enforcing_success_rate: int = fld(100, lo=0, hi=100)
    success_rate_minimum_hosts: int = fld(5, lo=0)
    success_rate_request_volume: int = fld(100, lo=0)
    success_rate_stdev_factor: int = fld(1900, lo=0)
    consecutive_gateway_failure: int = fld(5, lo=0)
    enforcing_consecutive_gateway_failure: int = fld(0, lo=0, hi=100)
    split_external_local_origin_errors: bool = fld(False)
    consecutive_local_origin_failure: int = fld(5, lo=0)
    enforcing_consecutive_local_origin_failure: int = fld(100, lo=0, hi=100)
    enforcing_local_origin_success_rate: int = fld(100, lo=0, hi=100)
    failure_percentage_threshold: int = fld(85, lo=0, hi=100)
    enforcing_failure_percentage: int = fld(0, lo=0, hi=100)
    enforcing_failure_percentage_local_origin: int = fld(0, lo=0, hi=100)
    failure_percentage_minimum_hosts: int = fld(5, lo=0)
    failure_percentage_request_volume: int = fld(50, lo=0)
    successful_active_health_check_uneject_host: bool = fld(True)

    def check(self, path: str) -> None:
        if self.interval <= 0:
            raise ConfigError(f"{path}.interval", "must be greater than 0")


@dataclass(frozen=True, kw_only=True)
class CommonLbConfig:
    healthy_panic_threshold: Percent | None = fld()  # unset: 50 %


@dataclass(frozen=True, kw_only=True)
class LeastRequestLbConfig:
    choice_count: int = fld(2, lo=2)


@dataclass(frozen=True, kw_only=True)
class RingHashLbConfig:
    minimum_ring_size: int = fld(1024, lo=1, hi=8_388_608)
    maximum_ring_size: int = fld(8_388_608, lo=1, hi=8_388_608)
    hash_function: str = fld("XX_HASH", enum=("XX_HASH", "MURMUR_HASH_2"))


@dataclass(frozen=True, kw_only=True)
class MaglevLbConfig:
    table_size: int = fld(65537, lo=1, hi=5_000_011)


@dataclass(frozen=True, kw_only=True)
class ExplicitHttpConfig:
    http_protocol_options: Http1ProtocolOptions | None = fld()
    http2_protocol_options: dict | None = fld()
    ONEOFS = (("http_protocol_options", "http2_protocol_options"),)
    REQUIRED_ONEOFS = ONEOFS


@dataclass(frozen=True, kw_only=True)
class HttpProtocolOptions:
    """envoy.extensions.upstreams.http.v3.HttpProtocolOptions, given in a cluster's
    typed_extension_protocol_options under `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`."""

    TYPE_URL = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    common_http_protocol_options: HttpProtocolOptionsCommon | None = fld()
    explicit_http_config: ExplicitHttpConfig | None = fld()
    use_downstream_protocol_config: dict | None = fld()
    auto_config: dict | None = fld()
    ONEOFS = (("explicit_http_config", "use_downstream_protocol_config", "auto_config"),)


@dataclass(frozen=True, kw_only=True)
class Cluster:
    name: str = fld(required=True)
    type: str = fld("STATIC", enum=("STATIC", "STRICT_DNS", "LOGICAL_DNS"))
    connect_timeout: float = fld(5.0, duration=True)
    lb_policy: str = fld("ROUND_ROBIN", enum=LB_POLICIES)
    load_assignment: ClusterLoadAssignment | None = fld()
    circuit_breakers: CircuitBreakers | None = fld()
    outlier_detection: OutlierDetection | None = fld()
    common_lb_config: CommonLbConfig | None = fld()
    least_request_lb_config: LeastRequestLbConfig | None = fld()
    ring_hash_lb_config: RingHashLbConfig | None = fld()
    maglev_lb_config: MaglevLbConfig | None = fld()
    max_requests_per_connection: int | None = fld(lo=0)  # deprecated; see HttpProtocolOptions
    typed_extension_protocol_options: dict[str, HttpProtocolOptions] = fld(factory=dict, any_of=(HttpProtocolOptions,))
    transport_socket: UpstreamTransportSocket | None = fld()
    dns_lookup_family: str = fld("AUTO", enum=("AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"))
    dns_refresh_rate: float = fld(5.0, duration=True)
    respect_dns_ttl: bool = fld(False)
    per_connection_buffer_limit_bytes: int | None = fld(lo=0)
    ignore_health_on_host_removal: bool = fld(False)
    metadata: dict | None = fld()  # config.core.v3.Metadata; istiod: filter_metadata.istio.services

    def check(self, path: str) -> None:
        for key in self.typed_extension_protocol_options:
            if key != HttpProtocolOptions.TYPE_URL:
                raise ConfigError(f"{path}.typed_extension_protocol_options.{key}", "unknown protocol options key")
        if self.connect_timeout <= 0:
            raise ConfigError(f"{path}.connect_timeout", "must be greater than 0")
        if self.load_assignment is None:
            return
        hosts = [(f"{path}.load_assignment.endpoints[{i}].lb_endpoints[{j}].endpoint.address.socket_address",
                  e.endpoint.address.socket_address)
                 for i, group in enumerate(self.load_assignment.endpoints)
                 for j, e in enumerate(group.lb_endpoints)]
        for where, sa in hosts:
            if self.type == "STATIC" and not sa.is_ip():
                raise ConfigError(f"{where}.address", f"{sa.address!r} is not an IP address (a STATIC cluster)")
            if sa.port_value == 0:
                raise ConfigError(f"{where}.port_value", "an endpoint needs a port in 1-65535")
        if self.type == "LOGICAL_DNS" and len(hosts) != 1:
            raise ConfigError(f"{path}.load_assignment", "a LOGICAL_DNS cluster takes exactly one endpoint")

    @property
    def thresholds(self) -> Thresholds:
        return (self.circuit_breakers or CircuitBreakers()).for_priority("DEFAULT")

    @property
    def http_protocol_options(self) -> HttpProtocolOptions | None:
        return self.typed_extension_protocol_options.get(HttpProtocolOptions.TYPE_URL)

    @property
    def requests_per_connection(self) -> int:
        """The effective max_requests_per_connection; 0 means unlimited."""
        opts = self.http_protocol_options
        if opts and opts.common_http_protocol_options and \
                opts.common_http_protocol_options.max_requests_per_connection is not None:
            return opts.common_http_protocol_options.max_requests_per_connection
        return self.max_requests_per_connection or 0

    def endpoints(self) -> list[LbEndpoint]:
        """Every lb_endpoint, across localities."""
        if self.load_assignment is None:
            return []
        return [e for group in self.load_assignment.endpoints for e in group.lb_endpoints]
