"""The HTTP connection manager's request flow: one `_Flow` per downstream request.

route -> 404 NR / redirect / direct response, or the HTTP filters' decode step (fault
injection, local rate limit, CORS: each may answer locally or hold the request for a
while), then pick a host and forward with an `Exchange`. On an error the route's retry
policy (`RetryState`) decides whether another attempt goes out (the load balancer avoids
previous hosts when the policy says so); the route timeout answers 504 UT.

Every way a flow ends goes through `_Flow._end`, with the response code and Envoy's
response flags in `flags`: that is where the handler's `observers` (access log, Istio
metrics, tracing) see the finished request. What an observer may read on a flow:

    stream          the downstream Stream (head, start_time, received, bytes_sent, conn)
    result          the RouteResult, or None (no route)
    cluster         the ClusterRuntime, or None
    status          the response code sent downstream (0: none, the stream was reset)
    flags           Envoy's short response flags, in order (["UF", "URX"]); empty: "-"
    host            None once ended; `upstream_host` is the last Host tried
    attempts        upstream attempts made (0: answered locally)
    headers         the request headers sent upstream (x-request-id included), or None
    report          the last attempt's ExchangeReport, or None
    end_time        loop.time() at the end
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from proxy.engine.cluster import Host
from proxy.engine.config import ConfigError
from proxy.engine.config.listener import HttpConnectionManager
from proxy.engine.config.route import RetryPolicy as RouteRetryPolicy
from proxy.engine.headers import Headers, request_headers
from proxy.engine.http1 import Stream
from proxy.engine.lb import HashPolicy, PickContext, compute_hash_key
from proxy.engine.outlier import LocalOrigin
from proxy.engine.retry import (
    Action,
    AttemptOutcome,
    Reset,
    RetryBackOff,
    RetryDecision,
    RetryPolicy,
    RetryState,
)
from proxy.engine.router import Request, Router, RouteResult, apply_header_mutations, query_map
from proxy.engine.runtime import ClusterRuntime
from proxy.engine.shadow import send_shadow
from proxy.engine.telemetry.stats import HttpStats, StatsStore
from proxy.engine.upstream import FAILURE_REASONS, RESET_BODY, Exchange, ExchangeReport

log = logging.getLogger("proxy.engine.flow")

_RESETS = {"connect_failure": Reset.CONNECT_FAILURE, "reset": Reset.CONNECTION_TERMINATION,
           "overflow": Reset.OVERFLOW}
# an attempt's failure -> Envoy's response flag when it is the last one
_FAILURE_FLAGS = {"connect_failure": "UF", "overflow": "UO", "reset": "UC"}
_LOCAL_ORIGIN = {"connect_failure": LocalOrigin.CONNECT_FAILED, "reset": LocalOrigin.RESET}
_OVERFLOW_BODY = RESET_BODY + FAILURE_REASONS["overflow"]
_OVERLOADED = [(b"x-envoy-overloaded", b"true")]


class HttpFilterRuntime(Protocol):
    """One HTTP filter of a connection manager at run time (see filters.py).

    `decode(flow)` runs after routing, before the upstream: True lets the request go on;
    False means the filter took it over, and will either answer (`flow.local_reply`) or
    call `flow.resume()` later (a fault delay). `encode(flow, status, headers)` may edit
    the response headers of an upstream response; it returns the headers to send."""

    def decode(self, flow: _Flow) -> bool: ...

    def encode(self, flow: _Flow, status: int, headers: Headers) -> Headers: ...


class UpstreamHeaderEditor(Protocol):
    """Optional on a filter: `upstream_headers(flow, headers) -> headers` edits the request
    headers going upstream after the connection manager's own handling (hop-by-hop,
    x-forwarded-*, x-envoy-* sanitizing on an edge listener), as Envoy's filters see
    them: what a filter adds here is not stripped."""

    def upstream_headers(self, flow: _Flow, headers: Headers) -> Headers: ...


def hash_policies(policies: tuple) -> tuple[HashPolicy, ...]:
    """The route's config hash_policy list as lb.HashPolicy values."""
    out = []
    for p in policies:
        if p.header is not None:
            out.append(HashPolicy(header_name=p.header.header_name, terminal=p.terminal))
        elif p.cookie is not None:
            out.append(HashPolicy(cookie_name=p.cookie.name, terminal=p.terminal))
        elif p.query_parameter is not None:
            out.append(HashPolicy(query_parameter_name=p.query_parameter.name, terminal=p.terminal))
        elif p.connection_properties is not None and p.connection_properties.source_ip:
            out.append(HashPolicy(source_ip=True, terminal=p.terminal))
    return tuple(out)


