"""Fault injection percentages (seeded), header faults and max_active_faults."""

from __future__ import annotations

import random

import pytest

from proxy.engine.fault import (
    NO_FAULT,
    FaultAbort,
    FaultDelay,
    FaultInjector,
    FractionalPercent,
    HTTPFault,
)


def run(cfg: HTTPFault, n: int = 10000, headers=None, seed: int = 11):
    inj = FaultInjector(cfg, random=random.Random(seed))
    decisions = []
    for _ in range(n):
        d = inj.decide(headers or {})
        decisions.append(d)
        inj.end(d)
    return inj, decisions


def test_delay_and_abort_hit_their_percentages():
    cfg = HTTPFault(delay=FaultDelay(fixed_delay=0.5, percentage=FractionalPercent(10)),
                    abort=FaultAbort(http_status=503, percentage=FractionalPercent.istio(25.0)))
    inj, ds = run(cfg)
    delayed = sum(d.delay == 0.5 for d in ds) / len(ds)
    aborted = sum(d.http_status == 503 for d in ds) / len(ds)
    assert abs(delayed - 0.10) < 0.01 and abs(aborted - 0.25) < 0.015
    assert inj.delays_injected == sum(d.delay > 0 for d in ds)
    assert {d.flags for d in ds} == {(), ("DI",), ("FI",), ("DI", "FI")}
    assert inj.active_faults == 0


def test_fractional_denominators():
    r = random.Random(2)
    p = FractionalPercent(2500, "TEN_THOUSAND")
    assert abs(sum(p.hit(r) for _ in range(20000)) / 20000 - 0.25) < 0.01
    assert FractionalPercent.istio(0.1) == FractionalPercent(1000, "MILLION")
    assert FractionalPercent(200).hit(r)  # above the denominator: always


def test_missing_percentage_injects_nothing():
    # Envoy's empty FractionalPercent and Istio's "unspecified -> no request" agree
    _, ds = run(HTTPFault(delay=FaultDelay(fixed_delay=1.0), abort=FaultAbort(http_status=500)), n=1000)
    assert all(d is NO_FAULT for d in ds)


def test_full_percentage_always_injects_grpc_abort():
    _, ds = run(HTTPFault(abort=FaultAbort(grpc_status=14, percentage=FractionalPercent(100))), n=100)
    assert all(d.grpc_status == 14 and d.http_status is None and d.flags == ("FI",) for d in ds)


def test_header_controlled_faults_capped_by_configured_percentage():
    cfg = HTTPFault(delay=FaultDelay(header_delay=True, percentage=FractionalPercent(100)),
                    abort=FaultAbort(header_abort=True, percentage=FractionalPercent(20)))
    _, ds = run(cfg, headers={"x-envoy-fault-delay-request": "250",
                              "x-envoy-fault-delay-request-percentage": "50",
                              "x-envoy-fault-abort-request": "418",
                              "x-envoy-fault-abort-request-percentage": "90"})
    assert abs(sum(d.delay == 0.25 for d in ds) / len(ds) - 0.5) < 0.02
    assert abs(sum(d.http_status == 418 for d in ds) / len(ds) - 0.2) < 0.015  # 90 capped at 20
    _, ds = run(cfg, n=100)  # no headers: no fault
    assert all(d is NO_FAULT for d in ds)


def test_fixed_fault_ignores_percentage_headers():
    cfg = HTTPFault(abort=FaultAbort(http_status=500, percentage=FractionalPercent(100)))
    _, ds = run(cfg, n=100, headers={"x-envoy-fault-abort-request-percentage": "0"})
    assert all(d.http_status == 500 for d in ds)


def test_max_active_faults_overflow():
    inj = FaultInjector(HTTPFault(abort=FaultAbort(http_status=500, percentage=FractionalPercent(100)),
                                  max_active_faults=2))
    a, b, c = inj.decide({}), inj.decide({}), inj.decide({})
    assert a.active and b.active and c is NO_FAULT and inj.faults_overflow == 1
    inj.end(a)
    assert inj.decide({}).http_status == 500
    assert inj.stats()["fault.active_faults"] == 2


def test_upstream_cluster_restricts_faults():
    inj = FaultInjector(HTTPFault(abort=FaultAbort(http_status=500, percentage=FractionalPercent(100)),
                                  upstream_cluster="reviews"))
    assert inj.decide({}, cluster="ratings") is NO_FAULT
    assert inj.decide({}, cluster="reviews").http_status == 500


@pytest.mark.parametrize("make, message", [
    (lambda: FaultDelay(), "exactly one of fixed_delay"),
    (lambda: FaultAbort(http_status=500, grpc_status=2), "exactly one of http_status"),
    (lambda: FaultAbort(http_status=99), "http_status: 99"),
    (lambda: FractionalPercent(1, "THOUSAND"), "denominator"),
    (lambda: FractionalPercent.istio(101), "percentage.value"),
])
def test_bad_config_names_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()
