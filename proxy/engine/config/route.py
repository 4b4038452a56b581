"""Envoy's route configuration (envoy.config.route.v3): RouteConfiguration -> virtual
hosts -> routes (match -> route | redirect | direct_response). The router
(proxy.engine.router) compiles these once per configuration; here they are only data
plus the checks Envoy makes when it loads them."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.engine.config.core import (
    DataSource,
    HeaderMatcher,
    HeaderValueOption,
    QueryParameterMatcher,
    RegexMatchAndSubstitute,
    RegexMatcher,
    RuntimeFractionalPercent,
    TypedExtensionConfig,
    check_header_name,
)
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.http_filters import PER_ROUTE_TYPES, CorsPolicy, HTTPFault, LocalRateLimit
from proxy.engine.config.schema import fld

RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
    # gRPC (x-envoy-retry-grpc-on values are accepted in retry_on too)
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
})
HOST_PREDICATES = {
    "envoy.retry_host_predicates.previous_hosts":
        "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
    "envoy.retry_host_predicates.omit_canary_hosts":
        "type.googleapis.com/envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate",
}
REDIRECT_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302, "SEE_OTHER": 303, "TEMPORARY_REDIRECT": 307,
                  "PERMANENT_REDIRECT": 308}
PerFilterConfig = LocalRateLimit | HTTPFault | CorsPolicy


def _check_header_names(names: tuple[str, ...], path: str) -> None:
    for i, name in enumerate(names):
        check_header_name(name, f"{path}[{i}]")


@dataclass(frozen=True, kw_only=True)
class RouteMatch:
    prefix: str | None = fld()
    path: str | None = fld()
    safe_regex: RegexMatcher | None = fld()
    path_separated_prefix: str | None = fld()
    case_sensitive: bool = fld(True)
    runtime_fraction: RuntimeFractionalPercent | None = fld()
    headers: tuple[HeaderMatcher, ...] = fld(factory=tuple)
    query_parameters: tuple[QueryParameterMatcher, ...] = fld(factory=tuple)
    ONEOFS = (("prefix", "path", "safe_regex", "path_separated_prefix"),)
    REQUIRED_ONEOFS = ONEOFS

    def check(self, path: str) -> None:
        psp = self.path_separated_prefix
        if psp is not None and (not psp.startswith("/") or psp.endswith("/") or "?" in psp or "#" in psp):
            raise ConfigError(f"{path}.path_separated_prefix",
                              "must start with '/', not end with '/', and hold no '?' or '#'")


@dataclass(frozen=True, kw_only=True)
class RetryBackOff:
    base_interval: float = fld(required=True, duration=True)
    max_interval: float | None = fld(duration=True)  # unset: 10 x base_interval

    def check(self, path: str) -> None:
        if self.base_interval < 0.001:
            raise ConfigError(f"{path}.base_interval", "must be at least 1ms")
        if self.max_interval is not None and self.max_interval < self.base_interval:
            raise ConfigError(f"{path}.max_interval", "must not be less than base_interval")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """`retry_on` is Envoy's comma-separated list; Istio also puts plain status codes
    there ("503,reset"), which become retriable_status_codes (see `conditions`)."""

    retry_on: str = fld("")
    num_retries: int = fld(1, lo=0)
    per_try_timeout: float | None = fld(duration=True)
    per_try_idle_timeout: float | None = fld(duration=True)
    retry_host_predicate: tuple[TypedExtensionConfig, ...] = fld(factory=tuple)
    host_selection_retry_max_attempts: int = fld(1, lo=0)
    retriable_status_codes: tuple[int, ...] = fld(factory=tuple)
    retry_back_off: RetryBackOff | None = fld()
    retriable_request_headers: tuple[HeaderMatcher, ...] = fld(factory=tuple)

    def check(self, path: str) -> None:
        for item in self.conditions:
            if item not in RETRY_ON and not item.isdigit():
                raise ConfigError(f"{path}.retry_on", f"unknown retry condition {item!r}")
        for i, code in enumerate(self.retriable_status_codes):
            if not 100 <= code <= 599:
                raise ConfigError(f"{path}.retriable_status_codes[{i}]", f"{code} is not an HTTP status")
        for i, pred in enumerate(self.retry_host_predicate):
            if pred.name not in HOST_PREDICATES:
                raise ConfigError(f"{path}.retry_host_predicate[{i}].name", f"unknown predicate {pred.name!r}")
            url = (pred.typed_config or {}).get("@type", HOST_PREDICATES[pred.name])
            if url != HOST_PREDICATES[pred.name]:
                raise ConfigError(f"{path}.retry_host_predicate[{i}].typed_config.@type", f"not {pred.name}'s type")

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.retry_on.split(",") if c.strip())

    @property
    def back_off(self) -> tuple[float, float]:
        """(base, max) seconds between attempts: Envoy's 25 ms and 10 x base by default."""
        if self.retry_back_off is None:
            return 0.025, 0.25
        base = self.retry_back_off.base_interval
        return base, self.retry_back_off.max_interval if self.retry_back_off.max_interval is not None else 10 * base

    @property
    def status_codes(self) -> frozenset[int]:
        """retriable_status_codes plus any plain codes given in retry_on."""
        return frozenset(self.retriable_status_codes) | {int(c) for c in self.conditions if c.isdigit()}


