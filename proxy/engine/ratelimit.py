"""Envoy's HTTP local rate limit (envoy.filters.http.local_ratelimit): a token bucket.

The bucket starts full (max_tokens) and gains tokens_per_fill every fill_interval, never
above max_tokens; each request takes one token. Envoy refills from a timer; here the
refill is computed lazily from the clock when a request arrives (whole intervals since
the last fill, same phase as a timer started with the filter), so a check is O(1) with
no timer and no allocation on the allowed path.

filter_enabled / filter_enforced are RuntimeFractionalPercents (no runtime here: the
default_value is used). Envoy's documented default for both when unset is 0 % "for
safety", so a config without them limits nothing; the seed's EnvoyFilter sets both to
100 %. Only enabled requests touch the bucket; a request without a token is counted
rate_limited and, if also enforced, answered with `status` (429; Envoy uses 429 for
anything below 400), `x-envoy-ratelimited: true`, the configured response_headers_to_add
(the seed's `x-local-rate-limit: true`) and response flag RL; if not enforced it goes on
with request_headers_to_add_when_not_enforced.

Stats (Envoy's names under `<stat_prefix>.http_local_rate_limit.`): enabled, enforced,
rate_limited, ok; `LimiterCounters` holds them (the proxy's StatsStore counters when
wired, so limiters with one stat_prefix add up as in Envoy). Enabled without a bucket
counts enabled and ok and limits nothing (Envoy's listener-level config may omit it). Per listener (an HCM filter) or per route (typed_per_filter_
config) is a matter of which LocalRateLimiter the integrator consults; a bucket per
downstream connection (local_rate_limit_per_downstream_connection) is one limiter per
connection. Descriptors are not implemented.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from proxy.engine.fault import FractionalPercent

FLAG_RL = "RL"


@dataclass(frozen=True)
class TokenBucket:
    """type.v3.TokenBucket; fill_interval in seconds (the HTTP filter wants >= 50 ms)."""

    max_tokens: int
    fill_interval: float
    tokens_per_fill: int = 1

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("token_bucket.max_tokens: must be >= 1")
        if self.tokens_per_fill < 1:
            raise ValueError("token_bucket.tokens_per_fill: must be >= 1")
        if self.fill_interval < 0.05:
            raise ValueError(f"token_bucket.fill_interval: {self.fill_interval}s is below 50ms")


@dataclass(frozen=True)
class RuntimeFractionalPercent:
    """config.core.v3.RuntimeFractionalPercent; runtime_key is kept but not consulted."""

    default_value: FractionalPercent = FractionalPercent()
    runtime_key: str = ""


@dataclass(frozen=True)
class HeaderValueOption:
    key: str
    value: str
    append: bool = False


@dataclass(frozen=True)
class LocalRateLimit:
    """http.local_ratelimit.v3.LocalRateLimit (the subset implemented)."""

    stat_prefix: str
    token_bucket: TokenBucket | None = None
    filter_enabled: RuntimeFractionalPercent | None = None
    filter_enforced: RuntimeFractionalPercent | None = None
    response_headers_to_add: tuple[HeaderValueOption, ...] = ()
    request_headers_to_add_when_not_enforced: tuple[HeaderValueOption, ...] = ()
    status: int = 429

    def __post_init__(self) -> None:
        if not self.stat_prefix:
            raise ValueError("local_ratelimit.stat_prefix: must not be empty")


class Verdict(Enum):
    ALLOW = "allow"                    # forward as is
    ALLOW_NOT_ENFORCED = "shadow"      # over the limit, not enforced: forward, add request headers
    LIMITED = "limited"                # answer `status` with the response headers, flag RL


@dataclass(frozen=True)
class RateLimitDecision:
    verdict: Verdict
    status: int = 0
    response_headers: tuple[tuple[str, str], ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    flag: str | None = None


ALLOW = RateLimitDecision(Verdict.ALLOW)


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class LimiterCounters:
    """The four counters of a limiter: anything with a mutable `value` (telemetry.stats.Stat
    when wired into a proxy, so limiters sharing a stat_prefix share the counts as in Envoy)."""

    __slots__ = ("enabled", "enforced", "rate_limited", "ok")

    def __init__(self, make: Callable[[str], Any] | None = None) -> None:
        for name in self.__slots__:
            setattr(self, name, make(name) if make is not None else _Count())
_ZERO = RuntimeFractionalPercent()


class LocalRateLimiter:
    """The token bucket and stats of one LocalRateLimit config."""

    __slots__ = ("config", "clock", "random", "tokens", "_last_fill", "_next_fill", "_limited", "_shadow",
                 "_enabled", "_enforced", "counters")

    def __init__(
        self, config: LocalRateLimit, *, clock: Callable[[], float], random: _random.Random | None = None,
        counters: LimiterCounters | None = None,
    ) -> None:
        self.config = config
        self.counters = counters or LimiterCounters()
        self.clock = clock
        self.random = random or _random.Random()
        self._enabled = (config.filter_enabled or _ZERO).default_value
        self._enforced = (config.filter_enforced or _ZERO).default_value
        bucket = config.token_bucket
        self.tokens = bucket.max_tokens if bucket else 0
        self._last_fill = clock()
        self._next_fill = self._last_fill + (bucket.fill_interval if bucket else 0.0)
        status = config.status if config.status >= 400 else 429
        headers = tuple((h.key.lower(), h.value) for h in config.response_headers_to_add)
        self._limited = RateLimitDecision(Verdict.LIMITED, status, (("x-envoy-ratelimited", "true"), *headers),
                                          flag=FLAG_RL)
        self._shadow = RateLimitDecision(
            Verdict.ALLOW_NOT_ENFORCED,
            request_headers=tuple((h.key.lower(), h.value) for h in config.request_headers_to_add_when_not_enforced))

    # the counts, for callers that read them as plain numbers
    enabled = property(lambda self: self.counters.enabled.value)
    enforced = property(lambda self: self.counters.enforced.value)
    rate_limited = property(lambda self: self.counters.rate_limited.value)
    ok = property(lambda self: self.counters.ok.value)

    def _take(self) -> bool:
        bucket = self.config.token_bucket
        assert bucket is not None
        now = self.clock()
        if now >= self._next_fill:
            fills = int((now - self._last_fill) // bucket.fill_interval)
            self.tokens = min(bucket.max_tokens, self.tokens + fills * bucket.tokens_per_fill)
            self._last_fill += fills * bucket.fill_interval
            self._next_fill = self._last_fill + bucket.fill_interval
        if self.tokens > 0:
            self.tokens -= 1
            return True
        return False

    def check(self) -> RateLimitDecision:
        """Decide for one request."""
        if not self._enabled.hit(self.random):
            return ALLOW
        c = self.counters
        c.enabled.value += 1
        if self.config.token_bucket is None or self._take():  # no bucket: nothing to limit (Envoy)
            c.ok.value += 1
            return ALLOW
        c.rate_limited.value += 1
        if not self._enforced.hit(self.random):
            return self._shadow
        c.enforced.value += 1
        return self._limited

    def stats(self) -> dict[str, int]:
        p = f"{self.config.stat_prefix}.http_local_rate_limit."
        return {p + "enabled": self.enabled, p + "enforced": self.enforced,
                p + "rate_limited": self.rate_limited, p + "ok": self.ok}


def seed_envoyfilter_example(max_tokens: int, tokens_per_fill: int, fill_interval: float) -> LocalRateLimit:
    """The shape the seed's EnvoyFilter configures: enabled and enforced 100 %, and
    `x-local-rate-limit: true` on limited responses."""
    full = RuntimeFractionalPercent(FractionalPercent(100, "HUNDRED"))
    return LocalRateLimit(
        stat_prefix="http_local_rate_limiter",
        token_bucket=TokenBucket(max_tokens, fill_interval, tokens_per_fill),
        filter_enabled=full,
        filter_enforced=full,
        response_headers_to_add=(HeaderValueOption("x-local-rate-limit", "true"),),
    )


__all__ = [
    "FLAG_RL", "FractionalPercent", "HeaderValueOption", "LimiterCounters", "LocalRateLimit", "LocalRateLimiter",
    "RateLimitDecision", "RuntimeFractionalPercent", "TokenBucket", "Verdict",
    "seed_envoyfilter_example",
]
