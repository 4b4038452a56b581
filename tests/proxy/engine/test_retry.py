"""Retry conditions, budgets, backoff, headers and the 30 %-failing backend simulation."""

from __future__ import annotations

import random

import pytest

from proxy.engine.circuit import CircuitBreaker, Thresholds
from proxy.engine.cluster import Cluster, Endpoint
from proxy.engine.lb import new_load_balancer
from proxy.engine.retry import (
    PREVIOUS_HOSTS,
    Action,
    AttemptOutcome,
    Reset,
    RetryBackOff,
    RetryPolicy,
    RetryState,
    parse_retry_on,
)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def state(retry_on: str, n: int = 3, **kw) -> RetryState:
    policy = RetryPolicy(retry_on=retry_on, num_retries=n, **kw.pop("policy", {}))
    return RetryState(policy, clock=kw.pop("clock", Clock()), random=random.Random(0), **kw)


def resp(status: int, **headers: str) -> AttemptOutcome:
    return AttemptOutcome(status=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    "retry_on, outcome, retried",
    [
        pytest.param("5xx", resp(500), True, id="5xx-500"),
        pytest.param("5xx", resp(404), False, id="5xx-404"),
        pytest.param("5xx", AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT), True, id="5xx-per-try-timeout"),
        pytest.param("5xx", AttemptOutcome(reset=Reset.CONNECT_FAILURE), True, id="5xx-connect-failure"),
        pytest.param("gateway-error", resp(500), False, id="gateway-500"),
        pytest.param("gateway-error", resp(504), True, id="gateway-504"),
        pytest.param("reset", AttemptOutcome(reset=Reset.CONNECTION_TERMINATION), True, id="reset"),
        pytest.param("reset", resp(503), False, id="reset-503"),
        pytest.param("reset", AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT), False, id="reset-per-try-timeout"),
        pytest.param("gateway-error", AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT), True, id="gateway-timeout"),
        pytest.param("reset-before-request", AttemptOutcome(reset=Reset.CONNECTION_TERMINATION, request_sent=False),
                     True, id="reset-before-request"),
        pytest.param("reset-before-request", AttemptOutcome(reset=Reset.CONNECTION_TERMINATION), False,
                     id="reset-after-request"),
        pytest.param("connect-failure", AttemptOutcome(reset=Reset.CONNECT_FAILURE), True, id="cf"),
        pytest.param("connect-failure", AttemptOutcome(reset=Reset.PER_TRY_TIMEOUT), False, id="cf-timeout"),
        pytest.param("refused-stream", AttemptOutcome(reset=Reset.REFUSED_STREAM), True, id="refused"),
        pytest.param("5xx", AttemptOutcome(reset=Reset.OVERFLOW), False, id="overflow-never"),
        pytest.param("retriable-4xx", resp(409), True, id="4xx-409"),
        pytest.param("retriable-4xx", resp(429), False, id="4xx-429"),
        pytest.param("503,reset", resp(503), True, id="istio-plain-code"),
        pytest.param("503,reset", resp(502), False, id="istio-plain-code-other"),
        pytest.param("5xx", resp(503, x_envoy_overloaded="true"), False, id="overloaded-not-retried"),
        pytest.param("envoy-ratelimited", resp(429, x_envoy_ratelimited="true"), True, id="ratelimited"),
        pytest.param("unavailable", resp(200, grpc_status="14"), True, id="grpc-unavailable"),
        pytest.param("unavailable", resp(200, grpc_status="13"), False, id="grpc-internal"),
    ],
)
def test_retry_on_conditions(retry_on, outcome, retried):
    assert (state(retry_on).decide(outcome).action is Action.RETRY) is retried


def test_retriable_status_codes_and_headers():
    s = state("retriable-status-codes,retriable-headers",
              policy={"retriable_status_codes": (418,), "retriable_headers": (("x-retry", None), ("x-m", "y"))})
    assert s.decide(resp(418)).action is Action.RETRY
    assert s.decide(resp(200, x_retry="1")).action is Action.RETRY
    assert s.decide(resp(200, x_m="n")).action is Action.PASS


