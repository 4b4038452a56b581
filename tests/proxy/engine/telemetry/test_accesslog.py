"""Envoy access log formats and the non-blocking writer (proxy.engine.telemetry.accesslog)."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path

import pytest

from proxy.engine.telemetry.accesslog import (
    ENVOY_DEFAULT_FORMAT,
    ISTIO_JSON_FORMAT,
    AccessLog,
    AccessLogFormatError,
    AccessLogWriter,
    JsonFormatter,
    LogRecord,
    TextFormatter,
    from_config,
)

START = datetime.datetime(2026, 11, 26, 11, 47, 31, 123000, tzinfo=datetime.UTC).timestamp()


def record(**kw: object) -> LogRecord:
    base: dict[str, object] = dict(
        start_time=START, method="GET", path="/api/cart?x=1", authority="cart.commerce:8080",
        protocol="HTTP/1.1", response_code=200, response_flags="-", bytes_received=0, bytes_sent=1234,
        duration_ms=3,
        request_headers={"user-agent": "curl/8.0", "x-request-id": "8b5c0a2e-1111-4222-8333-444455556666",
                         "x-forwarded-for": "10.0.0.1"},
        response_headers={"x-envoy-upstream-service-time": "2"},
        upstream_host="127.0.0.1:9090", upstream_cluster="outbound|8080||cart.commerce.svc.cluster.local",
        downstream_remote_address="127.0.0.1:51234", downstream_local_address="127.0.0.1:8080",
    )
    base.update(kw)
    return LogRecord(**base)  # type: ignore[arg-type]


def test_default_format_is_envoys_line() -> None:
    assert ENVOY_DEFAULT_FORMAT.startswith('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%')
    line = TextFormatter().format(record())
    assert line == ('[2026-11-26T11:47:31.123Z] "GET /api/cart?x=1 HTTP/1.1" 200 - 0 1234 3 2 '
                    '"10.0.0.1" "curl/8.0" "8b5c0a2e-1111-4222-8333-444455556666" "cart.commerce:8080" '
                    '"127.0.0.1:9090"\n')


def test_missing_values_are_dashes_and_alternatives_apply() -> None:
    rec = record(request_headers={"x-envoy-original-path": "/orig"}, response_headers={}, upstream_host="",
                 duration_ms=None, response_code=503, response_flags="UH")
    line = TextFormatter().format(rec)
    assert '"GET /orig HTTP/1.1" 503 UH 0 1234 - - "-" "-" "-" "cart.commerce:8080" "-"' in line


@pytest.mark.parametrize("fmt,expected", [
    pytest.param("%REQ(USER-AGENT):4%", "curl", id="truncation"),
    pytest.param("%START_TIME(%s)%", str(int(START)), id="epoch-seconds"),
    pytest.param("%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%", "2026/11/26 11:47:31.123", id="strftime-millis"),
    pytest.param("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "127.0.0.1", id="without-port"),
    pytest.param("%UPSTREAM_CLUSTER%", "outbound|8080||cart.commerce.svc.cluster.local", id="cluster"),
    pytest.param("100%% %RESPONSE_CODE%", "100%% 200", id="literal-percent-kept"),
    pytest.param("%REQ(:AUTHORITY)% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "cart.commerce:8080 2", id="pseudo"),
])
def test_operators(fmt: str, expected: str) -> None:
    assert TextFormatter(fmt).format(record()) == expected


@pytest.mark.parametrize("fmt,message", [
    ("%NOT_AN_OPERATOR%", "NOT_AN_OPERATOR"),
    ("%REQ%", "needs a header name"),
    ("%REQ(A?B?C)%", "HEADER or HEADER?ALTERNATIVE"),
    ("%PROTOCOL(x)%", "PROTOCOL"),
])
def test_bad_formats_name_the_operator(fmt: str, message: str) -> None:
    with pytest.raises(AccessLogFormatError, match=message.replace("?", r"\?")):
        TextFormatter(fmt)


def test_json_format_keeps_types_and_nulls() -> None:
    doc = json.loads(JsonFormatter().format(record(upstream_host="", duration_ms=7)))
    assert set(doc) == set(ISTIO_JSON_FORMAT)
    assert doc["response_code"] == 200 and doc["bytes_sent"] == 1234 and doc["duration"] == 7
    assert doc["method"] == "GET" and doc["path"] == "/api/cart?x=1" and doc["upstream_host"] is None
    assert doc["start_time"] == "2026-11-26T11:47:31.123Z" and doc["response_flags"] == "-"
    mixed = json.loads(JsonFormatter({"line": "%REQ(:METHOD)% %RESPONSE_CODE%", "k": "lit"}).format(record()))
    assert mixed == {"line": "GET 200", "k": "lit"}
    with pytest.raises(AccessLogFormatError, match="json_format.n"):
        JsonFormatter({"n": 1})  # type: ignore[dict-item]


async def test_writer_buffers_then_flushes_on_timer_and_size(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    writer = AccessLogWriter(str(path), flush_interval=0.05, buffer_bytes=4096)
    log = AccessLog(TextFormatter("%RESPONSE_CODE%\n"), writer)
    log.log(record())
    assert path.read_text() == ""  # buffered, not written on the request path
    await asyncio.sleep(0.2)
    assert path.read_text() == "200\n"
    for _ in range(2000):  # 8000 bytes: passes buffer_bytes, flushed without waiting for the timer
        log.log(record())
    await asyncio.sleep(0.02)
    assert path.read_text().count("\n") >= 1000
    writer.close()
    assert path.read_text().count("\n") == 2001 and writer.written_lines == 2001 and writer.dropped == 0


async def test_writer_drops_and_counts_beyond_its_bound(tmp_path: Path) -> None:
    writer = AccessLogWriter(str(tmp_path / "a.log"), flush_interval=10, buffer_bytes=1 << 20, max_pending_bytes=100)
    for _ in range(50):
        writer.write("0123456789\n")
    assert writer.dropped > 0
    writer.close()
    assert (tmp_path / "a.log").read_text().count("\n") == 50 - writer.dropped


def test_omit_empty_values() -> None:
    rec = record(upstream_host="", request_headers={})
    assert TextFormatter("[%UPSTREAM_HOST%|%REQ(USER-AGENT)%]", omit_empty_values=True).format(rec) == "[|]"
    doc = json.loads(JsonFormatter({"h": "%UPSTREAM_HOST%", "c": "%RESPONSE_CODE%"}, omit_empty_values=True)
                     .format(rec))
    assert doc == {"c": 200}


def test_from_config_builds_loggers_from_the_bootstrap_model(tmp_path: Path) -> None:
    from proxy.engine.config import listener, schema

    path = str(tmp_path / "access.log")
    file_json = {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": path,
        "log_format": {"json_format": {"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%"}}}}
    file_text = {"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": path,
        "log_format": {"text_format_source": {"inline_string": "%REQ(:METHOD)% %RESPONSE_CODE%\n"}}}}
    stdout = {"typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}
    writers: dict[str, AccessLogWriter] = {}
    logs = [from_config(schema.parse(listener.AccessLog, raw, f"access_log[{i}]"), f"access_log[{i}]",
                        writers=writers) for i, raw in enumerate((file_json, file_text, stdout))]
    assert logs[0].writer is logs[1].writer and logs[2].writer.path == "/dev/stdout"
    assert isinstance(logs[2].formatter, TextFormatter)
    assert logs[2].formatter.format(record()).startswith("[2026-11-26T11:47:31.123Z] \"GET")
    logs[0].log(record())
    logs[1].log(record())
    for w in writers.values():
        w.close()
    assert Path(path).read_text() == '{"code":200,"path":"/api/cart?x=1"}\nGET 200\n'
    bad = {"typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                            "path": path, "log_format": {"text_format": "%NOPE%"}}}
    with pytest.raises(AccessLogFormatError, match=r"access_log\[0\]\.typed_config\.log_format: .*NOPE"):
        from_config(schema.parse(listener.AccessLog, bad, "access_log[0]"), "access_log[0]")
