"""Envoy's HTTP fault filter (envoy.filters.http.fault): delays and aborts on purpose.

`FaultInjector.decide(headers)` makes both draws up front: a delay of `fixed_delay` for
`delay.percentage` of requests (flag DI), then an abort with `http_status` or
`grpc_status` for `abort.percentage` of them (flag FI). The router sleeps the delay and
then either answers the abort or forwards the request, as Envoy runs them in that order.

Percentages are type.v3.FractionalPercent (numerator over HUNDRED, TEN_THOUSAND or
MILLION). Absent percentage: Envoy's proto default is an empty FractionalPercent, i.e.
numerator 0 -> 0 %, and Istio agrees from the other side ("if unspecified, no request
will be delayed/aborted"); istiod writes VirtualService `fault.*.percentage.value`
(a double, 0-100) as numerator value x 10,000 over MILLION (`FractionalPercent.istio`).
So no layer turns a missing percentage into 100 %: the config parser leaves it at 0.

Header-controlled faults (only when the config has header_delay / header_abort):
x-envoy-fault-delay-request (ms), x-envoy-fault-abort-request (HTTP status 200-599),
x-envoy-fault-abort-grpc-request, and (for those header faults) the *-percentage headers,
which can only lower the configured percentage (min of the two): Envoy treats them as
untrusted.

max_active_faults (unlimited when None): a request that would start a fault while that
many are active gets none (stat faults_overflow, counted only when a fault was drawn). A decision with faults must be paired
with `end()` when the request finishes. Istio: with VirtualService faults, istiod turns
the route's retries and timeout off; that is the config translation's job.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


@dataclass(frozen=True)
class FractionalPercent:
    """type.v3.FractionalPercent; the default (numerator 0) is 0 %."""

    numerator: int = 0
    denominator: str = "HUNDRED"

    def __post_init__(self) -> None:
        if self.denominator not in DENOMINATORS:
            raise ValueError(f"percentage.denominator: {self.denominator!r} is not one of {', '.join(DENOMINATORS)}")
        if self.numerator < 0:
            raise ValueError("percentage.numerator: must be >= 0")

    @property
    def scale(self) -> int:
        return DENOMINATORS[self.denominator]

    def hit(self, random: _random.Random) -> bool:
        """Envoy's featureEnabled: a draw in [0, denominator) below the numerator
        (numerators above the denominator count as 100 %)."""
        return random.randrange(self.scale) < self.numerator

    @classmethod
    def istio(cls, value: float) -> FractionalPercent:
        """Istio's Percent{value: 0-100 double} as istiod writes it."""
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"percentage.value: {value} is not in 0..100")
        return cls(numerator=round(value * 10_000), denominator="MILLION")


@dataclass(frozen=True)
class FaultDelay:
    """filters.common.fault.v3.FaultDelay: fixed_delay (seconds) or header_delay."""

    fixed_delay: float | None = None
    header_delay: bool = False
    percentage: FractionalPercent = FractionalPercent()

    def __post_init__(self) -> None:
        if (self.fixed_delay is None) == (not self.header_delay):
            raise ValueError("fault.delay: exactly one of fixed_delay, header_delay")
        if self.fixed_delay is not None and self.fixed_delay < 0:
            raise ValueError("fault.delay.fixed_delay: must be >= 0")


@dataclass(frozen=True)
class FaultAbort:
    """http.fault.v3.FaultAbort: http_status, grpc_status or header_abort."""

    http_status: int | None = None
    grpc_status: int | None = None
    header_abort: bool = False
    percentage: FractionalPercent = FractionalPercent()

    def __post_init__(self) -> None:
        if sum((self.http_status is not None, self.grpc_status is not None, self.header_abort)) != 1:
            raise ValueError("fault.abort: exactly one of http_status, grpc_status, header_abort")
        if self.http_status is not None and not 200 <= self.http_status < 600:
            raise ValueError(f"fault.abort.http_status: {self.http_status} is not in 200..599")


