"""Listeners and their network filters (envoy.config.listener.v3,
envoy.extensions.filters.network.*): a listener's filter chains, chosen by
filter_chain_match (SNI, transport protocol, ALPN), each ending in either the HTTP
connection manager (inline route_config, http_filters, access logs, tracing, timeouts)
or tcp_proxy."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.engine.config.core import (
    Address,
    DataSource,
    DownstreamTransportSocket,
    Percent,
)
from proxy.engine.config.errors import ConfigError
from proxy.engine.config.http_filters import HttpFilter, Router
from proxy.engine.config.route import RouteConfiguration
from proxy.engine.config.schema import fld

# --- access logs (envoy.extensions.access_loggers.*) ---------------------------------


@dataclass(frozen=True, kw_only=True)
class SubstitutionFormatString:
    """A log line's format: `json_format` (an object whose string values hold
    %COMMAND% operators) or text (`text_format_source.inline_string`, or the older
    `text_format`). Unset: Envoy's default text format."""

    json_format: dict | None = fld()
    text_format: str | None = fld()
    text_format_source: DataSource | None = fld()
    omit_empty_values: bool = fld(False)
    content_type: str = fld("")
    ONEOFS = (("json_format", "text_format", "text_format_source"),)


@dataclass(frozen=True, kw_only=True)
class FileAccessLog:
    TYPE_URL = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
    path: str = fld(required=True)
    log_format: SubstitutionFormatString | None = fld()
    json_format: dict | None = fld()  # deprecated forms of log_format
    format: str | None = fld()
    ONEOFS = (("log_format", "json_format", "format"),)


@dataclass(frozen=True, kw_only=True)
class StdoutAccessLog:
    TYPE_URL = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
    log_format: SubstitutionFormatString | None = fld()


@dataclass(frozen=True, kw_only=True)
class StderrAccessLog:
    TYPE_URL = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
    log_format: SubstitutionFormatString | None = fld()


ACCESS_LOG_TYPES = (FileAccessLog, StdoutAccessLog, StderrAccessLog)


@dataclass(frozen=True, kw_only=True)
class AccessLog:
    name: str = fld("")
    typed_config: FileAccessLog | StdoutAccessLog | StderrAccessLog = fld(required=True, any_of=ACCESS_LOG_TYPES)


# --- tracing ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ZipkinConfig:
    TYPE_URL = "envoy.config.trace.v3.ZipkinConfig"
    collector_cluster: str = fld(required=True)
    collector_endpoint: str = fld(required=True)
    trace_id_128bit: bool = fld(False)
    shared_span_context: bool = fld(True)
    collector_endpoint_version: str = fld("HTTP_JSON", enum=("HTTP_JSON", "HTTP_PROTO"))
    collector_hostname: str = fld("")


@dataclass(frozen=True, kw_only=True)
class TracingProvider:
    name: str = fld("envoy.tracers.zipkin")
    typed_config: ZipkinConfig = fld(required=True, any_of=(ZipkinConfig,))


@dataclass(frozen=True, kw_only=True)
class Tracing:
    """Sampling percents: unset random_sampling is 100 % (Envoy's default)."""

    client_sampling: Percent | None = fld()
    random_sampling: Percent | None = fld()
    overall_sampling: Percent | None = fld()
    verbose: bool = fld(False)
    max_path_tag_length: int | None = fld(lo=0)
    provider: TracingProvider | None = fld()
    spawn_upstream_span: bool | None = fld()


# --- the HTTP connection manager ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HttpProtocolOptionsCommon:
    """envoy.config.core.v3.HttpProtocolOptions (the "common" options)."""

    idle_timeout: float | None = fld(duration=True)  # unset: 1 h; 0 disables
    max_connection_duration: float | None = fld(duration=True)
    max_headers_count: int | None = fld(lo=1)
    max_stream_duration: float | None = fld(duration=True)
    headers_with_underscores_action: str = fld("ALLOW", enum=("ALLOW", "REJECT_REQUEST", "DROP_HEADER"))
    max_requests_per_connection: int | None = fld(lo=0)


@dataclass(frozen=True, kw_only=True)
class Http1ProtocolOptions:
    """envoy.config.core.v3.Http1ProtocolOptions."""

    allow_absolute_url: bool | None = fld()
    accept_http_10: bool = fld(False)
    default_host_for_http_10: str = fld("")
    enable_trailers: bool = fld(False)
    allow_chunked_length: bool = fld(False)


@dataclass(frozen=True, kw_only=True)
class UpgradeConfig:
    upgrade_type: str = fld(required=True)
    enabled: bool | None = fld()


@dataclass(frozen=True, kw_only=True)
class Rds:
    config_source: dict | None = fld()
    route_config_name: str = fld("")

    def check(self, path: str) -> None:
        raise ConfigError(path, "RDS is not supported; give the routes inline in route_config")


