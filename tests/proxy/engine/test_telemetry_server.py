"""Telemetry through a running ProxyServer on loopback: Istio's standard metrics (one
proxy, and two chained with the metadata exchange), Envoy's access logs, trace context
and Zipkin spans at a fake collector, and the admin /logging endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from proxy.engine.admin import start_admin
from proxy.engine.config import from_dict
from proxy.engine.server import ProxyServer
from tests.proxy.engine.test_server import Backend as BaseBackend

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
STATS = {"name": "istio.stats", "typed_config": {"@type": "type.googleapis.com/stats.PluginConfig"}}
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
HEX16, HEX32 = re.compile(r"[0-9a-f]{16}"), re.compile(r"[0-9a-f]{32}")


def node(workload: str, app: str, version: str, namespace: str = "default") -> dict:
    return {"id": f"sidecar~10.0.0.1~{workload}-7d4f9.{namespace}~{namespace}.svc.cluster.local",
            "cluster": f"{app}.{namespace}",
            "metadata": {"NAME": f"{workload}-7d4f9", "NAMESPACE": namespace, "WORKLOAD_NAME": workload,
                         "CLUSTER_ID": "Kubernetes",
                         "LABELS": {"app": app, "version": version, "service.istio.io/canonical-name": app,
                                    "service.istio.io/canonical-revision": version}}}


def cluster(name: str, port: int) -> dict:
    return {"name": name, "connect_timeout": "0.5s", "load_assignment": {"cluster_name": name, "endpoints": [
        {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                         "port_value": port}}}}]}]}}


def bootstrap(clusters: list[dict], *, direction: str = "INBOUND", identity: dict | None = None,
              routes: list[dict] | None = None, stats: bool = True, **hcm: object) -> dict:
    routes = routes or [{"match": {"prefix": "/"}, "route": {"cluster": clusters[0]["name"]}}]
    cfg = {"@type": HCM, "stat_prefix": "inbound" if direction == "INBOUND" else "outbound",
           "route_config": {"name": "local", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
           "http_filters": [STATS, ROUTER] if stats else [ROUTER], **hcm}
    boot = {"static_resources": {
        "listeners": [{"name": "http", "traffic_direction": direction,
                       "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": cfg}]}]}],
        "clusters": clusters}}
    if identity is not None:
        boot["node"] = identity
    return boot


class Backend(BaseBackend):
    """An aiohttp backend answering 200 and keeping the headers of each request."""

    def __init__(self) -> None:
        super().__init__("hello")
        self.seen: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(text="hello " + request.path)


class Zipkin(BaseBackend):
    """A fake Zipkin collector: keeps every span POSTed to /api/v2/spans."""

    def __init__(self) -> None:
        super().__init__("zipkin")
        self.spans: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        assert request.method == "POST" and request.path == "/api/v2/spans"
        assert request.content_type == "application/json"
        self.spans.extend(json.loads(await request.read()))
        return web.Response(status=202)

    async def wait(self, n: int, timeout: float = 4.0) -> list[dict]:
        for _ in range(int(timeout / 0.05)):
            if len(self.spans) >= n:
                break
            await asyncio.sleep(0.05)
        return self.spans


def tracing(zipkin: Zipkin, **extra: object) -> dict:
    return {"provider": {"name": "envoy.tracers.zipkin", "typed_config": {
        "@type": ZIPKIN, "collector_cluster": "zipkin", "collector_endpoint": "/api/v2/spans",
        "collector_endpoint_version": "HTTP_JSON", **extra}}}


async def start(cfg: dict) -> tuple[ProxyServer, str]:
    server = ProxyServer(from_dict(cfg))
    await server.start()
    host, port = server.addresses()[0]
    return server, f"http://{host}:{port}"


def series(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The samples of `name` whose labels include `labels`."""
    out = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()):
            out.append((got, float(m.group(3))))
    return out


