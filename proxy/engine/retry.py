"""Retry decisions for one request, as Envoy's router makes them.

`RetryPolicy` is route.v3.RetryPolicy; `RetryState` lives for one downstream request and
answers, after each upstream attempt, whether to try again and after how long:

- retry_on conditions (`parse_retry_on`): 5xx, gateway-error (502/503/504), reset,
  connect-failure, refused-stream, retriable-4xx (409), retriable-status-codes,
  retriable-headers, envoy-ratelimited, and the gRPC ones (cancelled,
  deadline-exceeded, internal, resource-exhausted, unavailable, read from grpc-status).
  Resets: 5xx, gateway-error and reset retry any reset or connect failure (the host "did
  not respond"); reset-before-request those that happened before the request was sent;
  connect-failure only connect failures; refused-stream only refused streams. A per-try
  timeout is retried only under 5xx or gateway-error (Envoy's router: a timed-out try is
  a gateway error, not a reset). A local overflow is never retried, nor a response
  carrying `x-envoy-overloaded`.
- num_retries (Envoy default 1; Istio `attempts`, so at most 1 + attempts requests).
- Backoff: Envoy's jittered exponential backoff, base_interval 25 ms, max_interval 10 x
  base: retry n waits uniformly in [0, min(base * 2^(n-1), max)).
- Budget: the route timeout covers every attempt and backoff; a per-try timeout never
  outlives it, and a retry whose backoff would end past the deadline is not started
  (decision TIMEOUT: the router answers 504 with flag UT when the deadline comes, as
  Envoy's global timer does).
- Exhausted retries on a retriable outcome: flag URX. A retry refused by the cluster's
  max_retries circuit breaker: OVERFLOW (upstream_rq_retry_overflow), the last response
  goes back.
- Request headers x-envoy-retry-on, x-envoy-retry-grpc-on (OR'ed with the route's),
  x-envoy-max-retries (replaces num_retries), x-envoy-retriable-status-codes,
  x-envoy-upstream-rq-timeout-ms and x-envoy-upstream-rq-per-try-timeout-ms are honoured
  only with `trusted_headers=True`: Envoy honours them from internal clients and its
  connection manager strips them from external ones, so the integrator passes whether
  the downstream is trusted (a sidecar's outbound listener: yes; an edge listener: no).
- Host selection: with the previous_hosts predicate (Istio's retryIgnorePreviousHosts,
  default true) `pick_context()` tells the load balancer which hosts to avoid;
  omit_canary_hosts avoids endpoints whose metadata says canary=true (Envoy's
  filter_metadata envoy.lb canary, flattened by the integrator).

Istio's HTTPRetry maps through `RetryPolicy.from_istio`, as istiod translates it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from proxy.engine.circuit import CircuitBreaker
from proxy.engine.lb import PickContext

HTTP_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
    "http3-post-connect-failure",
})
GRPC_RETRY_ON = {"cancelled": 1, "deadline-exceeded": 4, "resource-exhausted": 8, "internal": 13, "unavailable": 14}
RETRY_ON_VALUES = HTTP_RETRY_ON | frozenset(GRPC_RETRY_ON)
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
OMIT_CANARY_HOSTS = "envoy.retry_host_predicates.omit_canary_hosts"  # endpoint metadata canary=true
_SHARED_RANDOM = _random.Random()
_RESET_ANY = frozenset({"5xx", "gateway-error", "reset"})
_TIMEOUT_RETRY = frozenset({"5xx", "gateway-error"})


def parse_retry_on(value: str, *, field_name: str = "retry_on", strict: bool = True) -> tuple[frozenset[str], tuple[int, ...]]:
    """Comma-separated conditions -> (conditions, status codes). Plain numbers (Istio's
    "503,reset") become retriable status codes and imply retriable-status-codes.
    strict: unknown values are an error naming the field; else ignored (as Envoy does
    for request headers)."""
    conditions: set[str] = set()
    codes: list[int] = []
    for raw in value.split(","):
        token = raw.strip()
        if not token:
            continue
        if token.isdigit():
            code = int(token)
            if not 100 <= code <= 599:
                if not strict:
                    continue
                raise ValueError(f"{field_name}: {code} is not an HTTP status code")
            codes.append(code)
            conditions.add("retriable-status-codes")
        elif token in RETRY_ON_VALUES:
            conditions.add(token)
        elif strict:
            raise ValueError(f"{field_name}: unknown retry condition {token!r}")
    return frozenset(conditions), tuple(codes)


@dataclass(frozen=True)
class RetryBackOff:
    """route.v3.RetryPolicy.RetryBackOff; seconds. max_interval None -> 10 x base_interval."""

    base_interval: float = 0.025
    max_interval: float | None = None

    def __post_init__(self) -> None:
        if self.base_interval <= 0:
            raise ValueError("retry_back_off.base_interval: must be > 0")
        if self.max_interval is not None and self.max_interval < self.base_interval:
            raise ValueError("retry_back_off.max_interval: must be >= base_interval")

    @property
    def max(self) -> float:
        return self.max_interval if self.max_interval is not None else 10 * self.base_interval

    def delay(self, retry_number: int, random: _random.Random) -> float:
        """Envoy's jittered exponential backoff for the n-th retry (1-based)."""
        ceiling = min(self.base_interval * (2 ** min(retry_number - 1, 32)), self.max)
        return random.random() * ceiling


