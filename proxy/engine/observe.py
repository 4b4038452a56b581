"""What sees requests at their start and end: x-request-id, trace context and Zipkin spans,
Istio's metadata exchange and standard metrics, and access logs.

`Telemetry` is one per ProxyServer, shared by config generations so counters, log files
and span queues survive a swap. `build(hcm, ...)` makes one connection manager's
`HcmTelemetry`, which is both its first HTTP filter (decode: request id, trace headers,
peer metadata, before any other filter sees the request; encode: the upstream response's
peer metadata and request id) and its observer of finished flows (access log line,
metrics, span). A connection manager with none of these configured gets neither, so
it costs nothing.

What this module adds to the request path is a few header list edits at the start and,
at the end, one function call per access log (its format compiled over the flow itself,
see telemetry.flowlog: no LogRecord, headers looked up in one dict built once), one dict
lookup and a few increments for Istio's metrics (IstioReporter caches the series), and
a Span only for sampled traces. Writing and sending happen in batches
(telemetry.accesslog, telemetry.tracing).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from proxy.engine.config import Bootstrap, ConfigError
from proxy.engine.config.http_filters import IstioStats
from proxy.engine.config.listener import HttpConnectionManager, Listener
from proxy.engine.flow import FilterBase
from proxy.engine.headers import Headers, is_internal, request_id
from proxy.engine.telemetry import accesslog, flowlog, peer, tracing
from proxy.engine.telemetry.accesslog import AccessLogWriter
from proxy.engine.telemetry.headers import HeaderView
from proxy.engine.telemetry.istio import IstioReporter, TcpReporter, reporter_name
from proxy.engine.telemetry.metrics import IstioMetrics

__all__ = ["HcmTelemetry", "Telemetry", "TcpReporter", "build", "tcp_reporter"]

_HOST_TEXT = flowlog.HostText()


class Telemetry:
    """Process-wide telemetry state: Istio's metrics, access log writers (one per path),
    Zipkin emitters (one per collector URL) and the peer metadata cache."""

    def __init__(self) -> None:
        self.metrics = IstioMetrics()
        self.peers = peer.PeerCache()
        self.writers: dict[str, AccessLogWriter] = {}
        self.emitters: dict[str, tracing.ZipkinEmitter] = {}

    def emitter(self, url: str) -> tracing.ZipkinEmitter:
        found = self.emitters.get(url)
        if found is None:
            found = self.emitters[url] = tracing.ZipkinEmitter(url)
        return found

    def render_prometheus(self) -> str:
        """Istio's metric families that have series, in the Prometheus text format."""
        lines: list[str] = []
        for fam in self.metrics.registry.families.values():
            if fam.series:
                lines += [f"# HELP {fam.name} {fam.help}", f"# TYPE {fam.name} {fam.kind}", *fam.render()]
        return "\n".join(lines) + "\n" if lines else ""

    def flush(self) -> None:
        """Hand buffered access log lines to their writer threads now."""
        for w in self.writers.values():
            w.flush()

    async def aclose(self) -> None:
        """Send the spans left, write the log lines left, close the files."""
        for e in list(self.emitters.values()):
            await e.aclose()
        self.emitters.clear()
        writers = list(self.writers.values())
        self.writers.clear()
        for w in writers:
            w.detach()  # on the loop's thread; then the blocking part off it
            await asyncio.to_thread(w.close)

    def close(self) -> None:
        """Without a loop: write the log lines left and close the files (spans are dropped)."""
        for w in self.writers.values():
            w.close()
        self.writers.clear()


class _Notes:
    """One flow's telemetry notes, in flow.filter_state["telemetry"]."""

    __slots__ = ("trace", "shared", "peer_value", "response_headers", "request_id")

    def __init__(self) -> None:
        self.trace: tracing.TraceContext | None = None
        self.shared = False
        self.peer_value: bytes | None = None  # the peer's x-envoy-peer-metadata
        self.response_headers: Headers | None = None
        self.request_id = b""