async def test_istio_requests_total_counts_each_code_with_its_flags_at_the_admin_endpoint():
    async with Backend() as backend:
        routes = [{"match": {"prefix": "/down"}, "route": {"cluster": "down"}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "reviews"}}]
        # "down": nothing listens on the backend's port + a closed port -> connect failure, 503 UF
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        closed_port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        cfg = bootstrap([cluster("reviews", backend.port), cluster("down", closed_port)], routes=routes,
                        identity=node("reviews-v2", "reviews", "v2"))
        server, url = await start(cfg)
        runner, admin_port = await start_admin(server, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as s:
                for i in range(10):
                    path = "/down" if i % 10 in (2, 5, 8) else "/ok"
                    async with s.get(url + path, headers={"host": "reviews.default.svc.cluster.local:9080"}) as r:
                        await r.read()
                        assert r.status == (503 if path == "/down" else 200)
                async with s.get(f"http://127.0.0.1:{admin_port}/stats/prometheus") as r:
                    text = await r.text()
        finally:
            await runner.cleanup()
            await server.stop(1)
    assert "envoy_cluster_upstream_rq_total" in text  # Envoy's stats are still there, merged
    common = dict(reporter="destination", destination_workload="reviews-v2", destination_app="reviews",
                  destination_version="v2", destination_workload_namespace="default",
                  destination_canonical_service="reviews", destination_canonical_revision="v2",
                  destination_cluster="Kubernetes", source_workload="unknown", connection_security_policy="none",
                  destination_service="reviews.default.svc.cluster.local", request_protocol="http")
    ok = series(text, "istio_requests_total", response_code="200", response_flags="-", **common)
    failed = series(text, "istio_requests_total", response_code="503", response_flags="UF", **common)
    assert [v for _, v in ok] == [7] and [v for _, v in failed] == [3]
    durations = series(text, "istio_request_duration_milliseconds_count", **common)
    assert sorted(v for _, v in durations) == [3, 7]
    buckets = series(text, "istio_request_duration_milliseconds_bucket", response_code="200", le="+Inf")
    assert [v for _, v in buckets] == [7]


async def test_chained_proxies_report_the_peer_workload_each_side_and_strip_the_exchange():
    async with Backend() as backend:
        dest, dest_url = await start(bootstrap([cluster("inbound|9080||", backend.port)],
                                               identity=node("reviews-v2", "reviews", "v2")))
        dest_port = int(dest_url.rsplit(":", 1)[1])
        src, src_url = await start(bootstrap([cluster("outbound|9080||reviews", dest_port)], direction="OUTBOUND",
                                             identity=node("productpage-v1", "productpage", "v1")))
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(4):
                    async with s.get(src_url + "/reviews/1", headers={"host": "reviews:9080"}) as r:
                        assert r.status == 200
                        assert "x-envoy-peer-metadata" not in r.headers  # the source took the destination's
                        await r.read()
        finally:
            await src.stop(1)
            await dest.stop(1)
    assert all("x-envoy-peer-metadata" not in h and "x-envoy-peer-metadata-id" not in h for h in backend.seen)
    src_text, dest_text = src.telemetry.render_prometheus(), dest.telemetry.render_prometheus()
    by_source = series(src_text, "istio_requests_total", reporter="source", response_code="200",
                       source_workload="productpage-v1", source_app="productpage", source_version="v1",
                       destination_workload="reviews-v2", destination_app="reviews", destination_version="v2",
                       destination_service="reviews", connection_security_policy="unknown")
    by_dest = series(dest_text, "istio_requests_total", reporter="destination", response_code="200",
                     source_workload="productpage-v1", source_app="productpage", source_canonical_service="productpage",
                     destination_workload="reviews-v2", connection_security_policy="none")
    assert [v for _, v in by_source] == [4] and [v for _, v in by_dest] == [4]


async def test_access_logs_write_one_json_line_per_request_with_envoy_fields(tmp_path: Path):
    json_log, text_log = tmp_path / "access.json", tmp_path / "access.log"
    async with Backend() as backend:
        json_format = {"start_time": "%START_TIME%", "method": "%REQ(:METHOD)%",
                       "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%",
                       "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
                       "response_code_details": "%RESPONSE_CODE_DETAILS%",
                       "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
                       "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
                       "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%",
                       "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
                       "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER%",
                       "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
                       "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%", "route_name": "%ROUTE_NAME%"}
        logs = [{"name": "envoy.access_loggers.file", "typed_config": {
                    "@type": FILE_LOG, "path": str(json_log), "log_format": {"json_format": json_format}}},
                {"name": "envoy.access_loggers.file", "typed_config": {"@type": FILE_LOG, "path": str(text_log)}}]
        routes = [{"name": "api", "match": {"prefix": "/api"}, "route": {"cluster": "api"}}]
        server, url = await start(bootstrap([cluster("api", backend.port)], routes=routes, stats=False,
                                            access_log=logs))
        try:
            async with aiohttp.ClientSession() as s:
                for i in range(4):
                    async with s.post(url + f"/api/{i}", data=b"x" * 10, headers={"user-agent": "t/1"}) as r:
                        assert await r.read() == f"hello /api/{i}".encode()
                async with s.get(url + "/nowhere") as r:
                    assert r.status == 404
            for _ in range(60):  # lines are flushed within ~1 s
                if json_log.exists() and len(json_log.read_text().splitlines()) >= 5:
                    break
                await asyncio.sleep(0.05)
        finally:
            await server.stop(1)
            await server.telemetry.aclose()
    lines = [json.loads(x) for x in json_log.read_text().splitlines()]
    assert len(lines) == 5
    ok, missing = lines[:4], lines[4]
    for i, line in enumerate(ok):
        assert line["method"] == "POST" and line["path"] == f"/api/{i}" and line["protocol"] == "HTTP/1.1"
        assert line["response_code"] == 200 and line["response_flags"] == "-"
        assert line["response_code_details"] == "via_upstream"
        assert line["bytes_received"] == 10 and line["bytes_sent"] >= len(f"hello /api/{i}")
        assert isinstance(line["duration"], int) and line["upstream_service_time"].isdigit()
        assert line["user_agent"] == "t/1" and line["x_forwarded_for"] == "127.0.0.1"
        assert line["request_id"] == backend.seen[i]["x-request-id"]
        assert line["upstream_host"] == f"127.0.0.1:{backend.port}" and line["upstream_cluster"] == "api"
        assert line["authority"] == url.removeprefix("http://") and line["route_name"] == "api"
        assert line["downstream_remote_address"].startswith("127.0.0.1:")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["start_time"])
    assert len({line["request_id"] for line in lines}) == 5
    assert missing["response_code"] == 404 and missing["response_flags"] == "NR"
    assert missing["upstream_host"] is None and missing["response_code_details"] == "route_not_found"
    text = text_log.read_text().splitlines()
    assert len(text) == 5
    assert re.fullmatch(r'\[\S+\] "POST /api/0 HTTP/1.1" 200 - 10 \d+ \d+ \d+ "127.0.0.1" "t/1" "[0-9a-f-]{36}" '
                        rf'"127.0.0.1:\d+" "127.0.0.1:{backend.port}"', text[0])


