"""Istio's standard metrics and the Prometheus text format (proxy.engine.telemetry.metrics).

Microbenchmark (not a timed test; this 2-vCPU VM, CPython 3.11, uvloop not needed):
recording one request in the Istio metrics (a counter and three histograms) plus one
access log line in Envoy's default format costs about 8 µs on a quiet run (10-15 µs while
other work loads the VM): record_request ~2 µs, the text line ~2.3 µs (a JSON line ~5.4),
building the RequestRecord and LogRecord ~2 µs, the buffered write the rest. At 20,000 rps
that is ~16 % of one core. Run it with `python -m tests.proxy.engine.telemetry.test_metrics`.
"""

from __future__ import annotations

import math
import time

import pytest

from proxy.engine.telemetry.accesslog import AccessLog, AccessLogWriter, LogRecord, TextFormatter
from proxy.engine.telemetry.metrics import (
    ENVOY_DEFAULT_BUCKETS,
    HTTP_LABEL_NAMES,
    TCP_LABEL_NAMES,
    UNKNOWN_SERVICE,
    UNKNOWN_WORKLOAD,
    IstioMetrics,
    Registry,
    RequestRecord,
    Service,
    Workload,
    format_value,
)

ORDER = Workload("order-v1", "commerce", "spiffe://cluster.local/ns/commerce/sa/order", "order", "v1",
                 "order", "v1", "Kubernetes")
CART = Workload("cart-v2", "commerce", "spiffe://cluster.local/ns/commerce/sa/cart", "cart", "v2",
                "cart", "v2", "Kubernetes")
CART_SVC = Service("cart.commerce.svc.cluster.local", "cart", "commerce")


