"""Trace context (x-request-id, B3, W3C), Zipkin v2 spans and the emitter, against a small
aiohttp collector on 127.0.0.1 (proxy.engine.telemetry.tracing)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from proxy.engine.telemetry.tracing import (
    ENVOY_DEFAULT_SAMPLING,
    ISTIO_DEFAULT_SAMPLING,
    Endpoint,
    Sampler,
    Span,
    TraceContext,
    ZipkinEmitter,
    ensure_request_id,
    extract,
    http_tags,
    inject,
    parse_b3_multi,
    parse_b3_single,
    parse_traceparent,
    sampler_from_config,
)

TRACE = "463ac35c9f6413ad48485a3953bb6124"
SPAN = "a2fb4a1d1a96d312"
PARENT = "0020000000000001"


def test_request_id_is_kept_or_made() -> None:
    h = {"x-request-id": "abc"}
    assert ensure_request_id(h) == "abc"
    h2: dict[str, str] = {}
    rid = ensure_request_id(h2)
    assert h2["x-request-id"] == rid and uuid.UUID(rid).version == 4


@pytest.mark.parametrize("headers,expected", [
    pytest.param({"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-parentspanid": PARENT, "x-b3-sampled": "1"},
                 TraceContext(TRACE, SPAN, PARENT, True), id="b3-multi"),
    pytest.param({"x-b3-traceid": TRACE[:16], "x-b3-spanid": SPAN, "x-b3-flags": "1"},
                 TraceContext(TRACE[:16], SPAN, None, True, True), id="b3-multi-64bit-debug"),
    pytest.param({"b3": f"{TRACE}-{SPAN}-0-{PARENT}"}, TraceContext(TRACE, SPAN, PARENT, False), id="b3-single"),
    pytest.param({"b3": f"{TRACE}-{SPAN}"}, TraceContext(TRACE, SPAN), id="b3-single-undecided"),
    pytest.param({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "congo=t61rcWkgMzE"},
                 TraceContext(TRACE, SPAN, None, True, False, "congo=t61rcWkgMzE", True), id="w3c"),
    pytest.param({"x-b3-traceid": "xyz", "x-b3-spanid": SPAN}, None, id="bad-b3"),
    pytest.param({"traceparent": f"00-{'0' * 32}-{SPAN}-01"}, None, id="w3c-zero-trace"),
    pytest.param({"traceparent": f"ff-{TRACE}-{SPAN}-01"}, None, id="w3c-version-ff"),
    pytest.param({"b3": "1"}, None, id="b3-sampling-only"),
    pytest.param({}, None, id="none"),
])
def test_extract(headers: dict[str, str], expected: TraceContext | None) -> None:
    assert extract(headers) == expected


def test_child_and_inject_propagate_b3_and_w3c() -> None:
    parent = parse_traceparent(f"00-{TRACE}-{SPAN}-01", "a=b")
    assert parent is not None
    child = parent.child()
    assert child.trace_id == TRACE and child.parent_span_id == SPAN and child.span_id != SPAN
    assert len(child.span_id) == 16 and child.sampled is True
    headers = {"b3": "stale"}
    inject(child, headers)
    assert headers == {"x-b3-traceid": TRACE, "x-b3-spanid": child.span_id, "x-b3-parentspanid": SPAN,
                       "x-b3-sampled": "1", "traceparent": f"00-{TRACE}-{child.span_id}-01", "tracestate": "a=b"}
    b3 = parse_b3_single(f"{TRACE[:16]}-{SPAN}-d")
    assert b3 is not None and b3.debug
    headers = {}
    inject(b3.child(), headers)
    assert headers["x-b3-flags"] == "1" and "traceparent" not in headers
    assert parse_b3_multi(headers) is not None and parse_b3_multi(headers).debug  # type: ignore[union-attr]


def test_sampling_keeps_incoming_decisions_and_draws_at_the_percentage() -> None:
    assert ENVOY_DEFAULT_SAMPLING == 100.0 and ISTIO_DEFAULT_SAMPLING == 1.0
    sampler = Sampler(ISTIO_DEFAULT_SAMPLING, rng=random.Random(7))
    roots = [sampler.start({}) for _ in range(20000)]
    rate = sum(bool(c.sampled) for c in roots) / len(roots)
    assert 0.007 < rate < 0.013
    assert all(c.parent_span_id is None and len(c.trace_id) == 16 for c in roots[:10])  # Envoy: 64-bit
    assert len(Sampler(trace_id_128bit=True).start({}).trace_id) == 32
    assert Sampler(0).start({"x-envoy-force-trace": "true"}).sampled is True
    assert Sampler(0).start({}).sampled is False
    shared = Sampler().start({"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-parentspanid": PARENT}, shared=True)
    assert (shared.span_id, shared.parent_span_id, shared.sampled) == (SPAN, PARENT, True)
    forced = sampler.start({"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "1"})
    assert forced.sampled is True and forced.parent_span_id == SPAN and forced.trace_id == TRACE
    assert Sampler(0).start({"b3": f"{TRACE}-{SPAN}-1"}).sampled is True
    assert Sampler(100).start({"b3": f"{TRACE}-{SPAN}-0"}).sampled is False
    with pytest.raises(ValueError, match="random_sampling"):
        Sampler(101)


def make_span(ctx: TraceContext, code: int = 200) -> Span:
    return Span(ctx, "cart.commerce.svc.cluster.local:8080/*", "SERVER", int(time.time() * 1e6), 1234,
                Endpoint("cart.commerce", "127.0.0.1", 8080), Endpoint(None, "127.0.0.2", 51234),
                http_tags(method="GET", url="http://cart:8080/api", status_code=code, response_flags="-",
                          upstream_cluster="inbound|8080||", request_id="rid"))


def test_span_is_zipkin_v2_json() -> None:
    doc = make_span(TraceContext(TRACE, SPAN, PARENT, True), 503).to_zipkin()
    assert doc["traceId"] == TRACE and doc["id"] == SPAN and doc["parentId"] == PARENT
    assert doc["kind"] == "SERVER" and doc["duration"] == 1234 and isinstance(doc["timestamp"], int)
    assert doc["localEndpoint"] == {"serviceName": "cart.commerce", "ipv4": "127.0.0.1", "port": 8080}
    assert doc["remoteEndpoint"] == {"ipv4": "127.0.0.2", "port": 51234}
    tags = doc["tags"]
    assert tags["http.method"] == "GET" and tags["http.status_code"] == "503" and tags["error"] == "true"
    assert tags["upstream_cluster"] == "inbound|8080||" and tags["response_flags"] == "-"
    assert "parentId" not in make_span(TraceContext(TRACE, SPAN, None, True)).to_zipkin()
    assert "shared" not in doc
    server = make_span(TraceContext(TRACE, SPAN, PARENT, True))
    server.shared = True
    assert server.to_zipkin()["shared"] is True
    assert "error" not in make_span(TraceContext(TRACE, SPAN, None, True)).to_zipkin()["tags"]


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[list[dict[str, Any]]], dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    control: dict[str, Any] = {"delay": 0.0, "status": 202}

    async def spans(request: web.Request) -> web.Response:
        await asyncio.sleep(control["delay"])
        if control["status"] < 300:
            batches.append(await request.json())
        return web.Response(status=control["status"])

    app = web.Application()
    app.router.add_post("/api/v2/spans", spans)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/api/v2/spans", batches, control
    await runner.cleanup()


async def test_emitter_batches_spans_to_the_collector(collector: Any) -> None:
    url, batches, _ = collector
    emitter = ZipkinEmitter(url, batch_size=50, flush_interval=0.05)
    emitter.start()
    for _ in range(120):
        emitter.emit(make_span(TraceContext(TRACE, uuid.uuid4().hex[:16], None, True)))
    emitter.emit(make_span(TraceContext(TRACE, SPAN, None, False)))  # not sampled: not sent
    await asyncio.sleep(0.3)
    await emitter.aclose()
    assert sum(len(b) for b in batches) == 120 == emitter.sent
    assert max(len(b) for b in batches) <= 50 and len(batches) >= 3
    assert all(s["traceId"] == TRACE and s["kind"] == "SERVER" for b in batches for s in b)


async def test_slow_collector_never_blocks_emit_and_overflow_is_counted(collector: Any) -> None:
    url, batches, control = collector
    control["delay"] = 0.5
    emitter = ZipkinEmitter(url, max_queue=100, batch_size=10, flush_interval=0.01)
    emitter.start()
    t0 = time.perf_counter()
    for _ in range(1000):
        emitter.emit(make_span(TraceContext(TRACE, SPAN, None, True)))
    assert time.perf_counter() - t0 < 0.5  # emit is an append, whatever the collector does
    assert emitter.dropped >= 800 and len(emitter.queue) <= 100
    control["delay"] = 0.0
    await emitter.aclose()
    assert emitter.sent + emitter.dropped == 1000


async def test_collector_errors_are_counted_not_raised(collector: Any) -> None:
    url, _, control = collector
    control["status"] = 500
    emitter = ZipkinEmitter(url, flush_interval=0.01)
    emitter.start()
    emitter.emit(make_span(TraceContext(TRACE, SPAN, None, True)))
    await emitter.aclose()
    assert emitter.failed == 1 and emitter.sent == 0
    down = ZipkinEmitter("http://127.0.0.1:9/api/v2/spans", flush_interval=0.01)
    down.start()
    down.emit(make_span(TraceContext(TRACE, SPAN, None, True)))
    await down.aclose()
    assert down.failed == 1


def test_sampler_from_the_bootstrap_model() -> None:
    from proxy.engine.config import listener, schema

    raw = {"random_sampling": {"value": 1}, "overall_sampling": {"value": 50},
           "provider": {"name": "envoy.tracers.zipkin", "typed_config": {
               "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig", "collector_cluster": "zipkin",
               "collector_endpoint": "/api/v2/spans", "trace_id_128bit": True}}}
    sampler = sampler_from_config(schema.parse(listener.Tracing, raw, "tracing"))
    assert sampler.fraction == pytest.approx(0.005) and sampler.trace_id_128bit
    assert sampler_from_config(None).fraction == 1.0