@dataclass(frozen=True, kw_only=True)
class RequestMirrorPolicy:
    cluster: str = fld(required=True)
    runtime_fraction: RuntimeFractionalPercent | None = fld()  # unset: every request
    trace_sampled: bool | None = fld()


@dataclass(frozen=True, kw_only=True)
class HashHeader:
    header_name: str = fld(required=True)
    regex_rewrite: RegexMatchAndSubstitute | None = fld()


@dataclass(frozen=True, kw_only=True)
class HashCookie:
    name: str = fld(required=True)
    ttl: float | None = fld(duration=True)
    path: str = fld("")


@dataclass(frozen=True, kw_only=True)
class HashConnectionProperties:
    source_ip: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class HashQueryParameter:
    name: str = fld(required=True)


@dataclass(frozen=True, kw_only=True)
class HashPolicy:
    header: HashHeader | None = fld()
    cookie: HashCookie | None = fld()
    connection_properties: HashConnectionProperties | None = fld()
    query_parameter: HashQueryParameter | None = fld()
    terminal: bool = fld(False)
    ONEOFS = (("header", "cookie", "connection_properties", "query_parameter"),)
    REQUIRED_ONEOFS = ONEOFS


@dataclass(frozen=True, kw_only=True)
class ClusterWeight:
    name: str = fld(required=True)
    weight: int = fld(0, lo=0)
    request_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    request_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    response_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    response_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    host_rewrite_literal: str | None = fld()
    typed_per_filter_config: dict[str, PerFilterConfig] = fld(factory=dict, any_of=PER_ROUTE_TYPES)


@dataclass(frozen=True, kw_only=True)
class WeightedCluster:
    clusters: tuple[ClusterWeight, ...] = fld(required=True)
    total_weight: int | None = fld(lo=1)  # deprecated; when given it must equal the sum
    runtime_key_prefix: str = fld("")

    def check(self, path: str) -> None:
        if not self.clusters:
            raise ConfigError(f"{path}.clusters", "at least one cluster is required")
        total = sum(c.weight for c in self.clusters)
        if total == 0:
            raise ConfigError(f"{path}.clusters", "the weights sum to 0")
        if self.total_weight is not None and self.total_weight != total:
            raise ConfigError(f"{path}.total_weight", f"{self.total_weight} but the weights sum to {total}")

    @property
    def total(self) -> int:
        return sum(c.weight for c in self.clusters)


@dataclass(frozen=True, kw_only=True)
class RouteAction:
    cluster: str | None = fld()
    cluster_header: str | None = fld()
    weighted_clusters: WeightedCluster | None = fld()
    cluster_not_found_response_code: str = fld("SERVICE_UNAVAILABLE", enum=("SERVICE_UNAVAILABLE", "NOT_FOUND",
                                                                             "INTERNAL_SERVER_ERROR"))
    prefix_rewrite: str | None = fld()
    regex_rewrite: RegexMatchAndSubstitute | None = fld()
    host_rewrite_literal: str | None = fld()
    auto_host_rewrite: bool | None = fld()
    host_rewrite_header: str | None = fld()
    timeout: float = fld(15.0, duration=True)  # 0 disables
    idle_timeout: float | None = fld(duration=True)
    retry_policy: RetryPolicy | None = fld()
    request_mirror_policies: tuple[RequestMirrorPolicy, ...] = fld(factory=tuple)
    hash_policy: tuple[HashPolicy, ...] = fld(factory=tuple)
    ONEOFS = (("cluster", "cluster_header", "weighted_clusters"), ("prefix_rewrite", "regex_rewrite"),
              ("host_rewrite_literal", "auto_host_rewrite", "host_rewrite_header"))
    REQUIRED_ONEOFS = (("cluster", "cluster_header", "weighted_clusters"),)

    def check(self, path: str) -> None:
        if self.cluster == "":
            raise ConfigError(f"{path}.cluster", "may not be empty")


@dataclass(frozen=True, kw_only=True)
class RedirectAction:
    scheme_redirect: str | None = fld()
    https_redirect: bool | None = fld()
    host_redirect: str | None = fld()
    port_redirect: int | None = fld(lo=0, hi=65535)
    path_redirect: str | None = fld()
    prefix_rewrite: str | None = fld()
    regex_rewrite: RegexMatchAndSubstitute | None = fld()
    response_code: str = fld("MOVED_PERMANENTLY", enum=tuple(REDIRECT_CODES))
    strip_query: bool = fld(False)
    ONEOFS = (("scheme_redirect", "https_redirect"), ("path_redirect", "prefix_rewrite", "regex_rewrite"))

    @property
    def status(self) -> int:
        return REDIRECT_CODES[self.response_code]


