"""The HTTP filters of a connection manager at run time (flow.HttpFilterRuntime): built
from `http_connection_manager.http_filters`, in order; the router filter is the flow
itself and must come last.

Each runtime is built once per config generation and keeps what outlives a request:
token buckets, the fault filter's active-fault count, stats. Per-route configs
(`typed_per_filter_config`, keyed by the filter's name; RouteResult gives the most
specific level) are compiled here too, so bad ones fail at load time with their path,
and each route gets its own bucket as in Envoy (keyed by the config object's identity:
two routes with equal configs still have two buckets).

A filter marked `disabled` runs only on routes that carry a per-filter config for it
(Envoy enables a disabled filter that way). A config type with `OBSERVER = True` is not
a request filter (it sees finished flows; observe.py builds it).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from proxy.engine import fault as fault_mod
from proxy.engine import ratelimit as rl_mod
from proxy.engine.config import ConfigError
from proxy.engine.config.core import FractionalPercent as CfgPercent
from proxy.engine.config.core import HeaderValueOption
from proxy.engine.config.http_filters import Cors, HTTPFault, LocalRateLimit, Router
from proxy.engine.config.listener import HttpConnectionManager
from proxy.engine.cors import CorsFilter
from proxy.engine.flow import FilterBase, HttpFilterRuntime, _Flow
from proxy.engine.router import HeaderMutation, apply_header_mutations, header_map, header_matcher
from proxy.engine.telemetry.stats import StatsStore

FAULT_ABORT_BODY = b"fault filter abort"
RATE_LIMITED_BODY = b"local_rate_limited"


def build(hcm: HttpConnectionManager, path: str, store: StatsStore) -> list[HttpFilterRuntime]:
    """The filters before the router; ConfigError (with its path) for what is not runnable."""
    out: list[HttpFilterRuntime] = []
    active = [i for i, f in enumerate(hcm.http_filters) if not f.disabled]
    for i, f in enumerate(hcm.http_filters):
        where = f"{path}.http_filters[{i}]"
        cfg = f.typed_config
        if isinstance(cfg, Router):
            if f.disabled or i != active[-1]:
                raise ConfigError(where, "the router filter must be the last HTTP filter")
            continue
        if getattr(type(cfg), "OBSERVER", False):
            continue
        routes = dict(_per_route(hcm, f.name, f"{path}.route_config"))
        runtime: _Filter | CorsFilter
        if isinstance(cfg, HTTPFault):
            runtime = FaultFilter(f.name, cfg, routes, hcm.stat_prefix, store, f"{where}.typed_config")
        elif isinstance(cfg, LocalRateLimit):
            runtime = LocalRateLimitFilter(f.name, cfg, routes, store, f"{where}.typed_config")
        elif isinstance(cfg, Cors):
            runtime = CorsFilter(f.name, routes, hcm.stat_prefix, store)
        elif f.is_optional:
            continue  # Envoy skips an optional filter it does not know
        else:
            raise ConfigError(where, f"HTTP filter {f.name!r} is not supported at run time")
        runtime.disabled = f.disabled
        out.append(runtime)
    return out


def _per_route(hcm: HttpConnectionManager, name: str, path: str) -> Iterator[tuple[str, Any]]:
    """(path, config) of every typed_per_filter_config entry for filter `name`."""
    rc = hcm.route_config
    if rc is None:
        return
    key = "typed_per_filter_config"
    for v, vh in enumerate(rc.virtual_hosts):
        vp = f"{path}.virtual_hosts[{v}]"
        if name in vh.typed_per_filter_config:
            yield f"{vp}.{key}.{name}", vh.typed_per_filter_config[name]
        for r, route in enumerate(vh.routes):
            rp = f"{vp}.routes[{r}]"
            if name in route.typed_per_filter_config:
                yield f"{rp}.{key}.{name}", route.typed_per_filter_config[name]
            weighted = route.route.weighted_clusters if route.route is not None else None
            for w, wc in enumerate(weighted.clusters if weighted is not None else ()):
                if name in wc.typed_per_filter_config:
                    yield f"{rp}.route.weighted_clusters.clusters[{w}].{key}.{name}", wc.typed_per_filter_config[name]


class _Filter(FilterBase):
    """What the filters here share: their name, and `disabled` (run only where a route
    configures them)."""

    name: str
    disabled: bool = False

    def route_config(self, flow: _Flow) -> Any:
        r = flow.result
        return r.per_filter_config.get(self.name) if r is not None else None

    def skip(self, flow: _Flow, route_cfg: Any) -> bool:
        return self.disabled and route_cfg is None


def _percent(p: CfgPercent | None) -> fault_mod.FractionalPercent:
    if p is None:
        return fault_mod.FractionalPercent()
    return fault_mod.FractionalPercent(p.numerator, p.denominator)


# --- fault injection ---------------------------------------------------------------


def _fault_settings(cfg: HTTPFault, path: str) -> tuple[fault_mod.HTTPFault, list]:
    """The config message as fault.HTTPFault plus its compiled `headers` matchers.
    `header_delay` / `header_abort` are read when the config schema carries them."""
    delay = abort = None
    if cfg.delay is not None:
        d = cfg.delay
        header = getattr(d, "header_delay", None) is not None
        delay = fault_mod.FaultDelay(fixed_delay=None if header else d.fixed_delay, header_delay=header,
                                     percentage=_percent(d.percentage))
    if cfg.abort is not None:
        a = cfg.abort
        header = getattr(a, "header_abort", None) is not None
        abort = fault_mod.FaultAbort(http_status=a.http_status, grpc_status=a.grpc_status, header_abort=header,
                                     percentage=_percent(a.percentage))
    matchers = [header_matcher(h, f"{path}.headers[{i}]") for i, h in enumerate(cfg.headers)]
    return fault_mod.HTTPFault(delay=delay, abort=abort, upstream_cluster=cfg.upstream_cluster,
                               max_active_faults=cfg.max_active_faults), matchers


class FaultFilter(_Filter):
    """envoy.filters.http.fault: a delay (held on a loop timer, flag DI), then maybe an
    abort (local reply "fault filter abort", flag FI). Stats http.<prefix>.fault.*.

    A fault counts as active from its decision until its delay is over or its abort is
    sent (Envoy holds it until the stream ends; the difference is the upstream time of
    a delayed request, which max_active_faults then does not count)."""

    def __init__(self, name: str, cfg: HTTPFault, routes: dict[str, Any], stat_prefix: str, store: StatsStore,
                 path: str) -> None:
        self.name = name
        self.settings = _fault_settings(cfg, path)
        self.routes: dict[int, tuple[fault_mod.HTTPFault, list]] = {}
        for where, rcfg in routes.items():
            if not isinstance(rcfg, HTTPFault):
                raise ConfigError(where, f"filter {name!r} is a fault filter: expected an HTTPFault config")
            self.routes[id(rcfg)] = _fault_settings(rcfg, where)

        def make(stat: str) -> Any:
            if stat == "active_faults":
                return store.gauge("http", stat_prefix, "fault.active_faults")
            return store.counter("http", stat_prefix, f"fault.{stat}")
        self.injector = fault_mod.FaultInjector(self.settings[0], stats=fault_mod.FaultStats(make))

    def decode(self, flow: _Flow) -> bool:
        rcfg = self.route_config(flow)
        if self.skip(flow, rcfg):
            return True
        settings, matchers = self.routes.get(id(rcfg), self.settings) if rcfg is not None else self.settings
        if settings.delay is None and settings.abort is None:
            return True
        hs = header_map(flow.request)
        if flow.h.edge:  # an edge proxy does not let an external client steer x-envoy-* behaviour
            hs = {k: v for k, v in hs.items() if not k.startswith("x-envoy-")}
        if matchers and not all(m(hs) for m in matchers):
            return True
        r = flow.result
        d = self.injector.decide(hs, cluster=r.cluster if r is not None else "", config=settings)
        if not d.active:
            return True
        if d.delay > 0:
            flow.flags.append("DI")
            flow.loop.call_later(d.delay, self._delay_over, flow, d)
            return False
        self._abort(flow, d)
        return False

    def _delay_over(self, flow: _Flow, d: fault_mod.FaultDecision) -> None:
        if d.http_status is None and d.grpc_status is None:
            self.injector.end(d)
            if flow.finished or flow.stream.done or flow.stream.conn.closed:
                _abandoned(flow)
                return
            flow.resume()
            return
        self._abort(flow, d)

    def _abort(self, flow: _Flow, d: fault_mod.FaultDecision) -> None:
        self.injector.end(d)
        if flow.finished or flow.stream.done or flow.stream.conn.closed:
            _abandoned(flow)
            return
        if d.http_status is not None:
            flow.local_reply(d.http_status, FAULT_ABORT_BODY, flag="FI")
        else:  # a gRPC error: trailers-only response, HTTP 200
            flow.local_reply(200, b"", [(b"content-type", b"application/grpc"),
                                        (b"grpc-status", str(d.grpc_status).encode()),
                                        (b"grpc-message", FAULT_ABORT_BODY)], flag="FI")


def _abandoned(flow: _Flow) -> None:
    """The client left while its request was held: nothing goes upstream; the flow ends
    with code 0 and DC (downstream connection termination) so observers still see it."""
    flow.abandon()


# --- local rate limit ---------------------------------------------------------------


def _rl_config(cfg: LocalRateLimit, path: str) -> rl_mod.LocalRateLimit:
    def pct(p: Any) -> rl_mod.RuntimeFractionalPercent | None:
        return rl_mod.RuntimeFractionalPercent(_percent(p.default_value), p.runtime_key) if p is not None else None

    bucket = None
    if cfg.token_bucket is not None:
        tb = cfg.token_bucket
        bucket = rl_mod.TokenBucket(tb.max_tokens, tb.fill_interval, tb.tokens_per_fill)
    if cfg.enable_x_ratelimit_headers != "OFF":
        raise ConfigError(f"{path}.enable_x_ratelimit_headers", "only OFF is supported")
    return rl_mod.LocalRateLimit(
        stat_prefix=cfg.stat_prefix, token_bucket=bucket, filter_enabled=pct(cfg.filter_enabled),
        filter_enforced=pct(cfg.filter_enforced), status=cfg.status_code,
        response_headers_to_add=tuple(rl_mod.HeaderValueOption(h.header.key, h.header.value,
                                                               h.action == "APPEND_IF_EXISTS_OR_ADD")
                                      for h in cfg.response_headers_to_add))


class _Bucket:
    """One LocalRateLimit config's limiter (or one per downstream connection), made on
    first use so that it runs on the serving loop's clock."""

    def __init__(self, cfg: LocalRateLimit, store: StatsStore, path: str) -> None:
        self.config = cfg
        self.rl = _rl_config(cfg, path)
        prefix = cfg.stat_prefix
        self.counters = rl_mod.LimiterCounters(
            lambda stat: store.counter(prefix, "", f"http_local_rate_limit.{stat}"))
        self.shared: rl_mod.LocalRateLimiter | None = None
        self.per_connection: weakref.WeakKeyDictionary[Any, rl_mod.LocalRateLimiter] = weakref.WeakKeyDictionary()

    def limiter(self, flow: _Flow) -> rl_mod.LocalRateLimiter:
        if self.config.local_rate_limit_per_downstream_connection:
            conn = flow.stream.conn
            lim = self.per_connection.get(conn)
            if lim is None:
                lim = self.per_connection[conn] = rl_mod.LocalRateLimiter(self.rl, clock=flow.loop.time,
                                                                          counters=self.counters)
            return lim
        if self.shared is None:
            self.shared = rl_mod.LocalRateLimiter(self.rl, clock=flow.loop.time, counters=self.counters)
        return self.shared