def test_parse_retry_on_istio_codes_and_errors():
    assert parse_retry_on("503, reset") == (frozenset({"retriable-status-codes", "reset"}), (503,))
    with pytest.raises(ValueError, match="retry_on: unknown retry condition '5xxx'"):
        parse_retry_on("5xxx")
    with pytest.raises(ValueError, match="retry_on: 999"):
        parse_retry_on("999")
    assert parse_retry_on("5xx,bogus,999", strict=False) == (frozenset({"5xx"}), ())


def test_exhausted_sets_urx_and_counts_attempts():
    s = state("5xx", n=2)
    assert [s.decide(resp(503)).action for _ in range(3)] == [Action.RETRY, Action.RETRY, Action.EXHAUSTED]
    assert s.decide(resp(503)).flag == "URX"


def test_backoff_is_jittered_exponential_with_cap():
    b = RetryBackOff()
    assert b.max == pytest.approx(0.25)
    rnd = random.Random(3)
    for n, ceiling in [(1, 0.025), (2, 0.05), (3, 0.1), (4, 0.2), (5, 0.25), (9, 0.25)]:
        samples = [b.delay(n, rnd) for _ in range(2000)]
        assert max(samples) < ceiling and max(samples) > 0.9 * ceiling and min(samples) < 0.1 * ceiling
    with pytest.raises(ValueError, match="max_interval"):
        RetryBackOff(base_interval=0.1, max_interval=0.05)


def test_per_try_deadline_is_capped_by_route_timeout():
    clock = Clock()
    s = state("5xx", clock=clock, route_timeout=1.0, policy={"per_try_timeout": 0.4})
    assert s.attempt_deadline() == pytest.approx(50.4)
    clock.now = 50.8
    assert s.attempt_deadline() == pytest.approx(51.0)
    assert RetryState(None, clock=clock).attempt_deadline() is None


def test_no_retry_started_when_the_route_budget_is_gone():
    clock = Clock()
    s = state("5xx", clock=clock, route_timeout=1.0)
    clock.now = 50.999
    d = s.decide(resp(503))
    assert d.action is Action.TIMEOUT and d.flag == "UT" and d.delay <= 0.001


def test_retry_overflow_and_release():
    cb = CircuitBreaker(Thresholds(max_retries=1))
    a = state("5xx", circuit=cb)
    b = state("5xx", circuit=cb)
    assert a.decide(resp(503)).action is Action.RETRY
    assert b.decide(resp(503)).action is Action.OVERFLOW and cb.upstream_rq_retry_overflow == 1
    a.decide(resp(200))  # the retried attempt ended: slot back
    assert b.decide(resp(503)).action is Action.RETRY
    b.finish()
    assert cb.retries == 0


def test_trusted_headers_extend_the_policy():
    h = {"x-envoy-retry-on": "5xx", "x-envoy-max-retries": "4", "x-envoy-upstream-rq-timeout-ms": "2000",
         "x-envoy-upstream-rq-per-try-timeout-ms": "300", "x-envoy-retriable-status-codes": "418"}
    clock = Clock()
    s = RetryState(RetryPolicy(retry_on="connect-failure"), clock=clock, request_headers=h, trusted_headers=True)
    assert s.policy.conditions == {"5xx", "connect-failure"} and s.policy.num_retries == 4
    assert s.deadline == pytest.approx(52.0) and s.attempt_deadline() == pytest.approx(50.3)
    untrusted = RetryState(None, clock=clock, request_headers=h)
    assert untrusted.policy is None and untrusted.decide(resp(503)).action is Action.PASS
    only_header = RetryState(None, clock=clock, request_headers={"x-envoy-retry-on": "5xx"}, trusted_headers=True)
    assert only_header.policy.num_retries == 1 and only_header.decide(resp(503)).action is Action.RETRY


def test_istio_translation():
    assert RetryPolicy.from_istio(0) is None
    p = RetryPolicy.from_istio(3, per_try_timeout=2.0, retry_on="5xx,reset,connect-failure")
    assert p.num_retries == 3 and p.per_try_timeout == 2.0 and p.retry_host_predicate == (PREVIOUS_HOSTS,)
    assert p.host_selection_retry_max_attempts == 5
    d = RetryPolicy.from_istio(2)
    assert d.conditions == {"connect-failure", "refused-stream", "unavailable", "cancelled"}
    assert RetryPolicy.from_istio(1, retry_ignore_previous_hosts=False).retry_host_predicate == ()


