"""The HTTP filters of the subset (envoy.extensions.filters.http.*): router, local rate
limit, fault injection and CORS. The same messages appear in a connection manager's
`http_filters` and, for local_ratelimit, fault and CORS, in a route's or virtual host's
`typed_per_filter_config` (keyed by the filter's name)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.engine.config.core import (
    FractionalPercent,
    HeaderMatcher,
    HeaderValueOption,
    RuntimeFractionalPercent,
    StringMatcher,
)
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.schema import fld


@dataclass(frozen=True, kw_only=True)
class Router:
    TYPE_URL = "envoy.extensions.filters.http.router.v3.Router"
    dynamic_stats: bool = fld(True)
    start_child_span: bool = fld(False)
    suppress_envoy_headers: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class TokenBucket:
    """Refills `tokens_per_fill` tokens every `fill_interval`, up to `max_tokens`."""

    max_tokens: int = fld(required=True, lo=1)
    tokens_per_fill: int = fld(1, lo=1)
    fill_interval: float = fld(required=True, duration=True)

    def check(self, path: str) -> None:
        if self.fill_interval < 0.05:
            raise ConfigError(f"{path}.fill_interval", "must be at least 50ms")


@dataclass(frozen=True, kw_only=True)
class HttpStatus:
    code: int = fld(required=True, lo=200, hi=599)


@dataclass(frozen=True, kw_only=True)
class LocalRateLimit:
    """`filter_enabled` / `filter_enforced` unset mean 0 %: the filter then neither
    counts nor limits (Envoy's default for safety; the seed's EnvoyFilter sets both)."""

    TYPE_URL = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
    stat_prefix: str = fld(required=True)
    status: HttpStatus | None = fld()  # unset: 429
    token_bucket: TokenBucket | None = fld()
    filter_enabled: RuntimeFractionalPercent | None = fld()
    filter_enforced: RuntimeFractionalPercent | None = fld()
    request_headers_to_add_when_not_enforced: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    response_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    local_rate_limit_per_downstream_connection: bool = fld(False)
    enable_x_ratelimit_headers: str = fld("OFF", enum=("OFF", "DRAFT_VERSION_03"))

    @property
    def status_code(self) -> int:
        """The status of a limited request: `status.code`, or 429 (also for codes < 400)."""
        return self.status.code if self.status and self.status.code >= 400 else 429


@dataclass(frozen=True, kw_only=True)
class HeaderDelay:
    """FaultDelay.HeaderDelay: the delay comes from x-envoy-fault-delay-request (ms)."""


@dataclass(frozen=True, kw_only=True)
class HeaderAbort:
    """FaultAbort.HeaderAbort: the status comes from x-envoy-fault-abort-request (or
    x-envoy-fault-abort-grpc-request)."""


@dataclass(frozen=True, kw_only=True)
class FaultDelay:
    fixed_delay: float | None = fld(duration=True)
    header_delay: HeaderDelay | None = fld()
    percentage: FractionalPercent | None = fld()  # unset: 0 %
    ONEOFS = (("fixed_delay", "header_delay"),)
    REQUIRED_ONEOFS = ONEOFS


@dataclass(frozen=True, kw_only=True)
class FaultAbort:
    http_status: int | None = fld(lo=200, hi=599)
    grpc_status: int | None = fld(lo=0)
    header_abort: HeaderAbort | None = fld()
    percentage: FractionalPercent | None = fld()  # unset: 0 %
    ONEOFS = (("http_status", "grpc_status", "header_abort"),)
    REQUIRED_ONEOFS = ONEOFS


@dataclass(frozen=True, kw_only=True)
class HTTPFault:
    TYPE_URL = "envoy.extensions.filters.http.fault.v3.HTTPFault"
    delay: FaultDelay | None = fld()
    abort: FaultAbort | None = fld()
    upstream_cluster: str = fld("")
    headers: tuple[HeaderMatcher, ...] = fld(factory=tuple)
    max_active_faults: int | None = fld(lo=0)


@dataclass(frozen=True, kw_only=True)
class Cors:
    TYPE_URL = "envoy.extensions.filters.http.cors.v3.Cors"


@dataclass(frozen=True, kw_only=True)
class CorsPolicy:
    TYPE_URL = "envoy.extensions.filters.http.cors.v3.CorsPolicy"
    allow_origin_string_match: tuple[StringMatcher, ...] = fld(factory=tuple)
    allow_methods: str = fld("")
    allow_headers: str = fld("")
    expose_headers: str = fld("")
    max_age: str = fld("")
    allow_credentials: bool | None = fld()
    filter_enabled: RuntimeFractionalPercent | None = fld()
    shadow_enabled: RuntimeFractionalPercent | None = fld()
    allow_private_network_access: bool | None = fld()


@dataclass(frozen=True, kw_only=True)
class MetricConfig:
    """stats.MetricConfig: an override of Istio's standard metrics (parsed; not run yet)."""

    dimensions: dict | None = fld()
    name: str = fld("")
    tags_to_remove: tuple[str, ...] = fld(factory=tuple)
    match: str = fld("")
    drop: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class MetricDefinition:
    name: str = fld(required=True)
    value: str = fld(required=True)
    type: str = fld("COUNTER", enum=("COUNTER", "GAUGE", "HISTOGRAM"))