@dataclass(frozen=True)
class HTTPFault:
    """http.fault.v3.HTTPFault (without header matchers and downstream_nodes)."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None
    upstream_cluster: str = ""
    max_active_faults: int | None = None

    def __post_init__(self) -> None:
        if self.max_active_faults is not None and self.max_active_faults < 0:
            raise ValueError("fault.max_active_faults: must be >= 0")


@dataclass(frozen=True)
class FaultDecision:
    delay: float = 0.0                 # seconds to wait before going on
    http_status: int | None = None     # then answer this instead of forwarding
    grpc_status: int | None = None     # or a gRPC error (HTTP 200, grpc-status)
    active: bool = False               # counts towards max_active_faults: call end()

    @property
    def flags(self) -> tuple[str, ...]:
        return (("DI",) if self.delay > 0 else ()) + (
            ("FI",) if self.http_status is not None or self.grpc_status is not None else ())


NO_FAULT = FaultDecision()


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class FaultStats:
    """Envoy's fault.* stats: anything with a mutable `value` (telemetry.stats.Stat when
    wired into a proxy); one set per fault filter, shared by its per-route configs."""

    __slots__ = ("delays_injected", "aborts_injected", "faults_overflow", "active_faults")

    def __init__(self, make: Callable[[str], Any] | None = None) -> None:
        for name in self.__slots__:
            setattr(self, name, make(name) if make is not None else _Count())


class FaultInjector:
    """One fault filter's decisions and stats (Envoy's fault.* names). `decide` may be
    given a route's own HTTPFault (typed_per_filter_config): its settings replace the
    filter's, while the stats and the active-fault count stay the filter's (Envoy)."""

    def __init__(self, config: HTTPFault, *, random: _random.Random | None = None,
                 stats: FaultStats | None = None) -> None:
        self.config = config
        self.random = random or _random.Random()
        self.counters = stats or FaultStats()

    active_faults = property(lambda self: self.counters.active_faults.value)
    delays_injected = property(lambda self: self.counters.delays_injected.value)
    aborts_injected = property(lambda self: self.counters.aborts_injected.value)
    faults_overflow = property(lambda self: self.counters.faults_overflow.value)

    def decide(self, headers: Mapping[str, str], *, cluster: str = "",
               config: HTTPFault | None = None) -> FaultDecision:
        """Headers are lower-case. Returns NO_FAULT or what to inject. A fault that would
        be injected while max_active_faults are active is not (stat faults_overflow)."""
        cfg = config or self.config
        if cfg.upstream_cluster and cluster != cfg.upstream_cluster:
            return NO_FAULT
        if cfg.delay is None and cfg.abort is None:
            return NO_FAULT
        delay = self._delay(cfg.delay, headers) if cfg.delay else 0.0
        http_status, grpc_status = self._abort(cfg.abort, headers) if cfg.abort else (None, None)
        if delay <= 0 and http_status is None and grpc_status is None:
            return NO_FAULT
        c = self.counters
        if cfg.max_active_faults is not None and c.active_faults.value >= cfg.max_active_faults:
            c.faults_overflow.value += 1
            return NO_FAULT
        c.delays_injected.value += delay > 0
        c.aborts_injected.value += http_status is not None or grpc_status is not None
        c.active_faults.value += 1
        return FaultDecision(delay, http_status, grpc_status, active=True)

    def end(self, decision: FaultDecision) -> None:
        if decision.active:
            self.counters.active_faults.value -= 1

    def _delay(self, d: FaultDelay, headers: Mapping[str, str]) -> float:
        if d.header_delay:
            value = headers.get("x-envoy-fault-delay-request", "")
            if not value.isdigit():
                return 0.0
            seconds = int(value) / 1000
        else:
            assert d.fixed_delay is not None
            seconds = d.fixed_delay
        pct = d.percentage
        if d.header_delay:
            pct = _header_percentage(pct, headers.get("x-envoy-fault-delay-request-percentage"))
        return seconds if pct.hit(self.random) else 0.0

    def _abort(self, a: FaultAbort, headers: Mapping[str, str]) -> tuple[int | None, int | None]:
        http_status, grpc_status = a.http_status, a.grpc_status
        if a.header_abort:
            h, g = headers.get("x-envoy-fault-abort-request", ""), headers.get("x-envoy-fault-abort-grpc-request", "")
            http_status = int(h) if h.isdigit() and 200 <= int(h) < 600 else None
            grpc_status = int(g) if http_status is None and g.isdigit() else None
            if http_status is None and grpc_status is None:
                return None, None
            pct = _header_percentage(a.percentage, headers.get("x-envoy-fault-abort-request-percentage"))
        else:
            pct = a.percentage
        return (http_status, grpc_status) if pct.hit(self.random) else (None, None)

    def stats(self) -> dict[str, int]:
        return {"fault.active_faults": self.active_faults, "fault.delays_injected": self.delays_injected,
                "fault.aborts_injected": self.aborts_injected, "fault.faults_overflow": self.faults_overflow}


def _header_percentage(configured: FractionalPercent, header: str | None) -> FractionalPercent:
    """A percentage header may lower the configured numerator, never raise it."""
    if header is None or not header.isdigit():
        return configured
    return FractionalPercent(min(int(header), configured.numerator), configured.denominator)
