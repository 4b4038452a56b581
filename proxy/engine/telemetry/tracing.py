"""Trace context and spans: x-request-id, B3 (multi-header and single), W3C traceparent,
Zipkin v2 JSON spans, and an emitter that never blocks the request path.

Headers are read through any str Mapping (telemetry.headers.HeaderView wraps the
engine's byte-pair lists); `inject_list` writes into such a list.

Istio's sidecars propagate B3 and report to Zipkin (`/api/v2/spans`); applications are
expected to copy the trace headers from inbound to outbound requests. A proxy continues
an incoming trace (new span id, the incoming span as parent) or starts one, and decides
sampling once per trace: an incoming decision wins; otherwise a random draw at the
configured percentage. Envoy's `random_sampling` defaults to 100 %; Istio's mesh
default (`meshConfig.defaultConfig.tracing.sampling`) is 1 %.

New trace ids are 64-bit as Envoy's Zipkin tracer makes them unless `trace_id_128bit`;
an incoming id is kept as is, and left-padded with zeros to 128 bits for traceparent.
`x-envoy-force-trace` samples a new trace whatever the percentage.

The emitter keeps finished spans in a bounded deque and a background task POSTs them
in batches; when the collector is slow or down, the queue fills and further spans are
dropped and counted, rather than holding memory or a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import uuid
from collections import deque
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from proxy.engine.telemetry.headers import HeaderList, set_headers

log = logging.getLogger("proxy.engine.telemetry.tracing")

ENVOY_DEFAULT_SAMPLING = 100.0  # percent: HttpConnectionManager.tracing.random_sampling
ISTIO_DEFAULT_SAMPLING = 1.0  # percent: meshConfig.defaultConfig.tracing.sampling

_HEX16 = re.compile(r"[0-9a-f]{16}")
_TRACE_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


async def post_json(url: str, body: bytes) -> int:
    """POST `body` to an http:// URL on a new connection; the response's status code. (A
    few lines of HTTP/1.1 rather than an HTTP client library in the proxy's memory: this
    runs once per span batch.)"""
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"collector URL {url!r}: only http://host[:port]/path is supported")
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    try:
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        writer.write(b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (target.encode(), u.netloc.encode(), len(body), body))
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"not an HTTP response: {status_line[:60]!r}")
        await reader.read()  # the rest, until the collector closes
        return int(parts[1])
    finally:
        writer.close()


def new_request_id() -> str:
    """A fresh x-request-id (a UUID4, as Envoy generates)."""
    return str(uuid.uuid4())


def ensure_request_id(headers: MutableMapping[str, str]) -> str:
    """Keep the incoming `x-request-id` or set a new one; returns it."""
    rid = headers.get("x-request-id")
    if not rid:
        rid = headers["x-request-id"] = new_request_id()
    return rid


def new_span_id() -> str:
    return os.urandom(8).hex()


def new_trace_id(bits128: bool = False) -> str:
    return os.urandom(16 if bits128 else 8).hex()


@dataclass(slots=True)
class TraceContext:
    """One span's position in a trace; `sampled` None means no decision yet."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    sampled: bool | None = None
    debug: bool = False
    tracestate: str | None = None
    w3c: bool = False  # the trace came in as traceparent: propagate it so

    def child(self) -> TraceContext:
        """The next hop's context: same trace and decision, a new span under this one."""
        return TraceContext(self.trace_id, new_span_id(), self.span_id, self.sampled, self.debug,
                            self.tracestate, self.w3c)


def _sampled_flag(value: str) -> tuple[bool | None, bool]:
    """B3 sampling state -> (sampled, debug)."""
    v = value.strip().lower()
    if v in ("1", "true"):
        return True, False
    if v in ("0", "false"):
        return False, False
    if v == "d":
        return True, True
    return None, False


def parse_b3_single(value: str) -> TraceContext | None:
    """`b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]` or just `{sampling}`; None when
    malformed or a sampling decision only (that has no ids to continue)."""
    parts = value.strip().lower().split("-")
    if len(parts) < 2 or not _TRACE_ID.fullmatch(parts[0]) or not _HEX16.fullmatch(parts[1]):
        return None
    sampled, debug = _sampled_flag(parts[2]) if len(parts) > 2 else (None, False)
    parent = parts[3] if len(parts) > 3 and _HEX16.fullmatch(parts[3]) else None
    return TraceContext(parts[0], parts[1], parent, sampled, debug)