class _Tracer:
    """Envoy's HCM tracing with the Zipkin provider: one span per proxy (INGRESS: SERVER,
    EGRESS: CLIENT). A SERVER span with `shared_span_context` (the default) keeps the
    caller's span id, as Envoy's Zipkin tracer does; otherwise the span is a child of the
    incoming one, and its ids go upstream. Trace context is read from B3 (single or
    multi) and then W3C traceparent, and written as both (Envoy's Zipkin
    USE_B3_WITH_W3C_PROPAGATION), so either kind of application library can continue it."""

    def __init__(self, hcm: HttpConnectionManager, listener: Listener, boot: Bootstrap, telemetry: Telemetry,
                 path: str) -> None:
        cfg = hcm.tracing
        assert cfg is not None
        where = f"{path}.tracing"
        if cfg.provider is None:
            raise ConfigError(f"{where}.provider", "a Zipkin provider is needed to report spans")
        zipkin = cfg.provider.typed_config
        if zipkin.collector_endpoint_version != "HTTP_JSON":
            raise ConfigError(f"{where}.provider.typed_config.collector_endpoint_version", "only HTTP_JSON is supported")
        url = _collector_url(boot, zipkin.collector_cluster, zipkin.collector_endpoint,
                             f"{where}.provider.typed_config.collector_cluster")
        try:
            self.sampler = tracing.sampler_from_config(cfg)
        except ValueError as e:
            raise ConfigError(where, str(e)) from None
        overall = cfg.overall_sampling.value if cfg.overall_sampling is not None else 100.0
        client = cfg.client_sampling.value if cfg.client_sampling is not None else 100.0
        self.client_fraction = client / 100.0 * overall / 100.0
        self.emitter = telemetry.emitter(url)
        self.ingress = listener.traffic_direction != "OUTBOUND"
        self.shared = self.ingress and zipkin.shared_span_context
        self.kind, self.name = ("SERVER", "ingress") if self.ingress else ("CLIENT", "egress")
        sa = listener.address.socket_address
        self.local = tracing.Endpoint(service_name=boot.node.cluster if boot.node else None,
                                      ipv4=sa.address if sa.is_ip() and ":" not in sa.address else None,
                                      port=sa.port_value or None)
        self.node_id = boot.node.id if boot.node else ""
        self.max_path = cfg.max_path_tag_length if cfg.max_path_tag_length is not None else 256
        self._random = random.random

    def start(self, headers: Headers, notes: _Notes) -> None:
        """This hop's context from the request's headers; written back into them."""
        view = HeaderView(headers)
        incoming = tracing.extract(view)
        if incoming is None:
            ctx = tracing.TraceContext(tracing.new_trace_id(self.sampler.trace_id_128bit), tracing.new_span_id())
        elif self.shared:
            ctx, notes.shared = incoming, True
        else:
            ctx = incoming.child()
        if ctx.sampled is None:
            fraction = self.client_fraction if "x-client-trace-id" in view else self.sampler.fraction
            ctx.sampled = "x-envoy-force-trace" in view or self._random() < fraction
        ctx.w3c = True
        tracing.inject_list(ctx, headers)
        notes.trace = ctx

    def finish(self, flow: Any, notes: _Notes, rec: accesslog.LogRecord) -> None:
        ctx = notes.trace
        if ctx is None or not ctx.sampled:
            return
        host = flow.upstream_host
        tags = tracing.http_tags(
            method=rec.method, url=f"{rec.scheme}://{rec.authority}{rec.path}"[: self.max_path],
            status_code=rec.response_code, response_flags=rec.response_flags,
            upstream_cluster=rec.upstream_cluster, request_id=notes.request_id.decode("latin-1"), protocol=rec.protocol,
            node_id=self.node_id, user_agent=rec.request_headers.get("user-agent") or "-",
            downstream_cluster=rec.request_headers.get("x-envoy-downstream-service-cluster") or "-",
            request_size=str(rec.bytes_received), response_size=str(rec.bytes_sent),
            **{"peer.address": rec.downstream_remote_address})
        if rec.upstream_cluster:
            tags["upstream_cluster.name"] = rec.upstream_cluster
        remote = tracing.Endpoint(ipv4=host.address, port=host.port) \
            if host is not None and not self.ingress and ":" not in host.address else None
        end = flow.end_time - flow.stream.start_time
        self.emitter.start()  # in the running loop; a no-op once started
        self.emitter.emit(tracing.Span(ctx, self.name, self.kind, int(rec.start_time * 1e6), int(end * 1e6),
                                       self.local, remote, tags, shared=notes.shared))


def _collector_url(boot: Bootstrap, cluster: str, endpoint: str, where: str) -> str:
    """http://<the collector cluster's first host><collector_endpoint>."""
    for c in boot.static_resources.clusters:
        if c.name != cluster:
            continue
        la = c.load_assignment
        hosts = [e.endpoint.address.socket_address for g in (la.endpoints if la else ()) for e in g.lb_endpoints]
        if not hosts:
            raise ConfigError(where, f"cluster {cluster!r} has no endpoint to send spans to")
        a = hosts[0]
        host = f"[{a.address}]" if ":" in a.address else a.address
        return f"http://{host}:{a.port_value}{endpoint if endpoint.startswith('/') else '/' + endpoint}"
    raise ConfigError(where, f"unknown cluster {cluster!r}")