def _cookie(headers: list[tuple[str, str]], name: str) -> str | None:
    for n, v in headers:
        if n == "cookie":
            for part in v.split(";"):
                k, _, val = part.strip().partition("=")
                if k == name:
                    return val
    return None


def retry_policy(p: RouteRetryPolicy | None) -> RetryPolicy | None:
    """The route's config RetryPolicy as retry.RetryPolicy (retriable_request_headers: not yet)."""
    if p is None:
        return None
    back_off = RetryBackOff(p.retry_back_off.base_interval, p.retry_back_off.max_interval) \
        if p.retry_back_off is not None else RetryBackOff()
    return RetryPolicy(retry_on=p.retry_on, num_retries=p.num_retries, per_try_timeout=p.per_try_timeout,
                       retriable_status_codes=p.retriable_status_codes, retry_back_off=back_off,
                       retry_host_predicate=tuple(x.name for x in p.retry_host_predicate),
                       host_selection_retry_max_attempts=p.host_selection_retry_max_attempts)


class DecodedHeaders(Sequence):
    """The request's (bytes, bytes) headers as (str, str) pairs, decoded on first use:
    most requests are routed on authority and path alone, so most never pay for it."""

    __slots__ = ("raw", "_decoded")

    def __init__(self, raw: Headers) -> None:
        self.raw = raw
        self._decoded: list[tuple[str, str]] | None = None

    def _list(self) -> list[tuple[str, str]]:
        d = self._decoded
        if d is None:
            d = self._decoded = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw]
        return d

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self._list()[i]


class _NoRetries:
    """The retry state of a route without a retry policy (most routes): nothing to keep
    per request, so one shared object answers for all of them."""

    policy = None
    retries_done = 0
    _plain = PickContext()

    def pick_context(self, hash_key: int | None = None) -> PickContext:
        return self._plain if hash_key is None else PickContext(hash_key=hash_key)

    def host_used(self, host: object) -> None:
        pass

    def decide(self, outcome: AttemptOutcome) -> RetryDecision:
        return _PASS

    def finish(self) -> None:
        pass


_PASS = RetryDecision(Action.PASS)
_NO_RETRIES = _NoRetries()


class HttpConnectionManagerHandler:
    """The http1.Handler of one listener's http_connection_manager.

    `filters`: the HTTP filters before the router, in config order; `observers`:
    callables given each finished flow. Both are filled by whoever builds the handler
    (server.py); the handler itself only routes and forwards."""

    def __init__(self, hcm: HttpConnectionManager, port: int, clusters: dict[str, ClusterRuntime],
                 store: StatsStore, *, filters: list[HttpFilterRuntime] | None = None,
                 observers: list[Callable[[_Flow], None]] | None = None) -> None:
        if hcm.route_config is None:
            raise ConfigError("http_connection_manager.rds", "RDS is not yet supported: use route_config")
        self.config = hcm
        self.router = Router(hcm.route_config)
        self.port = port
        self.clusters = clusters
        self.stats = HttpStats(store, hcm.stat_prefix)
        self.edge = hcm.use_remote_address
        self.filters: list[HttpFilterRuntime] = filters or []
        self.encoders = [f for f in self.filters if type(f).encode is not _no_encode]
        self.upstream_editors: list[UpstreamHeaderEditor] = [
            f for f in self.filters if callable(getattr(f, "upstream_headers", None))]  # type: ignore[misc]
        self.observers: list[Callable[[_Flow], None]] = observers or []
        self.scheme = b"http"
        # route config -> run-time form (retry.RetryPolicy, lb.HashPolicy), converted once
        # per config object (they live as long as the router, so their id is stable)
        self._converted: dict[int, tuple[object, Any]] = {}

    def _once(self, p: Any, convert: Callable[[Any], Any]) -> Any:
        hit = self._converted.get(id(p))
        if hit is None or hit[0] is not p:
            hit = self._converted[id(p)] = (p, convert(p))
        return hit[1]

    def retry_policy(self, p: RouteRetryPolicy | None) -> RetryPolicy | None:
        return None if p is None else self._once(p, retry_policy)

    def hash_policies(self, policies: tuple) -> tuple[HashPolicy, ...]:
        return self._once(policies, hash_policies)

    def __call__(self, stream: Stream) -> None:
        _Flow(self, stream).start()


