"""Envoy stats: names, /stats text and /stats/prometheus tags (proxy.engine.telemetry.stats)."""

from __future__ import annotations

import pytest

from proxy.engine.telemetry.stats import ClusterStats, HttpStats, StatsStore

ISTIO_CLUSTER = "outbound|8080||cart.commerce.svc.cluster.local"


def test_cluster_and_http_stats_have_envoys_names() -> None:
    store = StatsStore()
    cluster = ClusterStats(store, "backend")
    http = HttpStats(store, "ingress_http")
    for code in (200, 200, 503):
        cluster.upstream_rq_total.inc()
        cluster.response(code)
        http.downstream_rq_total.inc()
        http.response(code)
    cluster.upstream_cx_active.inc()
    cluster.upstream_cx_active.inc()
    cluster.upstream_cx_active.dec()
    assert store.value("cluster.backend.upstream_rq_total") == 3
    assert store.value("cluster.backend.upstream_rq_200") == 2
    assert store.value("cluster.backend.upstream_rq_2xx") == 2
    assert store.value("cluster.backend.upstream_rq_5xx") == 1
    assert store.value("cluster.backend.upstream_rq_completed") == 3
    assert store.value("cluster.backend.upstream_cx_active") == 1
    assert store.value("http.ingress_http.downstream_rq_total") == 3
    assert store.value("http.ingress_http.downstream_rq_5xx") == 1
    text = store.render_text()
    lines = text.splitlines()
    assert lines == sorted(lines) and "cluster.backend.upstream_rq_503: 1" in lines
    assert store.render_text(filter=r"upstream_rq_5").splitlines() == [
        "cluster.backend.upstream_rq_503: 1", "cluster.backend.upstream_rq_5xx: 1"]


def test_prometheus_output_extracts_envoys_default_tags() -> None:
    store = StatsStore()
    cluster = ClusterStats(store, ISTIO_CLUSTER)
    cluster.upstream_rq_total.inc(5)
    cluster.response(503)
    HttpStats(store, "inbound_0.0.0.0_8080").downstream_rq_total.inc()
    store.counter("listener", "0.0.0.0_15006", "downstream_cx_total").inc()
    prom = store.render_prometheus()
    c = f'envoy_cluster_name="{ISTIO_CLUSTER}"'  # the whole name despite its dots
    assert f"envoy_cluster_upstream_rq_total{{{c}}} 5" in prom
    assert f'envoy_cluster_upstream_rq{{envoy_response_code="503",{c}}} 1' in prom
    assert f'envoy_cluster_upstream_rq_xx{{envoy_response_code_class="5",{c}}} 1' in prom
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="inbound_0.0.0.0_8080"} 1' in prom
    assert 'envoy_listener_downstream_cx_total{envoy_listener_address="0.0.0.0_15006"} 1' in prom
    assert f"envoy_cluster_outlier_detection_ejections_active{{{c}}} 0" in prom
    assert prom.count("# TYPE envoy_cluster_upstream_rq counter") == 1
    assert "# TYPE envoy_cluster_upstream_cx_active gauge" in prom


def test_a_name_is_one_kind() -> None:
    store = StatsStore()
    assert store.counter("cluster", "a", "x") is store.counter("cluster", "a", "x")
    with pytest.raises(ValueError, match="is a counter"):
        store.gauge("cluster", "a", "x")