def parse(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def labels_of(**kv: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in kv.items())


@pytest.mark.parametrize("value,text", [
    (0, "0"), (1, "1"), (0.5, "0.5"), (300000, "300000"), (3600000, "3.6e+06"), (1e6, "1e+06"),
    (1234567, "1.234567e+06"), (0.0001, "0.0001"), (0.00001, "1e-05"), (2.25, "2.25"), (math.inf, "+Inf"),
])
def test_format_value_is_prometheus_go_style(value: float, text: str) -> None:
    assert format_value(value) == text


def test_istio_labels_and_buckets_are_istios() -> None:
    assert ENVOY_DEFAULT_BUCKETS[:4] == (0.5, 1, 5, 10) and ENVOY_DEFAULT_BUCKETS[-1] == 3600000
    for name in ("reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app",
                 "source_version", "source_canonical_service", "source_canonical_revision", "source_cluster",
                 "destination_workload", "destination_workload_namespace", "destination_principal",
                 "destination_app", "destination_version", "destination_service", "destination_service_name",
                 "destination_service_namespace", "destination_canonical_service",
                 "destination_canonical_revision", "destination_cluster", "request_protocol", "response_code",
                 "response_flags", "connection_security_policy", "grpc_response_status"):
        assert name in HTTP_LABEL_NAMES
    assert "response_code" not in TCP_LABEL_NAMES and "request_protocol" in TCP_LABEL_NAMES
    assert len(set(HTTP_LABEL_NAMES)) == len(HTTP_LABEL_NAMES)


def test_counters_match_the_requests_recorded_and_histograms_are_cumulative() -> None:
    m = IstioMetrics()
    for i in range(100):
        code = 503 if i % 10 == 0 else 200
        m.record_request(RequestRecord("destination", ORDER, CART, CART_SVC, code, duration_ms=i * 0.1 + 0.2,
                                       request_bytes=100, response_bytes=2000,
                                       connection_security_policy="mutual_tls",
                                       response_flags="URX" if code == 503 else "-"))
    m.record_request(RequestRecord("source", UNKNOWN_WORKLOAD, CART, UNKNOWN_SERVICE, 404, duration_ms=7000))
    got = parse(m.render())
    base = labels_of(reporter="destination", source_workload="order-v1", source_workload_namespace="commerce")
    ok = [v for k, v in got.items() if k.startswith("istio_requests_total{") and 'response_code="200"' in k]
    bad = [k for k in got if k.startswith("istio_requests_total{") and 'response_code="503"' in k]
    assert ok == [90] and len(bad) == 1 and got[bad[0]] == 10 and 'response_flags="URX"' in bad[0]
    assert base.split(",")[0] in bad[0] and 'connection_security_policy="mutual_tls"' in bad[0]
    assert 'destination_service="cart.commerce.svc.cluster.local"' in bad[0]
    # The unknown source: Istio's "unknown" everywhere it knows nothing.
    unknown = next(k for k in got if k.startswith("istio_requests_total{") and 'reporter="source"' in k)
    assert 'source_workload="unknown"' in unknown and 'destination_service="unknown"' in unknown
    assert 'connection_security_policy="unknown"' in unknown
    ok_key = next(k for k in got if k.startswith("istio_request_duration_milliseconds_count{")
                  and 'response_code="200"' in k)
    assert got[ok_key] == 90
    lab = ok_key[len("istio_request_duration_milliseconds_count"):-1]
    bucket = lambda le: got[f"istio_request_duration_milliseconds_bucket{lab},le=\"{le}\"}}"]  # noqa: E731
    durations = [i * 0.1 + 0.2 for i in range(100) if i % 10]
    for le in ENVOY_DEFAULT_BUCKETS:  # cumulative: every value <= le
        assert bucket(format_value(le)) == sum(d <= le for d in durations), le
    assert bucket("+Inf") == 90 and bucket("10") == 89  # 10.1 ms alone is above 10
    assert math.isclose(got[f"istio_request_duration_milliseconds_sum{lab}}}"],
                        sum(i * 0.1 + 0.2 for i in range(100) if i % 10), rel_tol=1e-9)
    assert got[f"istio_response_bytes_bucket{lab},le=\"1000\"}}"] == 0
    assert got[f"istio_response_bytes_bucket{lab},le=\"2500\"}}"] == 90
    assert got[f"istio_request_bytes_sum{lab}}}"] == 9000


def test_tcp_metrics_count_connections_and_bytes() -> None:
    m = IstioMetrics()
    labels = m.tcp_labels("destination", ORDER, CART, CART_SVC, connection_security_policy="mutual_tls")
    for _ in range(3):
        m.tcp_connection_opened(labels)
        m.tcp_bytes(labels, sent=10, received=5)
    m.tcp_connection_closed(labels)
    text = m.render()
    got = parse(text)
    key = lambda name: next(v for k, v in got.items() if k.startswith(name + "{"))  # noqa: E731
    assert key("istio_tcp_connections_opened_total") == 3
    assert key("istio_tcp_connections_closed_total") == 1
    assert key("istio_tcp_sent_bytes_total") == 30 and key("istio_tcp_received_bytes_total") == 15
    assert 'request_protocol="tcp"' in text and "# TYPE istio_tcp_sent_bytes_total counter" in text


def test_registry_escapes_labels_and_refuses_duplicates() -> None:
    r = Registry()
    c = r.counter("x_total", "X.", ("path",))
    c.inc(('a"b\\c\nd',), 2)
    assert 'x_total{path="a\\"b\\\\c\\nd"} 2' in r.render()
    with pytest.raises(ValueError, match="already registered"):
        r.counter("x_total", "again")
    with pytest.raises(ValueError, match="increasing"):
        r.histogram("h", "H.", buckets=(2, 1))


async def bench(n: int = 20000) -> float:
    """µs to record one request in the Istio metrics plus one access log line (inside a
    running loop, as in the proxy: the writer flushes from a thread)."""
    import tempfile

    m = IstioMetrics()
    with tempfile.NamedTemporaryFile() as f:
        writer = AccessLogWriter(f.name, buffer_bytes=1 << 20)
        log = AccessLog(TextFormatter(), writer)
        headers = {"user-agent": "wrk", "x-request-id": "0b8e5e7c-1f7a-4c1d-9a56-3f7c9d1e2b3a"}
        t0 = time.perf_counter()
        for i in range(n):
            m.record_request(RequestRecord("destination", ORDER, CART, CART_SVC, 200, duration_ms=0.4 + i % 7,
                                           request_bytes=0, response_bytes=1024,
                                           connection_security_policy="mutual_tls"))
            log.log(LogRecord(time.time(), "GET", "/cart", "cart", protocol="HTTP/1.1", response_code=200,
                              bytes_sent=1024, duration_ms=1, request_headers=headers,
                              upstream_host="127.0.0.1:8080", upstream_cluster="cart"))
        elapsed = time.perf_counter() - t0
        writer.close()
    return elapsed / n * 1e6


if __name__ == "__main__":
    import asyncio

    print(f"{asyncio.run(bench()):.2f} µs per request (metrics + access log line)")
