"""limit_req's leaky bucket with nodelay, and limit_conn."""

from __future__ import annotations

from proxy.ingress.ratelimit import ConnectionLimits, LeakyBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_one_plus_burst_at_once_then_the_rate():
    clock = Clock()
    buckets = LeakyBuckets(clock)
    passed = [buckets.allow("z", "1.2.3.4", rate=2, burst=10) for _ in range(20)]
    assert passed.count(True) == 11 and passed[:11] == [True] * 11
    clock.now += 1.0  # two requests drained
    assert [buckets.allow("z", "1.2.3.4", rate=2, burst=10) for _ in range(3)] == [True, True, False]


def test_buckets_are_per_client_and_per_zone():
    buckets = LeakyBuckets(Clock())
    assert buckets.allow("z", "a", rate=1, burst=0)
    assert not buckets.allow("z", "a", rate=1, burst=0)
    assert buckets.allow("z", "b", rate=1, burst=0)
    assert buckets.allow("other", "a", rate=1, burst=0)


def test_connection_limit_counts_requests_in_flight():
    limits = ConnectionLimits()
    assert limits.acquire("z", "a", 2) and limits.acquire("z", "a", 2)
    assert not limits.acquire("z", "a", 2)
    limits.release("z", "a")
    assert limits.acquire("z", "a", 2)