class LocalRateLimitFilter(_Filter):
    """envoy.filters.http.local_ratelimit: the listener's bucket, or the route's own when
    the route configures one (which then replaces the listener's config entirely)."""

    def __init__(self, name: str, cfg: LocalRateLimit, routes: dict[str, Any], store: StatsStore,
                 path: str) -> None:
        self.name = name
        self.default = _Bucket(cfg, store, path)
        self.routes: dict[int, _Bucket] = {}
        for where, rcfg in routes.items():
            if not isinstance(rcfg, LocalRateLimit):
                raise ConfigError(where, f"filter {name!r} is a local rate limit: expected a LocalRateLimit config")
            if rcfg.token_bucket is None:
                raise ConfigError(f"{where}.token_bucket", "must be set for per filter configs")
            self.routes[id(rcfg)] = _Bucket(rcfg, store, where)

    def decode(self, flow: _Flow) -> bool:
        rcfg = self.route_config(flow)
        if self.skip(flow, rcfg):
            return True
        bucket = self.routes.get(id(rcfg), self.default) if rcfg is not None else self.default
        d = bucket.limiter(flow).check()
        if d.verdict is rl_mod.Verdict.ALLOW:
            return True
        if d.verdict is rl_mod.Verdict.ALLOW_NOT_ENFORCED:
            _add_request_headers(flow, bucket.config.request_headers_to_add_when_not_enforced)
            return True
        hs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in d.response_headers]
        flow.local_reply(d.status, RATE_LIMITED_BODY, hs, flag=d.flag)
        return False


def _add_request_headers(flow: _Flow, options: tuple[HeaderValueOption, ...]) -> None:
    """Edit the downstream request's headers in place (what later filters and the
    upstream request see), with each option's append action."""
    head = flow.stream.head
    if not options or head is None:
        return
    hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers]
    hs = apply_header_mutations(hs, (HeaderMutation(add=options),))
    head.headers[:] = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in hs]


__all__ = ["CorsFilter", "FaultFilter", "LocalRateLimitFilter", "build"]