@dataclass(frozen=True)
class RetryPolicy:
    """route.v3.RetryPolicy (the subset implemented); times in seconds.

    retriable_headers: response header names, each with an exact value or None for
    "present" (Envoy's HeaderMatcher, reduced); retriable_request_headers the same for
    the request: when set, only a request matching one of them may be retried."""

    retry_on: str = ""
    num_retries: int = 1
    per_try_timeout: float | None = None
    retriable_status_codes: tuple[int, ...] = ()
    retriable_headers: tuple[tuple[str, str | None], ...] = ()
    retriable_request_headers: tuple[tuple[str, str | None], ...] = ()
    retry_back_off: RetryBackOff = field(default_factory=RetryBackOff)
    retry_host_predicate: tuple[str, ...] = ()
    host_selection_retry_max_attempts: int = 1

    def __post_init__(self) -> None:
        conditions, codes = parse_retry_on(self.retry_on)
        if self.num_retries < 0:
            raise ValueError("retry_policy.num_retries: must be >= 0")
        if self.per_try_timeout is not None and self.per_try_timeout <= 0:
            raise ValueError("retry_policy.per_try_timeout: must be > 0")
        for p in self.retry_host_predicate:
            if p not in (PREVIOUS_HOSTS, OMIT_CANARY_HOSTS):
                raise ValueError(f"retry_policy.retry_host_predicate: {p!r} is not supported")
        object.__setattr__(self, "_conditions", conditions)
        object.__setattr__(self, "_codes", frozenset(codes) | frozenset(self.retriable_status_codes))

    @property
    def conditions(self) -> frozenset[str]:
        return self._conditions  # type: ignore[attr-defined]

    @property
    def status_codes(self) -> frozenset[int]:
        return self._codes  # type: ignore[attr-defined]

    @classmethod
    def from_istio(
        cls,
        attempts: int,
        *,
        per_try_timeout: float | None = None,
        retry_on: str | None = None,
        retry_ignore_previous_hosts: bool = True,
        backoff: float | None = None,
    ) -> RetryPolicy | None:
        """VirtualService http[].retries as istiod translates it: attempts 0 -> no
        retries (None); an unset retryOn keeps the mesh default's conditions; plain
        status codes add retriable-status-codes; retryIgnorePreviousHosts adds the
        previous_hosts predicate with 5 host selection attempts."""
        if attempts < 0:
            raise ValueError("retries.attempts: must be >= 0")
        if attempts == 0:
            return None
        on = ISTIO_DEFAULT_RETRY_ON if retry_on is None else retry_on
        return cls(
            retry_on=on,
            num_retries=attempts,
            per_try_timeout=per_try_timeout,
            retry_back_off=RetryBackOff(base_interval=backoff) if backoff else RetryBackOff(),
            retry_host_predicate=(PREVIOUS_HOSTS,) if retry_ignore_previous_hosts else (),
            host_selection_retry_max_attempts=5 if retry_ignore_previous_hosts else 1,
        )