def access_logs(entries: Any, telemetry: Telemetry, path: str) -> list[accesslog.AccessLog]:
    """A connection manager's or tcp_proxy's `access_log` entries, their writers shared
    per path in `telemetry`; a bad format is a ConfigError naming the entry."""
    logs: list[accesslog.AccessLog] = []
    for i, entry in enumerate(entries):
        try:
            logs.append(accesslog.from_config(entry, f"{path}.access_log[{i}]", writers=telemetry.writers))
        except accesslog.AccessLogFormatError as e:
            raise ConfigError(f"{path}.access_log[{i}]", str(e)) from None
    return logs


class HcmTelemetry(FilterBase):
    """One connection manager's telemetry: the first HTTP filter and an observer."""

    def __init__(self, hcm: HttpConnectionManager, listener: Listener, boot: Bootstrap, telemetry: Telemetry,
                 path: str) -> None:
        self.generate_request_id = hcm.generate_request_id
        self.reset_external_id = hcm.use_remote_address and not hcm.preserve_external_request_id
        self.always_set_request_id = hcm.always_set_request_id_in_response
        self.clock = flowlog.WallClock()
        self.logs = access_logs(hcm.access_log, telemetry, path)
        # each log's format compiled over the flow itself, with its writer's write
        fields = flowlog.FlowFields(self.clock)
        self._lines = [(log.formatter.compile(fields), log.writer.write) for log in self.logs]
        self.tracer = _Tracer(hcm, listener, boot, telemetry, path) if hcm.tracing is not None else None
        stats = [f.typed_config for f in hcm.http_filters if isinstance(f.typed_config, IstioStats) and not f.disabled]
        self.istio = IstioReporter(stats[0], reporter_name(listener, stats[0]), boot, telemetry.metrics,
                                   telemetry.peers) if stats else None
        self._by_name = fields.request_headers_used or self.istio is not None
        if self.istio is None or not self.istio.adds_upstream:
            self.upstream_headers = None  # type: ignore[assignment]  # not an upstream header editor: no call per request
        self.active = bool(self.logs or self.tracer or self.istio or self.always_set_request_id)

    # -- the start ---------------------------------------------------------------------
    def decode(self, flow: Any) -> bool:
        state = flow.filter_state
        if state is None or "telemetry" not in state:
            self._notes(flow)
        return True

    def _notes(self, flow: Any) -> _Notes:
        """The flow's notes, made (with the request's headers edited) on first use."""
        state = flow.filter_state
        if state is None:
            state = flow.filter_state = {}
        notes = state.get("telemetry")
        if notes is not None:
            return notes
        notes = state["telemetry"] = _Notes()
        head = flow.stream.head
        if head is None:
            return notes
        headers = head.headers
        names = dict(headers)  # one pass in C: which of the few headers looked at are there
        notes.request_id = self._request_id(headers, flow.stream.remote_address, b"x-request-id" in names)
        if self.tracer is not None:
            self.tracer.start(headers, notes)
        if self.istio is not None and (peer.PEER_METADATA in names or peer.PEER_METADATA_ID in names):
            notes.peer_value = self.istio.request(headers)
        return notes

    def _request_id(self, headers: Headers, remote: str, present: bool) -> bytes:
        """Envoy's x-request-id: kept, or generated when absent (`generate_request_id`); an
        external request's own id is replaced unless `preserve_external_request_id`."""
        if present:
            for i, (n, v) in enumerate(headers):
                if n == b"x-request-id":
                    if self.reset_external_id and not is_internal(remote):
                        del headers[i]
                        break
                    return v
        if not self.generate_request_id:
            return b""
        rid = request_id()
        headers.append((b"x-request-id", rid))
        return rid

    def upstream_headers(self, flow: Any, headers: Headers) -> Headers:
        return self.istio.upstream(headers) if self.istio is not None else headers

    def encode(self, flow: Any, status: int, headers: Headers) -> Headers:
        state = flow.filter_state
        notes = state.get("telemetry") if state is not None else None
        if notes is None:
            notes = self._notes(flow)
        if self.istio is not None:
            headers, value = self.istio.response(headers)
            if value is not None:
                notes.peer_value = value
        if self.always_set_request_id and notes.request_id and not any(n == b"x-request-id" for n, _ in headers):
            headers.append((b"x-request-id", notes.request_id))
        notes.response_headers = headers
        return headers

    # -- the end -------------------------------------------------------------------------
    def __call__(self, flow: Any) -> None:
        state = flow.filter_state
        notes = state.get("telemetry") if state is not None else None
        if notes is None:
            notes = self._notes(flow)
            state = flow.filter_state
        self.clock.refresh(flow.end_time)
        hd = None
        if self._by_name:  # the request's headers by name, first value wins (as HeaderView.get)
            hd = dict(reversed(flow.headers if flow.headers is not None else flow.stream.head.headers))
        for line, write in self._lines:
            write(line(flow, notes, hd))
        if self.istio is not None:
            self.istio.record(flow, notes.peer_value, hd)
        if self.tracer is not None:
            self.tracer.finish(flow, notes, self.record(flow, notes))
        # done with the notes: let them go now rather than with the flow (which may wait
        # for the cyclic GC), so they add nothing to its work
        del state["telemetry"]
        if not state:
            flow.filter_state = None

    def record(self, flow: Any, notes: _Notes) -> accesslog.LogRecord:
        """The access log record of a finished flow (what spans read; access logs read
        the same values from the flow directly, see flowlog.FlowFields)."""
        stream = flow.stream
        head = stream.head
        req = HeaderView(flow.headers if flow.headers is not None else head.headers)
        r = flow.result
        sec = getattr(stream.conn, "security", None)
        remote, local = flowlog.addresses(stream.conn)
        self.clock.refresh(flow.end_time)
        return accesslog.LogRecord(
            start_time=self.clock.wall(stream.start_time), method=head.method.decode("latin-1"),
            path=head.path.decode("latin-1"), authority=flow.request.authority if hasattr(flow, "request") else "",
            scheme=flow.h.scheme.decode(), protocol=f"HTTP/{head.version}", response_code=flow.status,
            response_flags=",".join(flow.flags) or "-", response_code_details=flowlog.details(flow),
            bytes_received=stream.received, bytes_sent=stream.body_bytes_sent,
            duration_ms=int((flow.end_time - stream.start_time) * 1000), request_headers=req,
            response_headers=HeaderView(notes.response_headers) if notes.response_headers is not None else {},
            upstream_host=_HOST_TEXT[flow.upstream_host], upstream_cluster=flowlog.cluster_name(flow),
            downstream_remote_address=remote, downstream_local_address=local,
            downstream_peer_uri_san=(sec.peer_principal or "") if sec is not None else "",
            downstream_tls_version=(sec.tls_version or "") if sec is not None else "",
            requested_server_name=(sec.sni or "") if sec is not None else "",
            route_name=r.route.name if r is not None else "")