@dataclass(frozen=True, kw_only=True)
class DirectResponseAction:
    status: int = fld(required=True, lo=200, hi=599)
    body: DataSource | None = fld()


@dataclass(frozen=True, kw_only=True)
class Route:
    name: str = fld("")
    match: RouteMatch = fld(required=True)
    route: RouteAction | None = fld()
    redirect: RedirectAction | None = fld()
    direct_response: DirectResponseAction | None = fld()
    request_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    request_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    response_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    response_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    typed_per_filter_config: dict[str, PerFilterConfig] = fld(factory=dict, any_of=PER_ROUTE_TYPES)
    ONEOFS = (("route", "redirect", "direct_response"),)
    REQUIRED_ONEOFS = ONEOFS

    def check(self, path: str) -> None:
        _check_header_names(self.request_headers_to_remove, f"{path}.request_headers_to_remove")
        _check_header_names(self.response_headers_to_remove, f"{path}.response_headers_to_remove")
        action = self.route or self.redirect
        if action is not None and action.prefix_rewrite is not None and self.match.safe_regex is not None:
            where = "route" if self.route else "redirect"
            raise ConfigError(f"{path}.{where}.prefix_rewrite", "cannot be used with a safe_regex match")


@dataclass(frozen=True, kw_only=True)
class VirtualHost:
    name: str = fld(required=True)
    domains: tuple[str, ...] = fld(required=True)
    routes: tuple[Route, ...] = fld(factory=tuple)
    require_tls: str = fld("NONE", enum=("NONE", "EXTERNAL_ONLY", "ALL"))
    request_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    request_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    response_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    response_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    retry_policy: RetryPolicy | None = fld()
    typed_per_filter_config: dict[str, PerFilterConfig] = fld(factory=dict, any_of=PER_ROUTE_TYPES)

    def check(self, path: str) -> None:
        if not self.domains:
            raise ConfigError(f"{path}.domains", "at least one domain is required")
        for i, domain in enumerate(self.domains):
            if not domain or (domain != "*" and "*" in domain.strip("*")) or domain == "**":
                raise ConfigError(f"{path}.domains[{i}]", f"invalid domain {domain!r}")
            if domain.startswith("*") and domain.endswith("*") and domain != "*":
                raise ConfigError(f"{path}.domains[{i}]", f"invalid domain {domain!r}: one wildcard at most")
        _check_header_names(self.request_headers_to_remove, f"{path}.request_headers_to_remove")
        _check_header_names(self.response_headers_to_remove, f"{path}.response_headers_to_remove")


@dataclass(frozen=True, kw_only=True)
class RouteConfiguration:
    name: str = fld("")
    virtual_hosts: tuple[VirtualHost, ...] = fld(factory=tuple)
    request_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    request_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    response_headers_to_add: tuple[HeaderValueOption, ...] = fld(factory=tuple)
    response_headers_to_remove: tuple[str, ...] = fld(factory=tuple)
    most_specific_header_mutations_wins: bool = fld(False)
    ignore_port_in_host_matching: bool = fld(False)
    validate_clusters: bool | None = fld()

    def check(self, path: str) -> None:
        seen: dict[str, str] = {}
        for i, vh in enumerate(self.virtual_hosts):
            for domain in vh.domains:
                key = domain.lower()
                if key in seen:
                    raise ConfigError(f"{path}.virtual_hosts[{i}].domains",
                                      f"domain {domain!r} is already in virtual host {seen[key]!r}")
                seen[key] = vh.name
        names = [vh.name for vh in self.virtual_hosts]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"{path}.virtual_hosts[{i}].name", f"duplicate virtual host name {name!r}")

    def clusters(self) -> list[tuple[str, str]]:
        """(path, cluster name) of every cluster the routes name, for cross checks."""
        out: list[tuple[str, str]] = []
        for i, vh in enumerate(self.virtual_hosts):
            for j, r in enumerate(vh.routes):
                base = f"virtual_hosts[{i}].routes[{j}].route"
                if r.route is None:
                    continue
                if r.route.cluster:
                    out.append((f"{base}.cluster", r.route.cluster))
                if r.route.weighted_clusters:
                    out += [(f"{base}.weighted_clusters.clusters[{k}].name", c.name)
                            for k, c in enumerate(r.route.weighted_clusters.clusters)]
                out += [(f"{base}.request_mirror_policies[{k}].cluster", m.cluster)
                        for k, m in enumerate(r.route.request_mirror_policies)]
        return out