async def test_a_request_without_trace_headers_starts_a_trace_that_reaches_the_backend_and_zipkin():
    async with Backend() as backend, Zipkin() as zipkin:
        cfg = bootstrap([cluster("app", backend.port), cluster("zipkin", zipkin.port)], stats=False,
                        identity=node("reviews-v2", "reviews", "v2"), tracing=tracing(zipkin))
        server, url = await start(cfg)
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(3):
                    async with s.get(url + "/x?q=1") as r:
                        assert r.status == 200
            spans = await zipkin.wait(3)
        finally:
            await server.stop(1)
            await server.telemetry.aclose()
    assert len(spans) == 3
    for seen, span in zip(backend.seen, sorted(spans, key=lambda sp: sp["timestamp"]), strict=True):
        trace, span_id = seen["x-b3-traceid"], seen["x-b3-spanid"]
        assert HEX16.fullmatch(trace) and HEX16.fullmatch(span_id) and seen["x-b3-sampled"] == "1"
        assert "x-b3-parentspanid" not in seen
        assert seen["traceparent"] == f"00-{trace.rjust(32, '0')}-{span_id}-01"
        assert span["traceId"] == trace and span["id"] == span_id and "parentId" not in span
        assert span["kind"] == "SERVER" and span["localEndpoint"]["serviceName"] == "reviews.default"
        tags = span["tags"]
        assert tags["http.method"] == "GET" and tags["http.status_code"] == "200"
        assert tags["http.url"].endswith("/x?q=1") and tags["upstream_cluster"] == "app"
        assert tags["guid:x-request-id"] == seen["x-request-id"] and tags["response_flags"] == "-"
        assert tags["node_id"].startswith("sidecar~") and span["duration"] >= 1
    assert len({sp["traceId"] for sp in spans}) == 3


