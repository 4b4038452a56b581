"""The example bootstraps load, carry Envoy's defaults, and survive the round trip
through to_dict / config_dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.engine.config import ConfigError, config_dump, from_dict, load, loads, route_configs, to_dict
from proxy.engine.config.cluster import Cluster, OutlierDetection, Thresholds
from proxy.engine.config.core import DownstreamTlsContext, UpstreamTlsContext
from proxy.engine.config.http_filters import HTTPFault, LocalRateLimit, Router
from proxy.engine.config.listener import HttpConnectionManager, StdoutAccessLog, TcpProxy
from proxy.engine.config.route import RetryPolicy, RouteAction
from proxy.engine.config.schema import format_duration, parse_duration

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "envoy"
FILES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".json"))


def hcm(boot, listener=0, chain=0) -> HttpConnectionManager:
    return boot.listeners[listener].filter_chains[chain].filters[0].typed_config


def test_there_are_examples():
    assert {"front-proxy.yaml", "canary.yaml", "mtls.json"} <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_example_round_trips_through_to_dict(name):
    boot = load(EXAMPLES / name)
    assert from_dict(to_dict(boot)) == boot
    assert from_dict(to_dict(boot, defaults=True)) == boot
    assert from_dict(json.loads(json.dumps(to_dict(boot)))) == boot


@pytest.mark.parametrize("name", FILES)
def test_config_dump_has_envoys_sections(name):
    boot = load(EXAMPLES / name)
    dump = config_dump(boot, version_info="v1", last_updated=0)
    types = [c["@type"].rsplit(".", 1)[1] for c in dump["configs"]]
    assert types == ["BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"]
    assert from_dict(dump["configs"][0]["bootstrap"]) == boot
    clusters = dump["configs"][1]["static_clusters"]
    assert [c["cluster"]["name"] for c in clusters] == [c.name for c in boot.clusters]
    assert clusters[0]["last_updated"] == "1970-01-01T00:00:00Z"
    assert len(dump["configs"][3]["static_route_configs"]) == len(route_configs(boot))
    json.dumps(dump)


def test_front_proxy_example():
    boot = load(EXAMPLES / "front-proxy.yaml")
    assert boot.admin.address.socket_address.port_value == 9901
    m = hcm(boot)
    assert m.stat_prefix == "ingress_http" and m.use_remote_address and m.codec_type == "AUTO"
    assert isinstance(m.http_filters[-1].typed_config, Router)
    log = m.access_log[0].typed_config
    assert isinstance(log, StdoutAccessLog) and log.log_format.json_format["response_flags"] == "%RESPONSE_FLAGS%"
    routes = m.route_config.virtual_hosts[0].routes
    assert routes[0].direct_response.status == 200 and routes[0].direct_response.body.inline_string == "ok\n"
    assert routes[1].redirect.https_redirect and routes[1].redirect.status == 301
    s1, s2 = boot.clusters
    assert s1.type == "STRICT_DNS" and s2.type == "STATIC"
    assert s2.connect_timeout == 0.25
    assert [e.load_balancing_weight for e in s2.endpoints()] == [1, 3]


def test_canary_example():
    boot = load(EXAMPLES / "canary.yaml")
    vh = hcm(boot).route_config.virtual_hosts[0]
    header_route, split = vh.routes
    assert header_route.match.headers[0].string_match.exact == "true"
    assert header_route.route.timeout == 0
    wc = split.route.weighted_clusters
    assert [c.weight for c in wc.clusters] == [90, 10] and wc.total == 100
    rp = split.route.retry_policy
    assert rp.back_off == (0.025, 0.25)
    assert rp.conditions == ("5xx", "reset", "connect-failure") and rp.num_retries == 3 and rp.per_try_timeout == 2
    assert vh.retry_policy.num_retries == 2
    mirror = split.route.request_mirror_policies[0]
    assert mirror.runtime_fraction.default_value.fraction == 0.25
    rl = split.typed_per_filter_config["envoy.filters.http.local_ratelimit"]
    assert isinstance(rl, LocalRateLimit)
    assert (rl.token_bucket.max_tokens, rl.token_bucket.tokens_per_fill, rl.token_bucket.fill_interval) == (10, 10, 1)
    assert rl.status_code == 429 and rl.response_headers_to_add[0].action == "OVERWRITE_IF_EXISTS_OR_ADD"
    assert isinstance(hcm(boot).http_filters[0].typed_config, HTTPFault)
    v1, v2 = boot.clusters[0], boot.clusters[1]
    assert v1.lb_policy == "LEAST_REQUEST" and v1.thresholds.max_pending_requests == 10
    assert v1.outlier_detection.consecutive_5xx == 5
    assert v2.lb_policy == "RING_HASH" and v2.requests_per_connection == 100
    assert hcm(boot).tracing.provider.typed_config.collector_cluster == "zipkin"


def test_mtls_example_from_json_with_camel_case_names():
    boot = load(EXAMPLES / "mtls.json")
    lis = boot.listeners[0]
    mtls, plain = lis.filter_chains
    assert mtls.filter_chain_match.transport_protocol == "tls"
    ctx = mtls.transport_socket.typed_config
    assert isinstance(ctx, DownstreamTlsContext) and ctx.require_client_certificate
    san = ctx.common_tls_context.validation_context.match_typed_subject_alt_names[0]
    assert san.san_type == "URI" and san.matcher.prefix == "spiffe://cluster.local/"
    assert isinstance(mtls.filters[0].typed_config, TcpProxy) and mtls.filters[0].typed_config.idle_timeout == 3600
    assert plain.filters[0].typed_config.weighted_clusters.clusters[0].weight == 1
    inbound, outbound = boot.clusters
    assert inbound.connect_timeout == 1.5  # from camelCase connectTimeout
    assert inbound.endpoints()[0].endpoint.address.socket_address.port_value == 8080
    up = outbound.transport_socket.typed_config
    assert isinstance(up, UpstreamTlsContext) and up.sni.startswith("outbound_.8080_")


def test_envoy_defaults():
    c = Cluster(name="x")
    assert (c.type, c.connect_timeout, c.lb_policy) == ("STATIC", 5.0, "ROUND_ROBIN")
    t = c.thresholds
    assert (t.max_connections, t.max_pending_requests, t.max_requests, t.max_retries) == (1024, 1024, 1024, 3)
    od = OutlierDetection()
    assert (od.consecutive_5xx, od.interval, od.base_ejection_time, od.max_ejection_percent) == (5, 10.0, 30.0, 10)
    assert (od.enforcing_consecutive_5xx, od.enforcing_consecutive_gateway_failure) == (100, 0)
    assert RouteAction(cluster="x").timeout == 15.0
    assert RetryPolicy().num_retries == 1
    assert RetryPolicy().back_off == (0.025, 0.25)
    assert from_dict({}).listeners == ()
    assert Thresholds().priority == "DEFAULT"
    m = HttpConnectionManager(stat_prefix="x")
    assert m.generate_request_id and not m.use_remote_address and m.xff_num_trusted_hops == 0
    assert m.stream_idle_timeout == 300 and m.request_timeout == 0


def test_filter_given_by_name_only_gets_its_typed_config(base):
    base["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"] = [
        {"name": "envoy.filters.http.router"}]
    boot = from_dict(base)
    assert isinstance(hcm(boot).http_filters[0].typed_config, Router)
    assert from_dict(to_dict(boot)) == boot


@pytest.mark.parametrize(("text", "seconds"), [
    ("2s", 2.0), ("0.25s", 0.25), ("1.5s", 1.5), ("0s", 0.0), ("0.000000001s", 1e-9), ("3600s", 3600.0),
    ({"seconds": 1, "nanos": 500_000_000}, 1.5), ({"nanos": 250_000_000}, 0.25),
])
def test_durations(text, seconds):
    assert parse_duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize(("seconds", "text"), [(2.0, "2s"), (0.25, "0.250s"), (1.5, "1.500s"),
                                               (0.000001, "0.000001s"), (1e-9, "0.000000001s")])
def test_durations_are_written_as_proto_json_does(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", ["2", "2ms", "1m", "s", "1.5.2s", {"minutes": 1}, 5])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ConfigError):
        parse_duration(bad, "x")


def test_loads_json_and_yaml_agree(base):
    assert loads(json.dumps(base), fmt="json") == loads(json.dumps(base))


def test_empty_file_is_an_empty_bootstrap():
    assert loads("").listeners == ()


def test_unreadable_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("admin: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)
    badj = tmp_path / "bad.json"
    badj.write_text("{'single': 1}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(badj)


def _chains_listener():
    from proxy.engine.config.listener import Listener
    from proxy.engine.config.schema import parse

    tcp = {"name": "t", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "s",
        "cluster": "c"}}
    chains = [
        {"name": "exact", "filter_chain_match": {"server_names": ["api.example.com"], "transport_protocol": "tls"}},
        {"name": "wild", "filter_chain_match": {"server_names": ["*.example.com"], "transport_protocol": "tls"}},
        {"name": "any-tls", "filter_chain_match": {"transport_protocol": "tls"}},
        {"name": "istio", "filter_chain_match": {"transport_protocol": "tls", "server_names": ["mesh.local"],
                                                 "application_protocols": ["istio"]}},
        {"name": "plain", "filter_chain_match": {"transport_protocol": "raw_buffer"}},
        {"name": "port-9000", "filter_chain_match": {"destination_port": 9000}},
    ]
    return parse(Listener, {
        "name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
        "listener_filters": [{"name": "envoy.filters.listener.tls_inspector"}],
        "filter_chains": [{**c, "filters": [tcp]} for c in chains],
    }, "listener")


@pytest.mark.parametrize(("kw", "want"), [
    ({"server_name": "api.example.com", "transport_protocol": "tls"}, "exact"),
    ({"server_name": "API.example.com", "transport_protocol": "tls"}, "exact"),
    ({"server_name": "www.example.com", "transport_protocol": "tls"}, "wild"),
    ({"server_name": "example.com", "transport_protocol": "tls"}, "any-tls"),
    ({"server_name": "", "transport_protocol": "tls"}, "any-tls"),
    ({"server_name": "mesh.local", "transport_protocol": "tls", "application_protocols": ("istio", "h2")}, "istio"),
    ({"server_name": "mesh.local", "transport_protocol": "tls", "application_protocols": ("h2",)}, None),
    ({"transport_protocol": "raw_buffer"}, "plain"),
    ({"transport_protocol": "raw_buffer", "destination_port": 9000}, "port-9000"),
])
def test_filter_chain_selection(kw, want):
    from proxy.engine.config.listener import select_filter_chain

    chain = select_filter_chain(_chains_listener(), **kw)
    assert (chain.name if chain else None) == want


SEED_RATE_LIMIT = """
name: envoy.filters.http.local_ratelimit
typed_config:
  "@type": type.googleapis.com/udpa.type.v1.TypedStruct
  type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
  value:
    stat_prefix: http_local_rate_limiter
    token_bucket:
      max_tokens: 100
      tokens_per_fill: 100
      fill_interval: 60s
    filter_enabled:
      runtime_key: local_rate_limit_enabled
      default_value:
        numerator: 100
        denominator: HUNDRED
    filter_enforced:
      runtime_key: local_rate_limit_enforced
      default_value:
        numerator: 100
        denominator: HUNDRED
    response_headers_to_add:
      - append_action: OVERWRITE_IF_EXISTS_OR_ADD
        header:
          key: x-local-rate-limit
          value: "true"
