"""The local rate limit token bucket with a fake clock."""

from __future__ import annotations

import random

import pytest

from proxy.engine.fault import FractionalPercent
from proxy.engine.ratelimit import (
    HeaderValueOption,
    LocalRateLimit,
    LocalRateLimiter,
    RuntimeFractionalPercent,
    TokenBucket,
    Verdict,
    seed_envoyfilter_example,
)


class Clock:
    def __init__(self) -> None:
        self.now = 7.0

    def __call__(self) -> float:
        return self.now


def test_answers_429_at_the_configured_rate():
    clock = Clock()
    rl = LocalRateLimiter(seed_envoyfilter_example(max_tokens=10, tokens_per_fill=10, fill_interval=1.0), clock=clock)
    allowed = 0
    for _ in range(60 * 100):  # 100 rps offered for 60 s against 10 per second
        clock.now += 0.01
        d = rl.check()
        if d.verdict is Verdict.ALLOW:
            allowed += 1
        else:
            assert d.status == 429 and d.flag == "RL"
            assert ("x-local-rate-limit", "true") in d.response_headers
            assert ("x-envoy-ratelimited", "true") in d.response_headers
    assert 10 * 60 <= allowed <= 10 * 60 + 10  # the initial full bucket, then 10 per fill
    s = rl.stats()
    assert s["http_local_rate_limiter.http_local_rate_limit.ok"] == allowed
    assert s["http_local_rate_limiter.http_local_rate_limit.rate_limited"] == 6000 - allowed
    assert s["http_local_rate_limiter.http_local_rate_limit.enforced"] == 6000 - allowed


def test_bucket_refills_in_whole_intervals_and_caps_at_max():
    clock = Clock()
    rl = LocalRateLimiter(seed_envoyfilter_example(max_tokens=3, tokens_per_fill=2, fill_interval=1.0), clock=clock)
    assert [rl.check().verdict for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.LIMITED]
    clock.now += 0.99
    assert rl.check().verdict is Verdict.LIMITED
    clock.now += 0.01  # one fill: 2 tokens
    assert [rl.check().verdict for _ in range(3)] == [Verdict.ALLOW] * 2 + [Verdict.LIMITED]
    clock.now += 100  # many fills, capped at max_tokens
    assert [rl.check().verdict for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.LIMITED]


def test_enabled_and_enforced_default_to_zero_percent():
    clock = Clock()
    rl = LocalRateLimiter(LocalRateLimit("p", TokenBucket(1, 1.0)), clock=clock)
    assert all(rl.check().verdict is Verdict.ALLOW for _ in range(10))
    assert rl.stats()["p.http_local_rate_limit.enabled"] == 0


def test_not_enforced_forwards_with_request_headers():
    full = RuntimeFractionalPercent(FractionalPercent(100))
    cfg = LocalRateLimit("p", TokenBucket(1, 1.0), filter_enabled=full,
                         request_headers_to_add_when_not_enforced=(HeaderValueOption("X-Shadow", "1"),))
    rl = LocalRateLimiter(cfg, clock=Clock())
    assert rl.check().verdict is Verdict.ALLOW
    d = rl.check()
    assert d.verdict is Verdict.ALLOW_NOT_ENFORCED and d.request_headers == (("x-shadow", "1"),)
    assert rl.stats()["p.http_local_rate_limit.rate_limited"] == 1
    assert rl.stats()["p.http_local_rate_limit.enforced"] == 0


def test_enabled_fraction_samples_requests():
    half = RuntimeFractionalPercent(FractionalPercent(50))
    rl = LocalRateLimiter(LocalRateLimit("p", TokenBucket(1, 1.0), filter_enabled=half), clock=Clock(),
                          random=random.Random(4))
    for _ in range(4000):
        rl.check()
    assert abs(rl.enabled / 4000 - 0.5) < 0.03


def test_status_below_400_becomes_429_and_custom_status():
    full = RuntimeFractionalPercent(FractionalPercent(100))
    for status, expected in ((200, 429), (503, 503)):
        rl = LocalRateLimiter(LocalRateLimit("p", TokenBucket(1, 1.0), full, full, status=status), clock=Clock())
        rl.check()
        assert rl.check().status == expected


def test_no_token_bucket_limits_nothing():
    rl = LocalRateLimiter(LocalRateLimit("p"), clock=Clock())
    assert rl.check().verdict is Verdict.ALLOW


@pytest.mark.parametrize("kwargs, message", [
    ({"max_tokens": 0, "fill_interval": 1}, "max_tokens"),
    ({"max_tokens": 1, "fill_interval": 0.01}, "fill_interval"),
    ({"max_tokens": 1, "fill_interval": 1, "tokens_per_fill": 0}, "tokens_per_fill"),
])
def test_bad_bucket_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=f"token_bucket.{message}"):
        TokenBucket(**kwargs)