@dataclass(frozen=True, kw_only=True)
class HttpConnectionManager:
    TYPE_URL = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    stat_prefix: str = fld(required=True)
    codec_type: str = fld("AUTO", enum=("AUTO", "HTTP1", "HTTP2", "HTTP3"))
    route_config: RouteConfiguration | None = fld()
    rds: Rds | None = fld()
    http_filters: tuple[HttpFilter, ...] = fld(factory=tuple)
    use_remote_address: bool = fld(False)
    xff_num_trusted_hops: int = fld(0, lo=0)
    skip_xff_append: bool = fld(False)
    via: str = fld("")
    generate_request_id: bool = fld(True)
    preserve_external_request_id: bool = fld(False)
    always_set_request_id_in_response: bool = fld(False)
    access_log: tuple[AccessLog, ...] = fld(factory=tuple)
    tracing: Tracing | None = fld()
    request_timeout: float = fld(0.0, duration=True)  # 0: off
    request_headers_timeout: float = fld(0.0, duration=True)
    stream_idle_timeout: float = fld(300.0, duration=True)
    drain_timeout: float = fld(5.0, duration=True)
    delayed_close_timeout: float = fld(1.0, duration=True)
    common_http_protocol_options: HttpProtocolOptionsCommon | None = fld()
    http_protocol_options: Http1ProtocolOptions | None = fld()
    upgrade_configs: tuple[UpgradeConfig, ...] = fld(factory=tuple)
    server_name: str = fld("")
    server_header_transformation: str = fld("OVERWRITE", enum=("OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"))
    normalize_path: bool | None = fld()
    merge_slashes: bool = fld(False)
    forward_client_cert_details: str = fld("SANITIZE", enum=("SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD",
                                                            "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"))
    ONEOFS = (("route_config", "rds"),)
    REQUIRED_ONEOFS = ONEOFS

    def check(self, path: str) -> None:
        if not self.http_filters:
            raise ConfigError(f"{path}.http_filters", "the last HTTP filter must be envoy.filters.http.router")
        for i, f in enumerate(self.http_filters):
            terminal = isinstance(f.typed_config, Router)
            last = i == len(self.http_filters) - 1
            if terminal != last:
                why = "the router must be the last HTTP filter" if terminal else \
                    "the last HTTP filter must be envoy.filters.http.router"
                raise ConfigError(f"{path}.http_filters[{i}]", why)


# --- tcp_proxy ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TcpClusterWeight:
    name: str = fld(required=True)
    weight: int = fld(required=True, lo=1)


@dataclass(frozen=True, kw_only=True)
class TcpWeightedCluster:
    clusters: tuple[TcpClusterWeight, ...] = fld(required=True)

    def check(self, path: str) -> None:
        if not self.clusters:
            raise ConfigError(f"{path}.clusters", "at least one cluster is required")


@dataclass(frozen=True, kw_only=True)
class TcpProxy:
    TYPE_URL = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
    stat_prefix: str = fld(required=True)
    cluster: str | None = fld()
    weighted_clusters: TcpWeightedCluster | None = fld()
    idle_timeout: float = fld(3600.0, duration=True)  # 0 disables
    max_connect_attempts: int = fld(1, lo=1)
    access_log: tuple[AccessLog, ...] = fld(factory=tuple)
    ONEOFS = (("cluster", "weighted_clusters"),)
    REQUIRED_ONEOFS = ONEOFS


NETWORK_FILTER_TYPES = (HttpConnectionManager, TcpProxy)


@dataclass(frozen=True, kw_only=True)
class Filter:
    name: str = fld(required=True)
    typed_config: HttpConnectionManager | TcpProxy = fld(required=True, any_of=NETWORK_FILTER_TYPES)


# --- listeners -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FilterChainMatch:
    server_names: tuple[str, ...] = fld(factory=tuple)
    transport_protocol: str = fld("")  # "", "raw_buffer" or "tls"
    application_protocols: tuple[str, ...] = fld(factory=tuple)
    destination_port: int | None = fld(lo=1, hi=65535)

    def check(self, path: str) -> None:
        if self.transport_protocol not in ("", "raw_buffer", "tls"):
            raise ConfigError(f"{path}.transport_protocol", f"{self.transport_protocol!r} is not raw_buffer or tls")


@dataclass(frozen=True, kw_only=True)
class FilterChain:
    name: str = fld("")
    filter_chain_match: FilterChainMatch | None = fld()
    filters: tuple[Filter, ...] = fld(required=True)
    transport_socket: DownstreamTransportSocket | None = fld()
    transport_socket_connect_timeout: float | None = fld(duration=True)

    def check(self, path: str) -> None:
        if not self.filters:
            raise ConfigError(f"{path}.filters", "a filter chain needs a terminal network filter")
        for i, f in enumerate(self.filters[:-1]):
            raise ConfigError(f"{path}.filters[{i}]", f"{f.name!r} is terminal and must be the last filter")