def parse_b3_multi(headers: Mapping[str, str]) -> TraceContext | None:
    """x-b3-traceid, x-b3-spanid, x-b3-parentspanid, x-b3-sampled, x-b3-flags."""
    trace_id = headers.get("x-b3-traceid", "").lower()
    span_id = headers.get("x-b3-spanid", "").lower()
    if not _TRACE_ID.fullmatch(trace_id) or not _HEX16.fullmatch(span_id):
        return None
    parent = headers.get("x-b3-parentspanid", "").lower()
    sampled, _ = _sampled_flag(headers.get("x-b3-sampled", ""))
    debug = headers.get("x-b3-flags", "") == "1"
    return TraceContext(trace_id, span_id, parent if _HEX16.fullmatch(parent) else None,
                        True if debug else sampled, debug)


def parse_traceparent(value: str, tracestate: str | None = None) -> TraceContext | None:
    """W3C `traceparent: 00-{trace-id}-{parent-id}-{flags}`; all-zero ids are invalid."""
    m = _TRACEPARENT.fullmatch(value.strip().lower())
    if m is None or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    return TraceContext(m.group(2), m.group(3), None, bool(int(m.group(4), 16) & 1), False,
                        tracestate, w3c=True)


def extract(headers: Mapping[str, str]) -> TraceContext | None:
    """The incoming trace context, if any: `b3`, then `x-b3-*`, then `traceparent`."""
    single = headers.get("b3")
    ctx = parse_b3_single(single) if single else None
    if ctx is None:
        ctx = parse_b3_multi(headers)
    if ctx is None and "traceparent" in headers:
        ctx = parse_traceparent(headers["traceparent"], headers.get("tracestate"))
    return ctx


def inject(ctx: TraceContext, headers: MutableMapping[str, str]) -> None:
    """Set B3 multi headers (always) and traceparent/tracestate (for W3C traces)."""
    headers["x-b3-traceid"] = ctx.trace_id
    headers["x-b3-spanid"] = ctx.span_id
    if ctx.parent_span_id:
        headers["x-b3-parentspanid"] = ctx.parent_span_id
    else:
        headers.pop("x-b3-parentspanid", None)
    if ctx.debug:
        headers["x-b3-flags"] = "1"
    elif ctx.sampled is not None:
        headers["x-b3-sampled"] = "1" if ctx.sampled else "0"
    headers.pop("b3", None)  # superseded by the multi headers just set
    if ctx.w3c:
        headers["traceparent"] = f"00-{ctx.trace_id.rjust(32, '0')}-{ctx.span_id}-{'01' if ctx.sampled else '00'}"
        if ctx.tracestate:
            headers["tracestate"] = ctx.tracestate


_TRACE_HEADERS = ("x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3",
                  "traceparent", "tracestate")


def inject_list(ctx: TraceContext, headers: HeaderList) -> None:
    """`inject` for the engine's header lists: old trace headers replaced by this hop's."""
    values: dict[str, str] = {}
    inject(ctx, values)
    set_headers(headers, values, remove=_TRACE_HEADERS)


class Sampler:
    """Decides for new traces (`random_sampling` percent); incoming decisions are kept."""

    def __init__(self, percent: float = ENVOY_DEFAULT_SAMPLING, *, overall_percent: float = 100.0,
                 trace_id_128bit: bool = False, rng: random.Random | None = None) -> None:
        for name, value in (("random_sampling", percent), ("overall_sampling", overall_percent)):
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"tracing.{name}: {value} is not within 0-100")
        self.fraction = percent / 100.0 * overall_percent / 100.0
        self.trace_id_128bit = trace_id_128bit
        self._random = (rng or random.Random()).random

    def start(self, headers: Mapping[str, str], *, shared: bool = False) -> TraceContext:
        """This hop's span: a child of the incoming context, or a new root. `shared` (an
        inbound SERVER span with Zipkin's `shared_span_context`, Envoy's default) reuses the
        caller's CLIENT span id and parent instead of making a child."""
        incoming = extract(headers)
        if incoming is not None:
            ctx = incoming if shared else incoming.child()
        else:
            ctx = TraceContext(new_trace_id(self.trace_id_128bit), new_span_id())
        if ctx.sampled is None:
            ctx.sampled = "x-envoy-force-trace" in headers or self._random() < self.fraction
        return ctx