def _no_encode(self: Any, flow: _Flow, status: int, headers: Headers) -> Headers:
    return headers


class FilterBase:
    """A convenient base for HttpFilterRuntime: passes everything through."""

    def decode(self, flow: _Flow) -> bool:
        return True

    encode = _no_encode


class _FlowExchange(Exchange):
    """An Exchange that also tells its flow when the client went away (no other callback
    reports it), so the host's active request count and the route timer are released."""

    __slots__ = ("flow",)

    def downstream_reset(self) -> None:
        super().downstream_reset()
        if self.flow is not None:
            self.flow._downstream_reset(self)


class _Flow:
    """One downstream request through route, filters, attempts and the route timeout."""

    __slots__ = ("h", "stream", "loop", "result", "cluster", "state", "headers", "method", "path", "request",
                 "exchange", "timer", "retry_timer", "try_timer", "finished", "host", "upstream_host", "flags",
                 "status", "attempts", "report", "end_time", "_filter_at", "filter_state", "hash_key",
                 "_mirrors")

    def __init__(self, h: HttpConnectionManagerHandler, stream: Stream) -> None:
        self.h = h
        self.stream = stream
        self.loop = stream.conn.loop
        self.result: RouteResult | None = None
        self.cluster: ClusterRuntime | None = None
        self.headers: Headers | None = None
        self.exchange: Exchange | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.retry_timer: asyncio.TimerHandle | None = None
        self.try_timer: asyncio.TimerHandle | None = None
        self.finished = False
        self.host: Host | None = None
        self.upstream_host: Host | None = None
        self.flags: list[str] = []
        self.status = 0
        self.attempts = 0
        self.report: ExchangeReport | None = None
        self.end_time = 0.0
        self._filter_at = 0
        self.filter_state: dict[str, Any] | None = None  # filters' per-request notes
        self.hash_key: int | None = None
        self._mirrors: tuple[str, ...] = ()

    # -- the end -----------------------------------------------------------------------
    def _end(self, status: int) -> None:
        """The flow is over (answered, or reset): stats and observers, once."""
        self.status = status
        self.end_time = self.loop.time()
        if self._mirrors:
            self._mirror()
        for observe in self.h.observers:
            try:
                observe(self)
            except Exception:  # an observer must not break the data path
                log.exception("observer %r failed", observe)
        self._unlink()

    def _unlink(self) -> None:
        """Break the flow <-> exchange <-> timer reference cycles, so the request's objects
        are freed by reference counting at once rather than by the cyclic GC later (whose
        full collections were 20-46 ms pauses under load)."""
        ex = self.report
        if isinstance(ex, Exchange):
            ex.on_error = ex.on_complete = ex.retry_on_status = ex.on_response_headers = None
            if isinstance(ex, _FlowExchange):
                ex.flow = None  # type: ignore[assignment]
        self.timer = self.retry_timer = self.try_timer = None

    def _host_done(self, error: bool) -> Host | None:
        """The current attempt's host is free again (LEAST_REQUEST's count, /clusters'
        rq_error, the cluster's active requests); returns it."""
        host, self.host = self.host, None
        if self.try_timer is not None:
            self.try_timer.cancel()
            self.try_timer = None
        if host is not None:
            host.active_requests -= 1
            host.rq_error += error
            if self.cluster is not None:
                self.cluster.active_requests -= 1
        return host

    def local_reply(self, status: int, body: bytes = b"", headers: Headers | None = None,
                    flag: str | None = None) -> None:
        """Answer without (more of) the upstream; `flag` is the response flag to record."""
        if self.finished:
            return
        self.finished = True
        if flag is not None:
            self.flags.append(flag)
        if self.timer is not None:
            self.timer.cancel()
        if self.retry_timer is not None:
            self.retry_timer.cancel()
        if self.try_timer is not None:
            self.try_timer.cancel()
        self.h.stats.response(status)
        hs: Headers = list(headers or ())
        for f in self.h.encoders:  # as Envoy: local replies pass the encoder filters too
            hs = f.encode(self, status, hs)
        self.stream.local_reply(status, body, hs)
        self._end(status)

    def abandon(self) -> None:
        """The client left while a filter held the request: nothing went upstream; the
        flow ends with code 0 and DC so observers still see it."""
        if self.finished:
            return
        self.finished = True
        self.flags.append("DC")
        self._end(0)

    # -- the start: route, then filters ----------------------------------------------
    def start(self) -> None:
        head = self.stream.head
        assert head is not None
        stats = self.h.stats
        stats.downstream_rq_total.value += 1
        (stats.downstream_rq_http2_total if head.version == "2" else stats.downstream_rq_http1_total).value += 1
        authority = ""
        for n, v in head.headers:
            if n == b"host":
                authority = v.decode("latin-1")
                break
        self.request = Request(authority, head.path.decode("latin-1"), head.method.decode("latin-1"),
                               DecodedHeaders(head.headers), self.h.port,
                               "https" if self.h.scheme == b"https" else "http")
        r = self.result = self.h.router.route(self.request)
        if r is None:
            stats.no_route.value += 1
            self.local_reply(404, flag="NR")
            return
        if r.action == "redirect":
            stats.rq_redirect.value += 1
            self.local_reply(r.status, b"", [(b"location", r.location.encode("latin-1"))])
            return
        if r.action == "direct_response":
            stats.rq_direct_response.value += 1
            self.local_reply(r.status, r.body)
            return
        self.resume()

    def resume(self) -> None:
        """Run the remaining decode filters, then forward (a filter that held the
        request calls this when it lets it go)."""
        filters = self.h.filters
        while self._filter_at < len(filters):
            f = filters[self._filter_at]
            self._filter_at += 1
            if not f.decode(self):
                return
        if self.finished or self.stream.done or self.stream.conn.closed:
            return
        self._forward()

    def _forward(self) -> None:
        r = self.result
        assert r is not None
        head = self.stream.head
        assert head is not None
        cluster = self.h.clusters.get(r.cluster)
        if cluster is None:
            self.local_reply(503, flag="NC")  # Envoy's cluster_not_found_response_code default
            return
        self.cluster = cluster
        out = request_headers(head.headers, remote_address=self.stream.conn.remote_address_bytes,
                              edge=self.h.edge, upgrade=head.upgrade, scheme=self.h.scheme,
                              generate_request_id=self.h.config.generate_request_id)
        self.headers = self._mutate(out, r)
        for editor in self.h.upstream_editors:
            self.headers = editor.upstream_headers(self, self.headers)
        self.method = head.method
        self.path = r.path.encode("latin-1") if r.path else head.path
        policy = self.h.retry_policy(r.retry_policy)
        self.state = _NO_RETRIES if policy is None else RetryState(  # type: ignore[assignment]
            policy, clock=self.loop.time, route_timeout=r.timeout or None, circuit=cluster.circuit)
        if r.hash_policy and cluster.config.lb_policy in ("RING_HASH", "MAGLEV"):
            hs = self.request.headers
            self.hash_key = compute_hash_key(
                self.h.hash_policies(r.hash_policy), headers=lambda n: next((v for k, v in hs if k == n), None),
                cookies=lambda n: _cookie(hs, n), query=lambda n: query_map(self.request.path.partition("?")[2]).get(n),
                source_ip=self.stream.remote_address)
        if r.mirrors:
            self._mirrors = r.mirrors
            if self.stream.body_complete:
                self._mirror()
        if r.timeout:
            self.timer = self.loop.call_later(r.timeout, self._timeout)
        self._attempt()

    def _mirror(self) -> None:
        """Copies of the request to the route's mirror clusters (fire and forget); a
        request whose body is still arriving is copied when the flow ends."""
        names, self._mirrors = self._mirrors, ()
        stream = self.stream
        kept = stream._kept
        if kept is None or not stream.body_complete or self.headers is None:
            return  # the body outgrew the buffer: it cannot be copied
        for name in names:
            c = self.h.clusters.get(name)
            host = c.lb.pick(None) if c is not None else None
            if host is None:
                continue
            assert c is not None
            c.stats.upstream_rq_total.value += 1
            send_shadow(c.pools[(host.address, host.port)], stream.head, self.headers, self.path, list(kept))

    @staticmethod
    def _mutate(out: list, r: RouteResult) -> list:
        if not r.request_mutations and r.host is None:
            return out
        hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in out]
        hs = apply_header_mutations(hs, r.request_mutations)
        if r.host is not None:
            hs = [(n, r.host if n == "host" else v) for n, v in hs]
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in hs]

    def _response_headers(self, status: int, headers: Headers) -> Headers:
        """The upstream response's headers on their way down: route mutations, filters."""
        r = self.result
        if r is not None and r.response_mutations:
            hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
            hs = apply_header_mutations(hs, r.response_mutations)
            headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in hs]
        for f in self.h.encoders:
            headers = f.encode(self, status, headers)
        return headers

    # -- attempts --------------------------------------------------------------------
    def _gone(self) -> bool:
        return self.finished or self.stream.done or self.stream.conn.closed

    def _attempt(self) -> None:
        self.retry_timer = None
        if self._gone():
            return
        c = self.cluster
        assert c is not None
        host = c.lb.pick(self.state.pick_context(self.hash_key))
        if host is None:
            self.state.finish()
            self.local_reply(503, b"no healthy upstream", flag="UH")
            return
        if c.active_requests >= c.circuit.thresholds.max_requests:
            c.circuit.upstream_rq_pending_overflow += 1
            c.stats.upstream_rq_pending_overflow.value += 1
            self.state.finish()
            self.local_reply(503, _OVERFLOW_BODY, list(_OVERLOADED), flag="UO")
            return
        self.state.host_used(host)
        self.host = self.upstream_host = host
        self.attempts += 1
        host.rq_total += 1
        host.active_requests += 1
        c.active_requests += 1
        c.stats.upstream_rq_total.value += 1
        ex = self.exchange = _FlowExchange(self.stream, c.pools[(host.address, host.port)], self.headers,
                                           method=self.method, path=self.path, on_error=self._on_error,
                                           on_complete=self._on_complete, retry_on_status=self._retry_status)
        ex.flow = self
        if self.result is not None and (self.result.response_mutations or self.h.encoders):
            ex.on_response_headers = self._response_headers
        p = self.state.policy
        if p is not None and p.per_try_timeout:
            self.try_timer = self.loop.call_later(p.per_try_timeout, self._per_try_timeout, ex)
        ex.start()

    def _per_try_timeout(self, ex: Exchange) -> None:
        """The attempt took longer than per_try_timeout: abandon it and maybe retry. Once
        the response has begun going downstream only the route timeout applies (Envoy)."""
        self.try_timer = None
        if self.exchange is not ex or self._gone() or ex._started:
            return
        self.exchange = None
        c = self.cluster
        assert c is not None
        c.stats.upstream_rq_per_try_timeout.value += 1
        host = self._host_done(True)
        ex.downstream_reset()  # abandon the upstream attempt (its connection is closed)
        self.stream.detach()
        if host is not None:
            c.report(host, local=LocalOrigin.TIMEOUT)
        self._decide(AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT), "timeout", 0)

    def _retry_status(self, status: int) -> bool:
        """Claim a response for a retry only when one will go out (its body is dropped)."""
        p = self.state.policy
        return (p is not None and self.state.retries_done < p.num_retries and self.stream.retryable
                and RetryState.retriable(p, AttemptOutcome(status=status)))

    def _on_error(self, report: ExchangeReport) -> None:
        self.exchange = None
        self.report = report
        host = self._host_done(True)
        if self._gone():
            return
        c = self.cluster
        assert c is not None
        if report.outcome == "status":
            c.stats.response(report.status)
            if host is not None:
                c.report(host, status=report.status)
            outcome = AttemptOutcome(status=report.status)
        else:
            if report.outcome == "connect_failure":
                c.stats.upstream_cx_connect_fail.value += 1
            local = _LOCAL_ORIGIN.get(report.outcome)
            if host is not None and local is not None:
                c.report(host, local=local)
            reset = _RESETS.get(report.outcome, Reset.CONNECTION_TERMINATION)
            outcome = AttemptOutcome(reset=reset, request_sent=reset is not Reset.CONNECT_FAILURE)
        self._decide(outcome, report.outcome, report.status)

    def _decide(self, outcome: AttemptOutcome, what: str, status: int) -> None:
        """After a failed attempt: retry, or wait for the route timeout, or answer."""
        c = self.cluster
        assert c is not None
        decision = self.state.decide(outcome)
        if decision.action is Action.RETRY and self.stream.retryable:
            c.stats.upstream_rq_retry.value += 1
            self.retry_timer = self.loop.call_later(decision.delay, self._attempt)
            return
        if decision.action is Action.TIMEOUT and self.timer is not None:
            return  # the route timer answers 504
        if decision.action is Action.OVERFLOW:
            c.stats.upstream_rq_retry_overflow.value += 1
        self.state.finish()
        if decision.action is Action.EXHAUSTED:
            self.flags.append("URX")
        if what == "status":
            self.local_reply(status or 503)
        elif what == "timeout":
            self.local_reply(504, b"upstream request timeout", flag="UT")
        else:
            extra = list(_OVERLOADED) if what == "overflow" else []
            self.local_reply(503, RESET_BODY + FAILURE_REASONS.get(what, b"connection termination"),
                             extra, flag=_FAILURE_FLAGS.get(what, "UC"))

    def _on_complete(self, report: ExchangeReport) -> None:
        self.exchange = None
        self.report = report
        host = self._host_done(report.outcome != "ok" or report.status >= 500)
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.state.finish()
        c = self.cluster
        assert c is not None
        if report.status:
            c.stats.response(report.status)
            self.h.stats.response(report.status)
            if host is not None:
                c.report(host, status=report.status)
            p = self.state.policy
            if (p is not None and p.num_retries and self.state.retries_done >= p.num_retries
                    and RetryState.retriable(p, AttemptOutcome(status=report.status))):
                self.flags.append("URX")  # the last retry's response is retriable too
        elif host is not None:
            c.report(host, local=LocalOrigin.RESET)
        if report.outcome != "ok":
            self.flags.append("UR")  # upstream reset after the response began
        self._end(report.status if report.outcome == "ok" else 0)

    def _downstream_reset(self, ex: Exchange) -> None:
        if self.exchange is not ex:
            return  # our own abandon (the route timeout), already accounted
        self.exchange = None
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self._host_done(False)
        self.state.finish()
        self.flags.append("DC")
        self._end(self.stream.status)

    def _timeout(self) -> None:
        self.timer = None
        if self._gone():
            return
        assert self.cluster is not None
        self.cluster.stats.upstream_rq_timeout.value += 1
        self.h.stats.downstream_rq_timeout.value += 1
        if self.retry_timer is not None:
            self.retry_timer.cancel()
        ex, self.exchange = self.exchange, None
        if ex is not None:
            host = self._host_done(True)
            ex.downstream_reset()  # abandon the upstream attempt
            if host is not None:
                self.cluster.report(host, local=LocalOrigin.TIMEOUT)
        self.stream.detach()
        self.state.finish()
        if self.stream.response_started:
            self.finished = True
            self.flags.append("UT")
            self.stream.reset()
            self._end(0)
        else:
            self.local_reply(504, b"upstream request timeout", flag="UT")
