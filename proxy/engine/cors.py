"""Envoy's CORS filter (envoy.filters.http.cors) at run time.

The policy lives on routes and virtual hosts (`typed_per_filter_config` with a
CorsPolicy under the filter's name); the filter itself carries nothing. As in Envoy,
each field is taken from the most specific level that sets it (weighted cluster or
route, then virtual host), and `filter_enabled` (default 100 %) / `shadow_enabled` from
the most specific policy.

- A request without an Origin header, or with no policy, passes untouched.
- The origin is checked against allow_origin_string_match (a matcher that accepts "*"
  accepts every origin): stats http.<prefix>.cors.origin_valid / origin_invalid.
- A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
  origin is answered here: 200 with access-control-allow-origin, -credentials,
  -methods, -headers, -max-age (allow_methods / allow_headers "*" echo the request's).
  A preflight from another origin goes upstream (Envoy's forward_not_matching_preflights
  default).
- Any other request from an allowed origin goes upstream, and the response gets
  access-control-allow-origin (the request's origin), -allow-credentials and
  -expose-headers on its way down (`encode`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from proxy.engine.config import ConfigError
from proxy.engine.config.http_filters import CorsPolicy
from proxy.engine.flow import FilterBase, _Flow
from proxy.engine.headers import Headers
from proxy.engine.router import string_matcher
from proxy.engine.telemetry.stats import StatsStore

_ALLOW_ORIGIN = b"access-control-allow-origin"
_ALLOW_CREDENTIALS = b"access-control-allow-credentials"
_EXPOSE_HEADERS = b"access-control-expose-headers"


class _Policy:
    """One CorsPolicy, its origin matchers compiled."""

    def __init__(self, p: CorsPolicy, path: str) -> None:
        self.config = p
        self.origins: list[Callable[[str], bool]] = [
            string_matcher(m, f"{path}.allow_origin_string_match[{i}]")
            for i, m in enumerate(p.allow_origin_string_match)]


def _hit(p: Any, default: bool, rand: random.Random) -> bool:
    """A RuntimeFractionalPercent draw (its default_value; no runtime here)."""
    if p is None:
        return default
    v = p.default_value
    scale = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}[v.denominator]
    return rand.randrange(scale) < v.numerator


class CorsFilter(FilterBase):
    """The CORS filter of one connection manager."""

    name: str
    disabled: bool = False

    def __init__(self, name: str, routes: dict[str, Any], stat_prefix: str, store: StatsStore) -> None:
        self.name = name
        self.random = random.Random()
        self.policies: dict[int, _Policy] = {}
        for where, cfg in routes.items():
            if not isinstance(cfg, CorsPolicy):
                raise ConfigError(where, f"filter {name!r} is the CORS filter: expected a CorsPolicy config")
            self.policies[id(cfg)] = _Policy(cfg, where)
        self.origin_valid = store.counter("http", stat_prefix, "cors.origin_valid")
        self.origin_invalid = store.counter("http", stat_prefix, "cors.origin_invalid")

    def _levels(self, flow: _Flow) -> list[_Policy]:
        """The request's policies, most specific first."""
        r = flow.result
        if r is None:
            return []
        out: list[_Policy] = []
        for cfg in (r.per_filter_config.get(self.name), r.route.typed_per_filter_config.get(self.name),
                    r.virtual_host.typed_per_filter_config.get(self.name)):
            p = self.policies.get(id(cfg)) if cfg is not None else None
            if p is not None and p not in out:
                out.append(p)
        return out

    def decode(self, flow: _Flow) -> bool:
        levels = self._levels(flow)
        if not levels:
            return True
        first = levels[0].config
        enabled = _hit(first.filter_enabled, True, self.random)
        if not enabled and not _hit(first.shadow_enabled, False, self.random):
            return True
        hs = flow.request.headers
        origin = _get(hs, "origin")
        if not origin:
            return True
        matchers = next((p.origins for p in levels if p.origins), [])
        allowed = any(m("*") or m(origin) for m in matchers)
        (self.origin_valid if allowed else self.origin_invalid).value += 1
        if not enabled:
            return True  # shadow mode: stats only
        if allowed:
            if flow.filter_state is None:
                flow.filter_state = {}
            flow.filter_state[self.name] = (origin, levels)
        request_method = _get(hs, "access-control-request-method")
        if flow.request.method != "OPTIONS" or not request_method or not allowed:
            return True
        out: Headers = [(_ALLOW_ORIGIN, origin.encode("latin-1"))]
        if _field(levels, "allow_credentials"):
            out.append((_ALLOW_CREDENTIALS, b"true"))
        for field, name, echo in (("allow_methods", b"access-control-allow-methods", request_method),
                                  ("allow_headers", b"access-control-allow-headers",
                                   _get(hs, "access-control-request-headers") or "")):
            value = _field(levels, field)
            if value:
                out.append((name, (echo if value == "*" else value).encode("latin-1")))
        max_age = _field(levels, "max_age")
        if max_age:
            out.append((b"access-control-max-age", max_age.encode("latin-1")))
        if _field(levels, "allow_private_network_access") and \
                _get(hs, "access-control-request-private-network") == "true":
            out.append((b"access-control-allow-private-network", b"true"))
        flow.local_reply(200, b"", out)
        return False

    def encode(self, flow: _Flow, status: int, headers: Headers) -> Headers:
        state = flow.filter_state.get(self.name) if flow.filter_state else None
        if state is None:
            return headers
        origin, levels = state
        set_: dict[bytes, bytes] = {_ALLOW_ORIGIN: origin.encode("latin-1")}
        if _field(levels, "allow_credentials"):
            set_[_ALLOW_CREDENTIALS] = b"true"
        expose = _field(levels, "expose_headers")
        if expose:
            set_[_EXPOSE_HEADERS] = expose.encode("latin-1")
        return [h for h in headers if h[0] not in set_] + list(set_.items())


def _field(levels: list[_Policy], name: str) -> Any:
    """The first level that sets `name` (non-empty string, or a given bool)."""
    for p in levels:
        v = getattr(p.config, name)
        if v is not None and v != "":
            return v
    return None


def _get(headers: Any, name: str) -> str | None:
    for n, v in headers:
        if n == name:
            return v
    return None