def build(hcm: HttpConnectionManager, listener: Listener, boot: Bootstrap, telemetry: Telemetry,
          path: str) -> tuple[list[Any], list[Callable[[Any], None]]]:
    """(filters to run first: request id, trace context, peer metadata; observers of
    finished flows). ConfigError names the field of what cannot run."""
    t = HcmTelemetry(hcm, listener, boot, telemetry, path)
    return ([t], [t]) if t.active else ([], [])


def tcp_reporter(listener: Listener, boot: Bootstrap, telemetry: Telemetry, cluster: str) -> TcpReporter:
    """Istio's TCP metrics for one tcp_proxy (see telemetry.istio.TcpReporter)."""
    return TcpReporter(telemetry.metrics, reporter_name(listener, None), boot, cluster)



class TcpAccessLog:
    """A tcp_proxy's `access_log`: one line per connection at its close (a tcp.TcpObserver).
    Fields as Envoy logs a TCP connection: no method, path or code; response flags,
    bytes each way, duration, upstream host and cluster, downstream addresses."""

    def __init__(self, cfg: Any, telemetry: Telemetry, path: str) -> None:
        self.logs = access_logs(cfg.access_log, telemetry, path)

    def opened(self, session: Any) -> None:
        pass

    def data(self, session: Any, received: int, sent: int) -> None:
        pass

    def closed(self, session: Any) -> None:
        loop_now = session.loop.time()
        host = session.upstream_host
        transport = getattr(session, "transport", None)
        local = transport.get_extra_info("sockname") if transport is not None else None
        sec = session.security
        rec = accesslog.LogRecord(
            start_time=time.time() - (loop_now - session.start_time), protocol="", method="", path="",
            response_flags=",".join(session.flags) or "-", bytes_received=session.bytes_received,
            bytes_sent=session.bytes_sent, duration_ms=int((loop_now - session.start_time) * 1000),
            upstream_host=f"{host[0]}:{host[1]}" if host else "", upstream_cluster=session.cluster_name,
            downstream_remote_address=session.remote_address,
            downstream_local_address=f"{local[0]}:{local[1]}" if local else "",
            downstream_peer_uri_san=(sec.peer_principal or "") if sec is not None else "")
        for log in self.logs:
            log.log(rec)
