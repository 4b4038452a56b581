"""Every way a bootstrap is refused: one ConfigError whose message names the full path."""

from __future__ import annotations

import pytest

from proxy.engine.config import ConfigError, from_dict

L0 = "static_resources.listeners[0]"
HCMP = f"{L0}.filter_chains[0].filters[0].typed_config"
VH0 = f"{HCMP}.route_config.virtual_hosts[0]"
R0 = f"{VH0}.routes[0]"


def lis(b):
    return b["static_resources"]["listeners"][0]


def hcm(b):
    return lis(b)["filter_chains"][0]["filters"][0]["typed_config"]


def vh(b):
    return hcm(b)["route_config"]["virtual_hosts"][0]


def route(b):
    return vh(b)["routes"][0]


def cluster(b, i=0):
    return b["static_resources"]["clusters"][i]


def sa(b, i=0):
    return cluster(b, i)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]


CASES = [
    pytest.param(lambda b: b.update(stats_sinks=[]), "stats_sinks", "unknown field", id="unknown-top-level"),
    pytest.param(lambda b: cluster(b, 1).update(outlier_detection={"consecutive_5xxx": 3}),
                 "static_resources.clusters[1].outlier_detection.consecutive_5xxx", "unknown field",
                 id="unknown-nested-field"),
    pytest.param(lambda b: cluster(b).update(connect_timeout="5s", connectTimeout="1s"),
                 "static_resources.clusters[0].connectTimeout", "given twice", id="snake-and-camel"),
    pytest.param(lambda b: cluster(b).update(type="EDS"), "static_resources.clusters[0].type", "not one of",
                 id="unsupported-cluster-type"),
    pytest.param(lambda b: cluster(b).update(lb_policy="FASTEST"), "static_resources.clusters[0].lb_policy",
                 "not one of", id="bad-enum"),
    pytest.param(lambda b: cluster(b).update(connect_timeout="5 seconds"), "static_resources.clusters[0]"
                 ".connect_timeout", "invalid duration", id="bad-duration"),
    pytest.param(lambda b: cluster(b).update(connect_timeout="-1s"), "static_resources.clusters[0].connect_timeout",
                 "negative", id="negative-duration"),
    pytest.param(lambda b: cluster(b).update(connect_timeout="0s"), "static_resources.clusters[0].connect_timeout",
                 "greater than 0", id="zero-connect-timeout"),
    pytest.param(lambda b: cluster(b, 1).update(name="web"), "static_resources.clusters[1].name",
                 "duplicate cluster name", id="duplicate-cluster"),
    pytest.param(lambda b: b["static_resources"]["listeners"].append({**lis(b), "address": {
        "socket_address": {"address": "127.0.0.1", "port_value": 8081}}}), "static_resources.listeners[1].name",
                 "duplicate listener name", id="duplicate-listener"),
    pytest.param(lambda b: b["static_resources"]["listeners"].append({**lis(b), "name": "other"}),
                 "static_resources.listeners[1].address", "duplicate listener address", id="duplicate-address"),
    pytest.param(lambda b: lis(b)["address"]["socket_address"].update(port_value=70000),
                 f"{L0}.address.socket_address.port_value", "out of range", id="port-out-of-range"),
    pytest.param(lambda b: lis(b)["address"]["socket_address"].update(port_value="80"),
                 f"{L0}.address.socket_address.port_value", None, id="port-as-string-is-fine"),
    pytest.param(lambda b: lis(b)["address"]["socket_address"].update(port_value="eighty"),
                 f"{L0}.address.socket_address.port_value", "expected a number", id="port-not-a-number"),
    pytest.param(lambda b: sa(b).update(port_value=0), "static_resources.clusters[0].load_assignment.endpoints[0]"
                 ".lb_endpoints[0].endpoint.address.socket_address.port_value", "needs a port", id="endpoint-port-0"),
    pytest.param(lambda b: sa(b).update(address="web.local"), "static_resources.clusters[0].load_assignment"
                 ".endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address", "not an IP",
                 id="static-needs-ip"),
    pytest.param(lambda b: cluster(b, 1).update(type="LOGICAL_DNS") or cluster(b, 1)["load_assignment"]["endpoints"]
                 .append(cluster(b, 1)["load_assignment"]["endpoints"][0]), "static_resources.clusters[1]"
                 ".load_assignment", "exactly one endpoint", id="logical-dns-one-endpoint"),
    pytest.param(lambda b: cluster(b).update(circuit_breakers={"thresholds": [{"max_connections": -1}]}),
                 "static_resources.clusters[0].circuit_breakers.thresholds[0].max_connections", "out of range",
                 id="negative-threshold"),
    pytest.param(lambda b: cluster(b).update(circuit_breakers={"thresholds": [{}, {"priority": "DEFAULT"}]}),
                 "static_resources.clusters[0].circuit_breakers.thresholds[1].priority", "given twice",
                 id="duplicate-priority"),
    pytest.param(lambda b: cluster(b).update(outlier_detection={"max_ejection_percent": 101}),
                 "static_resources.clusters[0].outlier_detection.max_ejection_percent", "out of range",
                 id="ejection-percent"),
    pytest.param(lambda b: cluster(b).update(typed_extension_protocol_options={"envoy.foo": {}}),
                 "static_resources.clusters[0].typed_extension_protocol_options.envoy.foo.@type", "required",
                 id="protocol-options-untyped"),
    pytest.param(lambda b: cluster(b).update(transport_socket={"name": "tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"}}),
                 "static_resources.clusters[0].transport_socket.typed_config.@type", "unknown or unsupported type",
                 id="downstream-tls-on-cluster"),
    pytest.param(lambda b: route(b)["route"].update(cluster="nope"), f"{R0}.route.cluster", "unknown cluster 'nope'",
                 id="route-to-unknown-cluster"),
    pytest.param(lambda b: route(b)["route"].update(cluster=None, weighted_clusters={"clusters": [
        {"name": "web", "weight": 0}, {"name": "api", "weight": 0}]}),
                 f"{R0}.route.weighted_clusters.clusters", "sum to 0", id="weights-sum-to-0"),
    pytest.param(lambda b: route(b)["route"].update(cluster=None, weighted_clusters={"clusters": [
        {"name": "web", "weight": 1}, {"name": "gone", "weight": 1}]}),
                 f"{R0}.route.weighted_clusters.clusters[1].name", "unknown cluster", id="weighted-unknown-cluster"),
    pytest.param(lambda b: route(b)["route"].update(cluster=None, weighted_clusters={"total_weight": 10, "clusters": [
        {"name": "web", "weight": 1}]}), f"{R0}.route.weighted_clusters.total_weight", "sum to 1",
                 id="total-weight-mismatch"),
    pytest.param(lambda b: route(b)["route"].update(cluster=None), f"{R0}.route", "one of cluster", id="no-cluster"),
    pytest.param(lambda b: route(b)["route"].update(weighted_clusters={"clusters": [{"name": "web", "weight": 1}]}),
                 f"{R0}.route.weighted_clusters", "only one of", id="cluster-and-weighted"),
    pytest.param(lambda b: route(b).update(redirect={"path_redirect": "/x"}), f"{R0}.redirect", "only one of",
                 id="route-and-redirect"),
    pytest.param(lambda b: route(b).pop("route"), R0, "one of route, redirect, direct_response", id="no-action"),
    pytest.param(lambda b: route(b).update(match={}), f"{R0}.match", "one of prefix", id="empty-match"),
    pytest.param(lambda b: route(b).update(match={"prefix": "/", "path": "/a"}), f"{R0}.match.path", "only one of",
                 id="two-path-specifiers"),
    pytest.param(lambda b: route(b).update(match={"safe_regex": {"regex": "(unclosed"}}),
                 f"{R0}.match.safe_regex.regex", "invalid regex", id="bad-regex"),
    pytest.param(lambda b: route(b).update(match={"path_separated_prefix": "/api/"}),
                 f"{R0}.match.path_separated_prefix", "not end with", id="path-separated-prefix-slash"),
    pytest.param(lambda b: route(b).update(match={"safe_regex": {"regex": "/a.*"}}) or route(b)["route"].update(
        prefix_rewrite="/b"), f"{R0}.route.prefix_rewrite", "safe_regex", id="prefix-rewrite-with-regex"),
    pytest.param(lambda b: route(b)["match"].update(headers=[{"name": "x-canary", "exact_match": True}]),
                 f"{R0}.match.headers[0].exact_match", "quote it", id="unquoted-yaml-bool"),
    pytest.param(lambda b: route(b)["match"].update(headers=[{"name": "bad header", "present_match": True}]),
                 f"{R0}.match.headers[0].name", "invalid header name", id="bad-header-name"),
    pytest.param(lambda b: route(b)["match"].update(headers=[{"name": "a", "exact_match": "1", "prefix_match": "1"}]),
                 f"{R0}.match.headers[0].prefix_match", "only one of", id="two-header-specifiers"),
    pytest.param(lambda b: route(b)["match"].update(query_parameters=[{"name": "a", "string_match": {}}]),
                 f"{R0}.match.query_parameters[0].string_match", "one of exact", id="empty-string-match"),
    pytest.param(lambda b: route(b)["route"].update(retry_policy={"retry_on": "5xx,sometimes"}),
                 f"{R0}.route.retry_policy.retry_on", "unknown retry condition 'sometimes'", id="bad-retry-on"),
    pytest.param(lambda b: route(b)["route"].update(retry_policy={"retry_host_predicate": [{"name": "envoy.x"}]}),
                 f"{R0}.route.retry_policy.retry_host_predicate[0].name", "unknown predicate", id="bad-predicate"),
    pytest.param(lambda b: route(b)["route"].update(retry_policy={"retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate"}}]}),
                 f"{R0}.route.retry_policy.retry_host_predicate[0].typed_config.@type", "previous_hosts",
                 id="predicate-type-mismatch"),
    pytest.param(lambda b: route(b).update(match={"safe_regex": {"google_re2": {}, "regex": "/[a-z]+"}}),
                 f"{R0}.match", None, id="google-re2-accepted"),
    pytest.param(lambda b: route(b).update(match={"safe_regex": {"google_re2": [], "regex": "/"}}),
                 f"{R0}.match.safe_regex.google_re2", "expected an object", id="google-re2-not-object"),
    pytest.param(lambda b: route(b)["route"].update(retry_policy={"retry_back_off": {"base_interval": "1s",
                                                                                      "max_interval": "0.5s"}}),
                 f"{R0}.route.retry_policy.retry_back_off.max_interval", "base_interval", id="backoff-order"),
    pytest.param(lambda b: route(b)["route"].update(retry_policy={"num_retries": -1}),
                 f"{R0}.route.retry_policy.num_retries", "out of range", id="negative-retries"),
    pytest.param(lambda b: route(b)["route"].update(request_mirror_policies=[{"cluster": "shadow"}]),
                 f"{R0}.route.request_mirror_policies[0].cluster", "unknown cluster", id="mirror-unknown-cluster"),
    pytest.param(lambda b: route(b).update(route=None, redirect={"response_code": "MOVED"}),
                 f"{R0}.redirect.response_code", "not one of", id="bad-redirect-code"),
    pytest.param(lambda b: route(b).update(route=None, direct_response={"status": 99}),
                 f"{R0}.direct_response.status", "out of range", id="bad-direct-status"),
    pytest.param(lambda b: route(b).update(typed_per_filter_config={"envoy.filters.http.buffer": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"}}),
                 f"{R0}.typed_per_filter_config.envoy.filters.http.buffer.@type", "unknown or unsupported",
                 id="unknown-per-route-filter"),
    pytest.param(lambda b: vh(b).update(domains=[]), f"{VH0}.domains", "at least one domain", id="no-domains"),
    pytest.param(lambda b: vh(b).update(domains=["a.*.com"]), f"{VH0}.domains[0]", "invalid domain",
                 id="middle-wildcard"),
    pytest.param(lambda b: hcm(b)["route_config"]["virtual_hosts"].append({"name": "b", "domains": ["*"]}),
                 f"{HCMP}.route_config.virtual_hosts[1].domains", "already in virtual host 'all'",
                 id="duplicate-domain"),
    pytest.param(lambda b: vh(b).update(request_headers_to_add=[{"header": {"key": "x"}, "append": True,
                                                                  "append_action": "ADD_IF_ABSENT"}]),
                 f"{VH0}.request_headers_to_add[0].append_action", "only one of", id="append-and-action"),
    pytest.param(lambda b: hcm(b).update(http_filters=[]), f"{HCMP}.http_filters", "router", id="no-router"),
    pytest.param(lambda b: hcm(b)["http_filters"].append({"name": "envoy.filters.http.cors", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}),
                 f"{HCMP}.http_filters[0]", "router must be the last", id="router-not-last"),
    pytest.param(lambda b: hcm(b)["http_filters"].insert(0, {"name": "envoy.filters.http.lua"}),
                 f"{HCMP}.http_filters[0].typed_config", "required for filter", id="unknown-filter-by-name"),
    pytest.param(lambda b: hcm(b)["http_filters"].insert(0, {"name": "lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}}),
                 f"{HCMP}.http_filters[0].typed_config.@type", "unknown or unsupported type", id="unknown-filter-type"),
    pytest.param(lambda b: hcm(b)["http_filters"].insert(0, {"name": "rl", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "rl", "token_bucket": {"max_tokens": 0, "fill_interval": "1s"}}}),
                 f"{HCMP}.http_filters[0].typed_config.token_bucket.max_tokens", "out of range", id="zero-tokens"),
    pytest.param(lambda b: hcm(b)["http_filters"].insert(0, {"name": "f", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "abort": {"percentage": {"numerator": 5}}}}),
                 f"{HCMP}.http_filters[0].typed_config.abort", "one of http_status", id="abort-without-status"),
    pytest.param(lambda b: hcm(b).pop("stat_prefix"), f"{HCMP}.stat_prefix", "required field missing",
                 id="missing-stat-prefix"),
    pytest.param(lambda b: hcm(b).update(codec_type="SPDY"), f"{HCMP}.codec_type", "not one of", id="bad-codec"),
    pytest.param(lambda b: hcm(b).pop("route_config") and hcm(b).update(rds={"route_config_name": "x"}),
                 f"{HCMP}.rds", "RDS is not supported", id="rds"),
    pytest.param(lambda b: hcm(b).update(access_log=[{"name": "x", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"}}]),
                 f"{HCMP}.access_log[0].typed_config.@type", "unknown or unsupported", id="grpc-access-log"),
    pytest.param(lambda b: hcm(b).update(tracing={"provider": {"typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig", "collector_cluster": "zipkin",
        "collector_endpoint": "/api/v2/spans"}}}),
                 f"{HCMP}.tracing.provider.typed_config.collector_cluster", "unknown cluster", id="tracing-cluster"),
    pytest.param(lambda b: lis(b)["filter_chains"][0]["filters"][0].update(typed_config={
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "t",
        "cluster": "nope"}), f"{L0}.filter_chains[0].filters[0].typed_config.cluster", "unknown cluster",
                 id="tcp-proxy-unknown-cluster"),
    pytest.param(lambda b: lis(b)["filter_chains"][0]["filters"][0].update(typed_config={
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "t"}),
                 f"{L0}.filter_chains[0].filters[0].typed_config", "one of cluster", id="tcp-proxy-no-cluster"),
    pytest.param(lambda b: lis(b)["filter_chains"][0]["filters"][0].pop("typed_config"),
                 f"{L0}.filter_chains[0].filters[0].typed_config", "required", id="network-filter-untyped"),
    pytest.param(lambda b: lis(b)["filter_chains"][0]["filters"].append(lis(b)["filter_chains"][0]["filters"][0]),
                 f"{L0}.filter_chains[0].filters[0]", "terminal", id="two-terminal-filters"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(filter_chain_match={"server_names": ["a.com"]}),
                 f"{L0}.listener_filters", "tls_inspector", id="sni-without-inspector"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(filter_chain_match={"transport_protocol": "quic"}),
                 f"{L0}.filter_chains[0].filter_chain_match.transport_protocol", "raw_buffer or tls",
                 id="bad-transport-protocol"),
    pytest.param(lambda b: lis(b)["filter_chains"].append(lis(b)["filter_chains"][0]),
                 f"{L0}.filter_chains[1].filter_chain_match", "same match", id="duplicate-chain-match"),
    pytest.param(lambda b: lis(b).update(filter_chains=[]), f"{L0}.filter_chains", "at least one",
                 id="no-filter-chains"),
    pytest.param(lambda b: lis(b).update(listener_filters=[{"name": "envoy.filters.listener.proxy_protocol"}]),
                 f"{L0}.listener_filters[0].name", "unknown listener filter", id="unknown-listener-filter"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(transport_socket={"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"}}),
                 f"{L0}.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates",
                 "needs a certificate", id="server-tls-without-cert"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(transport_socket={"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": True, "common_tls_context": {"tls_certificates": [
            {"certificate_chain": {"filename": "c.pem"}, "private_key": {"filename": "k.pem"}}]}}}),
                 f"{L0}.filter_chains[0].transport_socket.typed_config.common_tls_context.validation_context"
                 ".trusted_ca", "trusted_ca", id="mtls-without-ca"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(transport_socket={"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": "c.pem"}}]}}}),
                 f"{L0}.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0]"
                 ".private_key", "required field missing", id="cert-without-key"),
    pytest.param(lambda b: lis(b)["filter_chains"][0].update(transport_socket={"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": "c.pem"},
                                                     "private_key": {"filename": "k.pem"}}],
                               "validation_context": {"match_typed_subject_alt_names": [
                                   {"san_type": "SPIFFE", "matcher": {"exact": "x"}}]}}}}),
                 f"{L0}.filter_chains[0].transport_socket.typed_config.common_tls_context.validation_context"
                 ".match_typed_subject_alt_names[0].san_type", "not one of", id="bad-san-type"),
    pytest.param(lambda b: b.update(static_resources=[]), "static_resources", "expected an object",
                 id="wrong-shape"),
    pytest.param(lambda b: b["static_resources"].update(listeners={}), "static_resources.listeners",
                 "expected a list", id="list-expected"),
]


@pytest.mark.parametrize(("mutate", "path", "message"), CASES)
def test_bad_config_names_the_path(base, mutate, path, message):
    mutate(base)
    if message is None:
        from_dict(base)
        return
    with pytest.raises(ConfigError) as err:
        from_dict(base)
    assert err.value.path == path, str(err.value)
    assert message in err.value.reason
    assert str(err.value).startswith(path + ": ")


def test_the_base_config_is_valid(base):
    boot = from_dict(base)
    assert [c.name for c in boot.clusters] == ["web", "api"]


def test_validate_clusters_false_skips_the_cluster_check(base):
    hcm(base)["route_config"]["validate_clusters"] = False
    route(base)["route"]["cluster"] = "made-later"
    assert from_dict(base).listeners[0].name == "http"