"""


def test_the_seeds_typed_struct_rate_limit_filter():
    import yaml

    from proxy.engine.config.http_filters import HttpFilter
    from proxy.engine.config.schema import dump, parse

    f = parse(HttpFilter, yaml.safe_load(SEED_RATE_LIMIT), "http_filters[0]")
    rl = f.typed_config
    assert isinstance(rl, LocalRateLimit)
    assert (rl.token_bucket.max_tokens, rl.token_bucket.fill_interval) == (100, 60.0)
    assert rl.filter_enforced.default_value.fraction == 1.0
    assert parse(HttpFilter, dump(f), "x") == f  # dumped as the plain message

    bad = yaml.safe_load(SEED_RATE_LIMIT)
    bad["typed_config"]["value"]["token_bucket"]["fill_rate"] = 1
    with pytest.raises(ConfigError) as err:
        parse(HttpFilter, bad, "http_filters[0]")
    assert err.value.path == "http_filters[0].typed_config.value.token_bucket.fill_rate"


def test_rate_limit_status_below_400_is_429():
    assert LocalRateLimit(stat_prefix="x").status_code == 429
    from proxy.engine.config.http_filters import HttpStatus
    assert LocalRateLimit(stat_prefix="x", status=HttpStatus(code=503)).status_code == 503
    assert LocalRateLimit(stat_prefix="x", status=HttpStatus(code=302)).status_code == 429


def test_retry_back_off_max_defaults_to_ten_times_base():
    from proxy.engine.config.schema import parse

    rp = parse(RetryPolicy, {"retry_back_off": {"base_interval": "0.1s"}}, "r")
    assert rp.back_off == (0.1, pytest.approx(1.0))
    rp = parse(RetryPolicy, {"retry_back_off": {"base_interval": "0.1s", "max_interval": "0.3s"}}, "r")
    assert rp.back_off == (0.1, 0.3)
