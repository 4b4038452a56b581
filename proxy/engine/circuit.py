"""Per-cluster circuit breakers: Envoy's resource counters and their overflow stats.

Four resources, each a counter with a limit (config.cluster.v3.CircuitBreakers.Thresholds,
priority DEFAULT only): connections, pending requests (waiting for a connection),
active requests, active retries. Envoy's defaults are 1024/1024/1024/3; Istio's
DestinationRule connectionPool writes its own values (2^32-1 when unset):
tcp.maxConnections -> max_connections, http.http1MaxPendingRequests ->
max_pending_requests, http.http2MaxRequests -> max_requests, http.maxRetries ->
max_retries.

What overflow means is the caller's to enforce, as in Envoy:
- connections: `try_acquire_connection()` False means "do not open another one";
  upstream_cx_overflow counts it and the request waits as *pending* for a connection
  already open (HTTP/1.1), so it is not an error by itself.
- pending or requests: False means the request fails fast with 503,
  `x-envoy-overloaded: true` and response flag UO (`OVERFLOW_HEADERS`, `FLAG_UO`);
  both count as upstream_rq_pending_overflow (Envoy counts requests overflow there too).
- retries: False means the retry is not made (upstream_rq_retry_overflow) and the last
  upstream response goes back to the client.

Each successful acquire must be paired with one release. The `*_open` gauges are 1
while a resource is at its limit (Envoy's circuit_breakers.default.*_open).
"""

from __future__ import annotations

from dataclasses import dataclass

ISTIO_UNLIMITED = 2**32 - 1
FLAG_UO = "UO"
OVERFLOW_HEADERS = (("x-envoy-overloaded", "true"),)


@dataclass(frozen=True)
class Thresholds:
    """One CircuitBreakers.thresholds entry (priority DEFAULT)."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    priority: str = "DEFAULT"

    def __post_init__(self) -> None:
        if self.priority != "DEFAULT":
            raise ValueError(f"circuit_breakers.thresholds.priority: {self.priority!r} (only DEFAULT is supported)")
        for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"circuit_breakers.thresholds.{name}: must be >= 0")

    @classmethod
    def istio(
        cls,
        *,
        max_connections: int | None = None,
        http1_max_pending_requests: int | None = None,
        http2_max_requests: int | None = None,
        max_retries: int | None = None,
    ) -> Thresholds:
        """From a DestinationRule's connectionPool; unset fields get Istio's 2^32-1."""
        u = ISTIO_UNLIMITED
        return cls(
            max_connections=u if max_connections is None else max_connections,
            max_pending_requests=u if http1_max_pending_requests is None else http1_max_pending_requests,
            max_requests=u if http2_max_requests is None else http2_max_requests,
            max_retries=u if max_retries is None else max_retries,
        )


class CircuitBreaker:
    """The live counters of one cluster; every decision is O(1) and allocation-free."""

    __slots__ = (
        "thresholds", "connections", "pending_requests", "requests", "retries",
        "upstream_cx_overflow", "upstream_rq_pending_overflow", "upstream_rq_retry_overflow",
    )

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.connections = 0
        self.pending_requests = 0
        self.requests = 0
        self.retries = 0
        self.upstream_cx_overflow = 0
        self.upstream_rq_pending_overflow = 0
        self.upstream_rq_retry_overflow = 0

    def try_acquire_connection(self) -> bool:
        if self.connections >= self.thresholds.max_connections:
            self.upstream_cx_overflow += 1
            return False
        self.connections += 1
        return True

    def release_connection(self) -> None:
        self._release("connections")

    def try_acquire_pending(self) -> bool:
        if self.pending_requests >= self.thresholds.max_pending_requests:
            self.upstream_rq_pending_overflow += 1
            return False
        self.pending_requests += 1
        return True

    def release_pending(self) -> None:
        self._release("pending_requests")

    def try_acquire_request(self) -> bool:
        if self.requests >= self.thresholds.max_requests:
            self.upstream_rq_pending_overflow += 1
            return False
        self.requests += 1
        return True

    def release_request(self) -> None:
        self._release("requests")

    def try_acquire_retry(self) -> bool:
        if self.retries >= self.thresholds.max_retries:
            self.upstream_rq_retry_overflow += 1
            return False
        self.retries += 1
        return True

    def release_retry(self) -> None:
        self._release("retries")

    def _release(self, name: str) -> None:
        value = getattr(self, name)
        if value <= 0:
            raise RuntimeError(f"circuit breaker: {name} released more often than acquired")
        setattr(self, name, value - 1)

    def stats(self) -> dict[str, int]:
        """Envoy's names: the overflow counters and circuit_breakers.default gauges."""
        t = self.thresholds
        return {
            "upstream_cx_overflow": self.upstream_cx_overflow,
            "upstream_rq_pending_overflow": self.upstream_rq_pending_overflow,
            "upstream_rq_retry_overflow": self.upstream_rq_retry_overflow,
            "circuit_breakers.default.cx_open": int(self.connections >= t.max_connections),
            "circuit_breakers.default.rq_pending_open": int(self.pending_requests >= t.max_pending_requests),
            "circuit_breakers.default.rq_open": int(self.requests >= t.max_requests),
            "circuit_breakers.default.rq_retry_open": int(self.retries >= t.max_retries),
            "circuit_breakers.default.remaining_cx": max(0, t.max_connections - self.connections),
            "circuit_breakers.default.remaining_pending": max(0, t.max_pending_requests - self.pending_requests),
            "circuit_breakers.default.remaining_rq": max(0, t.max_requests - self.requests),
            "circuit_breakers.default.remaining_retries": max(0, t.max_retries - self.retries),
        }
