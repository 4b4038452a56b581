"""The str view of byte-pair header lists, and telemetry reading/writing through it."""

from __future__ import annotations

import time

from proxy.engine.telemetry.accesslog import LogRecord, TextFormatter
from proxy.engine.telemetry.headers import HeaderView, set_headers
from proxy.engine.telemetry.tracing import Sampler, extract, inject_list

TRACE = "463ac35c9f6413ad"
SPAN = "a2fb4a1d1a96d312"


def test_view_reads_the_first_value_by_lower_case_name() -> None:
    headers = [(b"user-agent", b"curl/8"), (b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-for", b"10.0.0.2")]
    view = HeaderView(headers)
    assert view.get("user-agent") == "curl/8" and view["x-forwarded-for"] == "10.0.0.1"
    assert view.get("missing") is None and "user-agent" in view and "missing" not in view
    assert list(view) == ["user-agent", "x-forwarded-for"] and len(view) == 2
    line = TextFormatter('"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%"').format(
        LogRecord(time.time(), request_headers=view))
    assert line == '"curl/8" "-"'


def test_tracing_through_header_lists() -> None:
    headers = [(b"host", b"cart"), (b"x-b3-traceid", TRACE.encode()), (b"x-b3-spanid", SPAN.encode()),
               (b"x-b3-sampled", b"1"), (b"b3", b"stale")]
    ctx = Sampler(0).start(HeaderView(headers))
    assert ctx.trace_id == TRACE and ctx.parent_span_id == SPAN and ctx.sampled
    outbound = ctx.child()
    inject_list(outbound, headers)
    names = [n for n, _ in headers]
    assert names.count(b"x-b3-spanid") == 1 and b"b3" not in names and names[0] == b"host"
    again = extract(HeaderView(headers))
    assert again is not None and again.span_id == outbound.span_id and again.parent_span_id == ctx.span_id
    set_headers(headers, {"x-request-id": "r1"})
    assert HeaderView(headers)["x-request-id"] == "r1"