ISTIO_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled"


class Reset(Enum):
    """Why an attempt produced no response."""

    CONNECT_FAILURE = "connect_failure"
    CONNECTION_TERMINATION = "connection_termination"   # closed or reset before the response
    REFUSED_STREAM = "refused_stream"
    PER_TRY_TIMEOUT = "per_try_timeout"
    OVERFLOW = "overflow"                               # our own pool/breaker refused it


@dataclass(frozen=True)
class AttemptOutcome:
    """One upstream attempt: a response (status, lower-case headers) or a reset;
    request_sent: whether any of the request reached the host (reset-before-request)."""

    status: int | None = None
    reset: Reset | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    request_sent: bool = True


class Action(Enum):
    PASS = "pass"            # not retriable: the outcome goes back (a reset -> 503/504)
    RETRY = "retry"          # wait `delay`, pick another host, try again
    EXHAUSTED = "exhausted"  # retriable but no retries left: flag URX
    OVERFLOW = "overflow"    # max_retries circuit breaker full
    TIMEOUT = "timeout"      # the route deadline comes first: 504 UT after `delay`


@dataclass(frozen=True)
class RetryDecision:
    action: Action
    delay: float = 0.0
    flag: str | None = None


class RetryState:
    """The retry bookkeeping of one request (Envoy's RetryStateImpl)."""

    def __init__(
        self,
        policy: RetryPolicy | None,
        *,
        clock: Callable[[], float],
        random: _random.Random | None = None,
        route_timeout: float | None = None,
        request_headers: Mapping[str, str] | None = None,
        trusted_headers: bool = False,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self.clock = clock
        self.random = random or _SHARED_RANDOM  # a new Random() per request costs ~20 us
        self.circuit = circuit
        self.retries_done = 0
        self.previous_hosts: list[object] = []
        self._holding_retry = False
        if trusted_headers and request_headers:
            policy, route_timeout = _apply_headers(policy, route_timeout, request_headers)
        self.policy = policy
        self._may_retry = policy is not None and (not policy.retriable_request_headers or _matches(
            policy.retriable_request_headers, request_headers or {}))
        self.start = clock()
        self.deadline = self.start + route_timeout if route_timeout else None

    # -- per attempt ---------------------------------------------------------------------

    def attempt_deadline(self) -> float | None:
        """When this attempt times out: now + per_try_timeout, never past the route
        deadline (None: no timeout). A per-try timeout is then reported as
        `AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT)`; if not retried it answers 504 UT."""
        per_try = self.policy.per_try_timeout if self.policy else None
        ends = [d for d in (self.deadline, self.clock() + per_try if per_try else None) if d is not None]
        return min(ends) if ends else None

    def pick_context(self, hash_key: int | None = None) -> PickContext:
        """What the load balancer must avoid for the next attempt (the retry host
        predicates); the first attempt avoids nothing."""
        p = self.policy
        if p is None or not p.retry_host_predicate or not self.previous_hosts:
            return PickContext(hash_key=hash_key)
        avoid = _Avoid(self.previous_hosts if PREVIOUS_HOSTS in p.retry_host_predicate else (),
                       OMIT_CANARY_HOSTS in p.retry_host_predicate)
        return PickContext(hash_key=hash_key, avoid=avoid,
                           host_selection_retry_max_attempts=p.host_selection_retry_max_attempts)

    def host_used(self, host: object) -> None:
        self.previous_hosts.append(host)

    # -- the decision --------------------------------------------------------------------

    def decide(self, outcome: AttemptOutcome) -> RetryDecision:
        self._release_retry()
        p = self.policy
        if p is None or not self._may_retry or not self.retriable(p, outcome):
            return RetryDecision(Action.PASS)
        if self.retries_done >= p.num_retries:
            return RetryDecision(Action.EXHAUSTED, flag="URX")
        delay = p.retry_back_off.delay(self.retries_done + 1, self.random)
        now = self.clock()
        if self.deadline is not None and now + delay >= self.deadline:
            return RetryDecision(Action.TIMEOUT, delay=max(0.0, self.deadline - now), flag="UT")
        if self.circuit is not None:
            if not self.circuit.try_acquire_retry():
                return RetryDecision(Action.OVERFLOW)
            self._holding_retry = True
        self.retries_done += 1
        return RetryDecision(Action.RETRY, delay=delay)

    def finish(self) -> None:
        """The request is over: give back a held retry slot."""
        self._release_retry()

    def _release_retry(self) -> None:
        if self._holding_retry and self.circuit is not None:
            self.circuit.release_retry()
        self._holding_retry = False

    @staticmethod
    def retriable(p: RetryPolicy, o: AttemptOutcome) -> bool:
        on = p.conditions
        if o.reset is not None:
            if o.reset is Reset.OVERFLOW:
                return False
            if o.reset is Reset.PER_TRY_TIMEOUT:  # Envoy: only 5xx and gateway-error retry these
                return bool(on & _TIMEOUT_RETRY)
            if on & _RESET_ANY or ("reset-before-request" in on and not o.request_sent):
                return True
            return (o.reset is Reset.CONNECT_FAILURE and "connect-failure" in on) or (
                o.reset is Reset.REFUSED_STREAM and "refused-stream" in on)
        status, headers = o.status or 0, o.headers
        if "x-envoy-overloaded" in headers:
            return False
        if ("5xx" in on and status >= 500) or ("gateway-error" in on and status in (502, 503, 504)):
            return True
        if ("retriable-4xx" in on and status == 409) or (
                "retriable-status-codes" in on and status in p.status_codes):
            return True
        if "envoy-ratelimited" in on and "x-envoy-ratelimited" in headers:
            return True
        if "retriable-headers" in on and _matches(p.retriable_headers, headers):
            return True
        grpc = headers.get("grpc-status")
        return grpc is not None and grpc.isdigit() and any(
            GRPC_RETRY_ON[c] == int(grpc) for c in on if c in GRPC_RETRY_ON)


def _matches(matchers: tuple[tuple[str, str | None], ...], headers: Mapping[str, str]) -> bool:
    return any(n in headers and (v is None or headers[n] == v) for n, v in matchers)


class _Avoid:
    """Hosts a retry should not land on: previous ones, and canaries if asked."""

    __slots__ = ("previous", "canary")

    def __init__(self, previous: Sequence[object], canary: bool) -> None:
        self.previous = previous
        self.canary = canary

    def __contains__(self, host: object) -> bool:
        if host in self.previous:
            return True
        return self.canary and getattr(host, "endpoint", None) is not None and (
            host.endpoint.metadata.get("canary") == "true")  # type: ignore[attr-defined]


def _apply_headers(
    policy: RetryPolicy | None, route_timeout: float | None, h: Mapping[str, str]
) -> tuple[RetryPolicy | None, float | None]:
    """Trusted x-envoy-* request headers on top of the route's policy and timeout."""
    extra = ",".join(v for k in ("x-envoy-retry-on", "x-envoy-retry-grpc-on") if (v := h.get(k)))
    conditions, codes = parse_retry_on(extra, strict=False)
    status_codes = tuple(int(c) for c in h.get("x-envoy-retriable-status-codes", "").split(",")
                         if c.strip().isdigit())
    if policy is None and conditions:
        policy = RetryPolicy()
    if policy is not None:
        merged = ",".join(sorted(policy.conditions | conditions))
        codes_all = tuple(sorted(policy.status_codes | set(codes) | set(status_codes)))
        policy = replace(policy, retry_on=merged, retriable_status_codes=codes_all)
        if (n := h.get("x-envoy-max-retries", "")).isdigit():
            policy = replace(policy, num_retries=int(n))
        if (ms := h.get("x-envoy-upstream-rq-per-try-timeout-ms", "")).isdigit() and int(ms) > 0:
            policy = replace(policy, per_try_timeout=int(ms) / 1000)
    if (ms := h.get("x-envoy-upstream-rq-timeout-ms", "")).isdigit():
        route_timeout = int(ms) / 1000 or None
    return policy, route_timeout