def test_bad_policy_fields_are_named():
    with pytest.raises(ValueError, match="num_retries"):
        RetryPolicy(num_retries=-1)
    with pytest.raises(ValueError, match="retry_host_predicate"):
        RetryPolicy(retry_host_predicate=("envoy.retry_host_predicates.other",))


def simulate(policy: RetryPolicy, fail: list[float], n: int = 2000, seed: int = 42) -> tuple[float, float, set]:
    """n requests over hosts failing with 503 at the given rates; returns
    (success rate, mean attempts, flags seen)."""
    rnd = random.Random(seed)
    clock = Clock()
    cluster = Cluster("c", [Endpoint(f"127.0.0.{i + 1}", 80) for i in range(len(fail))])
    lb = new_load_balancer("ROUND_ROBIN", cluster, random=rnd)
    rate = {h: f for h, f in zip(cluster.hosts, fail, strict=True)}
    ok = attempts = 0
    flags = set()
    for _ in range(n):
        st = RetryState(policy, clock=clock, random=rnd, route_timeout=15.0)
        while True:
            host = lb.pick(st.pick_context())
            st.host_used(host)
            attempts += 1
            clock.now += 0.001
            outcome = resp(503 if rnd.random() < rate[host] else 200)
            d = st.decide(outcome)
            if d.action is Action.RETRY:
                clock.now += d.delay
                continue
            ok += outcome.status == 200
            flags.add(d.flag)
            break
    return ok / n, attempts / n, flags


def test_retries_on_other_hosts_turn_a_30_percent_failing_backend_into_99_5():
    policy = RetryPolicy.from_istio(2, retry_on="5xx")
    without, _, _ = simulate(RetryPolicy(retry_on="5xx", num_retries=0), [0, 0, 0.3])
    success, mean_attempts, _ = simulate(policy, [0, 0, 0.3])
    assert 0.88 < without < 0.92  # a third of the traffic to the bad backend, 30 % of it fails
    assert success >= 0.995 and mean_attempts < 1.15


def test_when_every_host_fails_30_percent_two_retries_are_not_enough():
    # independent 30 % failures: 1 - 0.3^3 = 97.3 % with 2 retries, 1 - 0.3^5 = 99.76 % with 4
    two, _, flags = simulate(RetryPolicy.from_istio(2, retry_on="5xx"), [0.3, 0.3, 0.3])
    four, _, _ = simulate(RetryPolicy.from_istio(4, retry_on="5xx"), [0.3, 0.3, 0.3])
    assert 0.96 < two < 0.985 and "URX" in flags
    assert four >= 0.995


def test_retriable_request_headers_gate_retries():
    p = RetryPolicy(retry_on="5xx", retriable_request_headers=((":method", "GET"),))
    clock = Clock()
    assert RetryState(p, clock=clock, request_headers={":method": "GET"}).decide(resp(503)).action is Action.RETRY
    post = RetryState(p, clock=clock, request_headers={":method": "POST"})
    assert post.decide(resp(503)).action is Action.PASS


def test_host_predicates_previous_and_canary():
    from proxy.engine.retry import OMIT_CANARY_HOSTS

    cl = Cluster("c", [Endpoint("127.0.0.1", 80), Endpoint("127.0.0.2", 80, metadata={"canary": "true"}),
                       Endpoint("127.0.0.3", 80)])
    p = RetryPolicy(retry_on="5xx", retry_host_predicate=(PREVIOUS_HOSTS, OMIT_CANARY_HOSTS),
                    host_selection_retry_max_attempts=5)
    s = RetryState(p, clock=Clock())
    assert s.pick_context().avoid == frozenset()  # the first attempt avoids nothing
    s.host_used(cl.hosts[0])
    avoid = s.pick_context().avoid
    assert cl.hosts[0] in avoid and cl.hosts[1] in avoid and cl.hosts[2] not in avoid