def sampler_from_config(tracing: Any) -> Sampler:
    """A Sampler from the bootstrap model's HttpConnectionManager.tracing (None: Envoy's
    100 %); unset percents are Envoy's defaults (random and overall 100 %)."""
    if tracing is None:
        return Sampler()
    rnd = tracing.random_sampling.value if tracing.random_sampling is not None else ENVOY_DEFAULT_SAMPLING
    overall = tracing.overall_sampling.value if tracing.overall_sampling is not None else 100.0
    zipkin = tracing.provider.typed_config if tracing.provider is not None else None
    return Sampler(rnd, overall_percent=overall, trace_id_128bit=bool(zipkin and zipkin.trace_id_128bit))


@dataclass(frozen=True, slots=True)
class Endpoint:
    service_name: str | None = None
    ipv4: str | None = None
    port: int | None = None

    def to_zipkin(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.service_name is not None:
            out["serviceName"] = self.service_name
        if self.ipv4 is not None:
            out["ipv4"] = self.ipv4
        if self.port is not None:
            out["port"] = self.port
        return out


@dataclass(slots=True)
class Span:
    """A finished span. `kind` is CLIENT (outbound, the source sidecar) or SERVER (inbound);
    timestamps and durations are microseconds, as Zipkin wants them."""

    context: TraceContext
    name: str
    kind: str
    timestamp_us: int
    duration_us: int
    local_endpoint: Endpoint
    remote_endpoint: Endpoint | None = None
    tags: dict[str, str] = field(default_factory=dict)
    shared: bool = False  # a SERVER span sharing the CLIENT span's id (shared_span_context)

    def to_zipkin(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "traceId": self.context.trace_id,
            "id": self.context.span_id,
            "name": self.name,
            "kind": self.kind,
            "timestamp": self.timestamp_us,
            "duration": max(1, self.duration_us),
            "localEndpoint": self.local_endpoint.to_zipkin(),
            "tags": self.tags,
        }
        if self.context.parent_span_id:
            out["parentId"] = self.context.parent_span_id
        if self.context.debug:
            out["debug"] = True
        if self.shared:
            out["shared"] = True
        if self.remote_endpoint is not None:
            out["remoteEndpoint"] = self.remote_endpoint.to_zipkin()
        return out


def http_tags(*, method: str, url: str, status_code: int, response_flags: str = "-",
              upstream_cluster: str = "", request_id: str = "", protocol: str = "HTTP/1.1",
              **extra: str) -> dict[str, str]:
    """The tags Envoy puts on an HTTP span; `error: true` for 5xx and for no response."""
    tags = {"http.method": method, "http.url": url, "http.status_code": str(status_code),
            "http.protocol": protocol, "response_flags": response_flags, "component": "proxy"}
    if upstream_cluster:
        tags["upstream_cluster"] = upstream_cluster
    if request_id:
        tags["guid:x-request-id"] = request_id
    if status_code >= 500 or status_code == 0:
        tags["error"] = "true"
    tags.update(extra)
    return tags


class ZipkinEmitter:
    """Batches spans and POSTs them as Zipkin v2 JSON to `url` (…/api/v2/spans).

    `emit` only appends to a bounded queue (`max_queue` spans; beyond it `dropped`
    grows); `start()` runs the sender task, `aclose()` sends what is left and stops."""

    def __init__(self, url: str, *, max_queue: int = 10000, batch_size: int = 500,
                 flush_interval: float = 1.0, timeout: float = 5.0) -> None:
        self.url = url
        self.max_queue, self.batch_size, self.flush_interval = max_queue, batch_size, flush_interval
        self.timeout = timeout
        self.queue: deque[Span] = deque()
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def emit(self, span: Span) -> None:
        if not span.context.sampled:
            return
        if len(self.queue) >= self.max_queue:
            self.dropped += 1
            return
        self.queue.append(span)
        if len(self.queue) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="zipkin-emitter")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            while self.queue:
                await self._send()
            if self._closing:
                return

    async def _send(self) -> None:
        batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
        body = orjson.dumps([s.to_zipkin() for s in batch])
        try:
            status = await asyncio.wait_for(post_json(self.url, body), self.timeout)
            if status >= 300:
                raise OSError(f"the collector answered {status}")
            self.sent += len(batch)
        except (TimeoutError, OSError, ValueError) as e:
            self.failed += len(batch)  # spans are best effort: not retried
            log.warning("zipkin: %d spans not sent to %s: %s", len(batch), self.url, e)

    async def aclose(self) -> None:
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
