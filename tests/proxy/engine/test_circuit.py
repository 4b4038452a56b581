"""Circuit breaker counters, limits and overflow stats."""

from __future__ import annotations

import pytest

from proxy.engine.circuit import ISTIO_UNLIMITED, CircuitBreaker, Thresholds


def test_envoy_defaults():
    t = Thresholds()
    assert (t.max_connections, t.max_pending_requests, t.max_requests, t.max_retries) == (1024, 1024, 1024, 3)


def test_istio_defaults_are_unlimited_and_fields_map():
    t = Thresholds.istio(max_connections=1, http1_max_pending_requests=2)
    assert (t.max_connections, t.max_pending_requests) == (1, 2)
    assert t.max_requests == t.max_retries == ISTIO_UNLIMITED


def test_pending_overflow_counts_and_release_frees():
    cb = CircuitBreaker(Thresholds(max_pending_requests=2))
    assert cb.try_acquire_pending() and cb.try_acquire_pending()
    assert not cb.try_acquire_pending()
    assert cb.upstream_rq_pending_overflow == 1
    assert cb.stats()["circuit_breakers.default.rq_pending_open"] == 1
    cb.release_pending()
    assert cb.try_acquire_pending()
    assert cb.stats()["circuit_breakers.default.remaining_pending"] == 0


def test_requests_overflow_counts_as_pending_overflow():
    cb = CircuitBreaker(Thresholds(max_requests=1))
    assert cb.try_acquire_request()
    assert not cb.try_acquire_request()
    assert cb.upstream_rq_pending_overflow == 1


def test_connection_and_retry_overflow():
    cb = CircuitBreaker(Thresholds(max_connections=1, max_retries=3))
    assert cb.try_acquire_connection()
    assert not cb.try_acquire_connection()
    assert [cb.try_acquire_retry() for _ in range(4)] == [True, True, True, False]
    s = cb.stats()
    assert s["upstream_cx_overflow"] == 1 and s["upstream_rq_retry_overflow"] == 1
    assert s["circuit_breakers.default.rq_retry_open"] == 1
    cb.release_retry()
    assert cb.stats()["circuit_breakers.default.remaining_retries"] == 1


def test_release_without_acquire_is_an_error():
    with pytest.raises(RuntimeError, match="connections released more often"):
        CircuitBreaker().release_connection()


def test_bad_thresholds_name_the_field():
    with pytest.raises(ValueError, match="max_retries"):
        Thresholds(max_retries=-1)
    with pytest.raises(ValueError, match="priority"):
        Thresholds(priority="HIGH")