@dataclass(frozen=True, kw_only=True)
class TlsInspector:
    TYPE_URL = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
    enable_ja3_fingerprinting: bool | None = fld()


@dataclass(frozen=True, kw_only=True)
class HttpInspector:
    TYPE_URL = "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"


LISTENER_FILTER_NAMES = {"envoy.filters.listener.tls_inspector": TlsInspector,
                         "envoy.filters.listener.http_inspector": HttpInspector}


@dataclass(frozen=True, kw_only=True)
class ListenerFilter:
    name: str = fld(required=True)
    typed_config: TlsInspector | HttpInspector | None = fld(any_of=(TlsInspector, HttpInspector))

    def check(self, path: str) -> None:
        if self.typed_config is None:
            cls = LISTENER_FILTER_NAMES.get(self.name)
            if cls is None:
                raise ConfigError(f"{path}.name", f"unknown listener filter {self.name!r}")
            object.__setattr__(self, "typed_config", cls())


@dataclass(frozen=True, kw_only=True)
class Listener:
    name: str = fld("")
    address: Address = fld(required=True)
    filter_chains: tuple[FilterChain, ...] = fld(factory=tuple)
    default_filter_chain: FilterChain | None = fld()
    listener_filters: tuple[ListenerFilter, ...] = fld(factory=tuple)
    listener_filters_timeout: float = fld(15.0, duration=True)
    continue_on_listener_filters_timeout: bool = fld(False)
    per_connection_buffer_limit_bytes: int | None = fld(lo=0)
    traffic_direction: str = fld("UNSPECIFIED", enum=("UNSPECIFIED", "INBOUND", "OUTBOUND"))
    drain_type: str = fld("DEFAULT", enum=("DEFAULT", "MODIFY_ONLY"))

    def check(self, path: str) -> None:
        if not self.filter_chains and self.default_filter_chain is None:
            raise ConfigError(f"{path}.filter_chains", "a listener needs at least one filter chain")
        needs_inspector = any(fc.filter_chain_match and (fc.filter_chain_match.server_names or
                                                         fc.filter_chain_match.transport_protocol == "tls")
                              for fc in self.filter_chains)
        if needs_inspector and not any(isinstance(f.typed_config, TlsInspector) for f in self.listener_filters):
            raise ConfigError(f"{path}.listener_filters",
                              "filter_chain_match on server_names or transport_protocol needs the tls_inspector")
        matches = [fc.filter_chain_match or FilterChainMatch() for fc in self.filter_chains]
        for i, m in enumerate(matches):
            if m in matches[:i]:
                raise ConfigError(f"{path}.filter_chains[{i}].filter_chain_match",
                                  "the same match as an earlier filter chain")


def _narrow(chains: list[FilterChain], keep) -> list[FilterChain]:
    """Envoy's per-criterion rule: the chains that match this criterion specifically
    (by `keep`, which returns a rank; higher is more specific, None is no match) if
    any, else the chains that do not set it (rank 0)."""
    ranked = [(keep(fc.filter_chain_match or FilterChainMatch()), fc) for fc in chains]
    ranked = [(r, fc) for r, fc in ranked if r is not None]
    if not ranked:
        return []
    best = max(r for r, _ in ranked)
    return [fc for r, fc in ranked if r == best]


def select_filter_chain(listener: Listener, *, server_name: str = "", transport_protocol: str = "raw_buffer",
                        application_protocols: tuple[str, ...] = (), destination_port: int = 0) -> FilterChain | None:
    """The filter chain a new connection takes, by Envoy's order of criteria:
    destination_port, server_names (exact, then the longest `*.` wildcard), transport
    protocol, then application protocols (ALPN); at each step a chain that sets the
    criterion and matches beats one that leaves it unset. No match: the
    default_filter_chain, or None (Envoy closes the connection)."""
    sni = server_name.lower()

    def port(m: FilterChainMatch) -> int | None:
        if m.destination_port is None:
            return 0
        return 1 if m.destination_port == destination_port else None

    def names(m: FilterChainMatch) -> int | None:
        if not m.server_names:
            return 0
        best = None
        for n in m.server_names:
            n = n.lower()
            if n == sni:
                return 1_000_000
            if n.startswith("*.") and sni.endswith(n[1:]) and len(sni) > len(n) - 1:
                best = max(best or 0, len(n))
        return best

    def transport(m: FilterChainMatch) -> int | None:
        if not m.transport_protocol:
            return 0
        return 1 if m.transport_protocol == transport_protocol else None

    def alpn(m: FilterChainMatch) -> int | None:
        if not m.application_protocols:
            return 0
        return 1 if set(m.application_protocols) & set(application_protocols) else None

    chains = list(listener.filter_chains)
    for keep in (port, names, transport, alpn):
        chains = _narrow(chains, keep)
    return chains[0] if chains else listener.default_filter_chain
