"""Per-client rate and connection limits, as nginx's limit_req / limit_conn that
ingress-nginx configures from limit-rps, limit-rpm and limit-connections.

limit_req is a leaky bucket per (zone, client address) with `nodelay`: the bucket drains
at `rate` requests per second; a request adds one; one that would overflow the burst
(limit x limit-burst-multiplier) is refused and does not count. So from idle a client
gets 1 + burst requests at once, then `rate` per second. ingress-nginx keeps one zone per
Ingress and returns 503 (its limit-req-status-code) when refused.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 65536  # remembered (zone, client) buckets; the least recently used go first


class LeakyBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def allow(self, zone: str, client: str, rate: float, burst: int) -> bool:
        """Whether a request of `client` in `zone` may pass (and count it if so)."""
        now = self.clock()
        key = (zone, client)
        state = self._buckets.get(key)
        if state is None:
            excess = 0.0
        else:
            last_excess, last_time = state
            excess = max(0.0, last_excess - rate * (now - last_time)) + 1.0
            if excess > burst:
                return False
        self._buckets[key] = (excess, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return True


class ConnectionLimits:
    """Requests in flight per (zone, client)."""

    def __init__(self) -> None:
        self._active: dict[tuple[str, str], int] = {}

    def acquire(self, zone: str, client: str, limit: int) -> bool:
        key = (zone, client)
        if self._active.get(key, 0) >= limit:
            return False
        self._active[key] = self._active.get(key, 0) + 1
        return True

    def release(self, zone: str, client: str) -> None:
        key = (zone, client)
        left = self._active.get(key, 0) - 1
        if left > 0:
            self._active[key] = left
        else:
            self._active.pop(key, None)