@pytest.mark.parametrize("incoming", [
    pytest.param({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, id="traceparent"),
    pytest.param({"x-b3-traceid": "0af7651916cd43dd8448eb211c80319c", "x-b3-spanid": "b7ad6b7169203331",
                  "x-b3-sampled": "1"}, id="b3"),
])
async def test_an_outbound_proxy_continues_the_incoming_trace_with_a_child_span(incoming: dict):
    async with Backend() as backend, Zipkin() as zipkin:
        cfg = bootstrap([cluster("app", backend.port), cluster("zipkin", zipkin.port)], stats=False,
                        direction="OUTBOUND", tracing=tracing(zipkin))
        server, url = await start(cfg)
        try:
            async with aiohttp.ClientSession() as s, s.get(url + "/", headers=incoming) as r:
                assert r.status == 200
            spans = await zipkin.wait(1)
        finally:
            await server.stop(1)
            await server.telemetry.aclose()
    seen = backend.seen[0]
    assert seen["x-b3-traceid"] == "0af7651916cd43dd8448eb211c80319c"
    assert seen["x-b3-parentspanid"] == "b7ad6b7169203331"
    new_span = seen["x-b3-spanid"]
    assert HEX16.fullmatch(new_span) and new_span != "b7ad6b7169203331"
    assert seen["traceparent"] == f"00-0af7651916cd43dd8448eb211c80319c-{new_span}-01"
    [span] = spans
    assert (span["traceId"], span["id"], span["parentId"], span["kind"]) == (
        "0af7651916cd43dd8448eb211c80319c", new_span, "b7ad6b7169203331", "CLIENT")


async def test_two_chained_proxies_emit_one_span_per_hop_in_one_trace():
    async with Backend() as backend, Zipkin() as zipkin:
        dest, dest_url = await start(bootstrap([cluster("app", backend.port), cluster("zipkin", zipkin.port)],
                                               identity=node("reviews-v2", "reviews", "v2"), tracing=tracing(zipkin)))
        dest_port = int(dest_url.rsplit(":", 1)[1])
        src, src_url = await start(bootstrap([cluster("reviews", dest_port), cluster("zipkin", zipkin.port)],
                                             direction="OUTBOUND", identity=node("productpage-v1", "productpage", "v1"),
                                             tracing=tracing(zipkin)))
        try:
            async with aiohttp.ClientSession() as s, s.get(src_url + "/r") as r:
                assert r.status == 200
            spans = await zipkin.wait(2)
        finally:
            await src.stop(1)
            await dest.stop(1)
            await src.telemetry.aclose()
            await dest.telemetry.aclose()
    assert len(spans) == 2
    by_kind = {sp["kind"]: sp for sp in spans}
    client, server_span = by_kind["CLIENT"], by_kind["SERVER"]
    assert client["traceId"] == server_span["traceId"] == backend.seen[0]["x-b3-traceid"]
    # Zipkin's shared span context (Envoy's default): the SERVER side shares the CLIENT's span id
    assert server_span["id"] == client["id"] and server_span.get("shared") is True
    assert client["localEndpoint"]["serviceName"] == "productpage.default"


async def test_random_sampling_zero_propagates_an_unsampled_decision_and_sends_no_span():
    async with Backend() as backend, Zipkin() as zipkin:
        cfg = bootstrap([cluster("app", backend.port), cluster("zipkin", zipkin.port)], stats=False,
                        tracing={**tracing(zipkin), "random_sampling": {"value": 0}})
        server, url = await start(cfg)
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(5):
                    async with s.get(url + "/") as r:
                        assert r.status == 200
        finally:
            await server.stop(1)
            await server.telemetry.aclose()
    assert [h["x-b3-sampled"] for h in backend.seen] == ["0"] * 5
    assert all(h["traceparent"].endswith("-00") for h in backend.seen)
    assert zipkin.spans == []


async def test_admin_logging_lists_and_changes_engine_log_levels():
    server = ProxyServer(from_dict(bootstrap([cluster("app", 1)], stats=False)))
    runner, port = await start_admin(server, "127.0.0.1", 0)
    names = ("proxy.engine", "proxy.engine.flow", "proxy.engine.server")
    saved = {n: logging.getLogger(n).level for n in names}
    base = f"http://127.0.0.1:{port}/logging"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(base) as r:
                text = await r.text()
                assert r.status == 200 and text.startswith("active loggers:\n") and "\n  flow: " in text
            async with s.post(base + "?level=debug") as r:
                assert "  flow: debug" in await r.text() and "  server: debug" in await r.text()
            assert logging.getLogger("proxy.engine.flow").getEffectiveLevel() == logging.DEBUG
            async with s.post(base + "?flow=error") as r:
                text = await r.text()
                assert "  flow: error" in text and "  server: debug" in text
            async with s.post(base + "?paths=server:warning,flow:trace") as r:
                text = await r.text()
                assert "  server: warning" in text and "  flow: trace" in text
            async with s.post(base + "?flow=loud") as r:
                assert r.status == 404 and "unknown logger level" in await r.text()
            async with s.post(base + "?nosuch=info") as r:
                assert r.status == 404 and "unknown logger name" in await r.text()
            assert logging.getLogger("proxy.engine.server").level == logging.WARNING  # bad requests changed nothing
            async with s.get(base + "?level=info") as r:
                assert r.status == 405
    finally:
        await runner.cleanup()
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
        for lg in logging.root.manager.loggerDict.values():
            if isinstance(lg, logging.Logger) and lg.name.startswith("proxy.engine"):
                lg.setLevel(saved.get(lg.name, logging.NOTSET))


def test_tcp_reporter_counts_connections_and_bytes_with_the_destination_labels():
    from types import SimpleNamespace

    from proxy.engine.observe import Telemetry, tcp_reporter

    boot = from_dict(bootstrap([cluster("db", 5432)], identity=node("mysql-v1", "mysql", "v1"), stats=False))
    telemetry = Telemetry()
    reporter = tcp_reporter(boot.static_resources.listeners[0], boot, telemetry, "db")
    mtls = SimpleNamespace(mutual=True, peer_principal="spiffe://cluster.local/ns/default/sa/reviews")
    for security in (mtls, None):
        conn = reporter.opened(security)
        conn.bytes(sent=100, received=40)
        conn.bytes(sent=5)
        conn.closed()
        conn.closed()  # once only
    text = telemetry.render_prometheus()
    common = dict(reporter="destination", destination_workload="mysql-v1", request_protocol="tcp")
    secured = dict(common, source_principal="spiffe://cluster.local/ns/default/sa/reviews",
                   connection_security_policy="mutual_tls")
    assert [v for _, v in series(text, "istio_tcp_sent_bytes_total", **secured)] == [105]
    assert [v for _, v in series(text, "istio_tcp_received_bytes_total", **secured)] == [40]
    assert [v for _, v in series(text, "istio_tcp_connections_opened_total", **common)] == [1, 1]
    assert [v for _, v in series(text, "istio_tcp_connections_closed_total", connection_security_policy="none",
                                 source_principal="unknown", **common)] == [1]
