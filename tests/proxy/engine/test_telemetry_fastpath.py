"""The access log's fast path gives what the LogRecord path gives, and the writer never
waits on its reader.

observe.HcmTelemetry compiles each log format over the finished flow (no LogRecord); a
line written by a running ProxyServer must be the line the same format makes from
`HcmTelemetry.record(flow)`, for every operator Envoy's and Istio's formats use, on
answered, locally answered (404 NR) and failed (503 UF) requests. Istio's series cache
must count requests into the series their labels say.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.engine import observe
from proxy.engine.telemetry import accesslog
from proxy.engine.telemetry.accesslog import AccessLogWriter
from tests.proxy.engine.test_telemetry_server import (
    FILE_LOG,
    Backend,
    bootstrap,
    cluster,
    node,
    series,
    start,
)

EVERY = {"start": "%START_TIME%", "start_s": "%START_TIME(%s.%3f)%", "method": "%REQ(:METHOD)%",
         "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "scheme": "%REQ(:SCHEME)%", "protocol": "%PROTOCOL%",
         "code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%", "details": "%RESPONSE_CODE_DETAILS%",
         "term": "%CONNECTION_TERMINATION_DETAILS%", "rx": "%BYTES_RECEIVED%", "tx": "%BYTES_SENT%",
         "duration": "%DURATION%", "ust": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "ctype": "%RESP(CONTENT-TYPE)%",
         "xff": "%REQ(X-FORWARDED-FOR)%", "ua": "%REQ(USER-AGENT):5%", "rid": "%REQ(X-REQUEST-ID)%",
         "authority": "%REQ(:AUTHORITY)%", "uh": "%UPSTREAM_HOST%", "uc": "%UPSTREAM_CLUSTER%",
         "ula": "%UPSTREAM_LOCAL_ADDRESS%", "utf": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
         "dra": "%DOWNSTREAM_REMOTE_ADDRESS%", "dra_np": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
         "dla": "%DOWNSTREAM_LOCAL_ADDRESS%", "san": "%DOWNSTREAM_PEER_URI_SAN%", "tls": "%DOWNSTREAM_TLS_VERSION%",
         "sni": "%REQUESTED_SERVER_NAME%", "route": "%ROUTE_NAME%", "host": "%HOSTNAME%",
         "text": "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% \"%REQ(X-MISSING)%\""}


async def test_lines_from_the_flow_equal_lines_from_the_log_record(tmp_path: Path) -> None:
    json_log, text_log = tmp_path / "json.log", tmp_path / "text.log"
    access = [{"name": "envoy.access_loggers.file", "typed_config": {
                  "@type": FILE_LOG, "path": str(json_log), "log_format": {"json_format": EVERY}}},
              {"name": "envoy.access_loggers.file", "typed_config": {"@type": FILE_LOG, "path": str(text_log)}}]
    async with Backend() as backend:
        dead = cluster("dead", 1)  # nothing listens on port 1: 503 UF
        routes = [{"match": {"prefix": "/dead"}, "route": {"cluster": "dead"}, "name": "to-dead"},
                  {"match": {"prefix": "/api"}, "route": {"cluster": "backend"}, "name": "to-backend"}]
        cfg = bootstrap([cluster("backend", backend.port), dead], routes=routes, access_log=access,
                        identity=node("cart", "cart", "v1"))
        server, url = await start(cfg)
        made: list[tuple[Any, Any, Any]] = []  # (HcmTelemetry, flow, notes) of each finished request
        left: list[Any] = []  # flow.filter_state after the observer: the notes are let go
        original = observe.HcmTelemetry.__call__

        def spy(self: observe.HcmTelemetry, flow: Any) -> None:
            made.append((self, flow, flow.filter_state["telemetry"]))
            original(self, flow)
            left.append(flow.filter_state)

        observe.HcmTelemetry.__call__ = spy  # type: ignore[method-assign]
        try:
            async with aiohttp.ClientSession() as s:
                for path, headers in (("/api/a?x=1", {"user-agent": "curl/8.1", "x-forwarded-for": "10.1.2.3"}),
                                      ("/nowhere", {}), ("/dead", {"x-envoy-original-path": "/orig"}),
                                      ("/api/b", {"x-request-id": "given-id"})):
                    async with s.get(url + path, headers=headers) as r:
                        await r.read()
        finally:
            observe.HcmTelemetry.__call__ = original  # type: ignore[method-assign]
        await server.stop(1)
        server.telemetry.flush()
        await asyncio.sleep(0.05)
        await server.telemetry.aclose()
    assert [f.status for _, f, _ in made] == [200, 404, 503, 200] and left == [None] * 4
    json_fmt, text_fmt = accesslog.JsonFormatter(EVERY), accesslog.TextFormatter()
    got_json = [json.loads(line) for line in json_log.read_text().splitlines()]
    got_text = text_log.read_text().splitlines()
    for (tele, flow, notes), line, text in zip(made, got_json, got_text, strict=True):
        rec = tele.record(flow, notes)
        assert line == json.loads(json_fmt.format(rec))
        assert text + "\n" == text_fmt.format(rec)
    first = got_json[0]
    assert first["code"] == 200 and first["ua"] == "curl/" and first["xff"] == "10.1.2.3, 127.0.0.1"
    assert first["path"] == "/api/a?x=1" and first["route"] == "to-backend" and first["uc"] == "backend"
    assert first["dra"].startswith("127.0.0.1:") and first["dra_np"] == "127.0.0.1" and first["ust"] is not None
    assert first["san"] is None and first["text"].endswith('200 - "-"')
    assert abs(float(first["start_s"]) - time.time()) < 10
    assert got_json[1]["flags"] == "NR" and got_json[1]["details"] == "route_not_found" and got_json[1]["uh"] is None
    assert got_json[2]["flags"] == "UF" and got_json[2]["path"] == "/orig" and got_json[2]["uc"] == "dead"
    assert got_json[3]["rid"] == "given-id"


async def test_istio_series_cache_counts_each_request_in_its_own_series() -> None:
    async with Backend() as backend:
        routes = [{"match": {"prefix": "/missing"}, "direct_response": {"status": 404}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
        server, url = await start(bootstrap([cluster("backend", backend.port)], routes=routes,
                                            identity=node("cart", "cart", "v1")))
        try:
            async with aiohttp.ClientSession() as s:
                for i in range(30):
                    path = "/missing" if i % 3 == 0 else "/ok"
                    ctype = "application/grpc" if i % 5 == 0 else "text/plain"
                    async with s.post(url + path, data=b"x" * i, headers={"content-type": ctype}) as r:
                        await r.read()
            text = server.telemetry.render_prometheus()
        finally:
            await server.stop(1)
    counts: dict[tuple[str, str], float] = {}
    for labels, value in series(text, "istio_requests_total", reporter="destination"):
        counts[labels["response_code"], labels["request_protocol"]] = value
    expected: dict[tuple[str, str], int] = {}
    for i in range(30):
        key = ("404" if i % 3 == 0 else "200", "grpc" if i % 5 == 0 else "http")
        expected[key] = expected.get(key, 0) + 1
    assert counts == expected
    sums = {labels["response_code"]: v for labels, v in series(text, "istio_request_bytes_sum")
            if labels["request_protocol"] == "http"}
    assert sums["200"] == sum(i for i in range(30) if i % 3 and i % 5)


async def test_writer_to_a_full_pipe_never_blocks_the_loop_and_keeps_order() -> None:
    r, w = os.pipe()
    try:
        writer = AccessLogWriter(f"/proc/self/fd/{w}", buffer_bytes=1024, flush_interval=0.01)
        line = b"%06d " + b"y" * 1000 + b"\n"
        start = time.monotonic()
        for i in range(400):  # ~400 kB: several times what a pipe holds (64 kB)
            writer.write(line % i)
        writer.flush()
        assert time.monotonic() - start < 1.0  # returned at once, nobody reads yet
        assert writer.written_lines < 400
        os.set_blocking(r, False)
        got = b""
        for _ in range(200):
            await asyncio.sleep(0.005)  # the loop writes as the pipe drains
            try:
                got += os.read(r, 1 << 20)
            except BlockingIOError:
                pass
            if got.count(b"\n") == 400:
                break
        assert [int(x[:6]) for x in got.splitlines()] == list(range(400))
        assert writer.written_lines == 400 and writer.dropped == 0
        writer.close()
    finally:
        os.close(r)
        os.close(w)


def test_writer_blocks_for_close_only_and_moves_slow_files_to_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    writer = AccessLogWriter(str(path), buffer_bytes=10, slow_write=0.0)  # every write counts as slow
    writer.write("first\n")  # no loop: written through, found slow
    assert path.read_text() == "first\n" and writer._pool is not None
    writer.write(b"second\n")
    writer.close()
    assert path.read_text() == "first\nsecond\n" and writer.written_lines == 2


@pytest.mark.parametrize("fmt", [{"a": "%BYTES_SENT%", "b": "%START_TIME(%Y)%:%DURATION%"}, {"x": "lit"}])
def test_compiled_formats_read_only_what_fields_give(fmt: dict[str, str]) -> None:
    rec = accesslog.LogRecord(start_time=1_790_000_000.5, bytes_sent=7, duration_ms=None)
    doc = json.loads(accesslog.JsonFormatter(fmt).format(rec))
    assert doc == ({"a": 7, "b": "2026:-"} if "a" in fmt else {"x": "lit"})