@dataclass(frozen=True, kw_only=True)
class IstioStats:
    """Istio's native stats filter (`istio.stats`, typed_config `stats.PluginConfig`): the
    connection manager records Istio's standard metrics (istio_requests_total ...).
    `reporter` UNSPECIFIED follows the listener's traffic_direction (INBOUND: destination,
    else source); SERVER_GATEWAY reports as a source, as Istio's gateways do. It is an
    observer of finished requests rather than a filter in the decode chain (OBSERVER:
    filters.build skips it; observe.build runs it)."""

    TYPE_URL = "stats.PluginConfig"
    OBSERVER = True
    disable_host_header_fallback: bool = fld(False)
    tcp_reporting_duration: float = fld(15.0, duration=True)
    metrics: tuple[MetricConfig, ...] = fld(factory=tuple)
    definitions: tuple[MetricDefinition, ...] = fld(factory=tuple)
    reporter: str = fld("UNSPECIFIED", enum=("UNSPECIFIED", "SERVER_GATEWAY"))
    rescoping_duration: float = fld(86400.0, duration=True)
    scope_grace_period_duration: float = fld(15.0, duration=True)

    def check(self, path: str) -> None:
        if self.metrics:
            raise ConfigError(f"{path}.metrics", "metric overrides are not supported yet")
        if self.definitions:
            raise ConfigError(f"{path}.definitions", "custom metric definitions are not supported yet")
        if self.tcp_reporting_duration <= 0:
            raise ConfigError(f"{path}.tcp_reporting_duration", "must be greater than 0")


HTTP_FILTER_TYPES = (Router, LocalRateLimit, HTTPFault, Cors, IstioStats)
PER_ROUTE_TYPES = (LocalRateLimit, HTTPFault, CorsPolicy)
# Old configs name a filter without typed_config; these names still resolve.
WELL_KNOWN = {
    "envoy.filters.http.router": Router,
    "envoy.router": Router,
    "envoy.filters.http.cors": Cors,
}


@dataclass(frozen=True, kw_only=True)
class HttpFilter:
    name: str = fld(required=True)
    typed_config: Router | LocalRateLimit | HTTPFault | Cors | IstioStats | None = fld(
        any_of=HTTP_FILTER_TYPES)
    is_optional: bool = fld(False)
    disabled: bool = fld(False)

    def check(self, path: str) -> None:
        if self.typed_config is None:
            cls = WELL_KNOWN.get(self.name)
            if cls is None:
                raise ConfigError(f"{path}.typed_config", f"required for filter {self.name!r}")
            object.__setattr__(self, "typed_config", cls())
