"""Outlier detection with a fake clock: the issue's 30 s / 60 s ejections and limits."""

from __future__ import annotations

import random

import pytest

from proxy.engine.cluster import Cluster, Endpoint
from proxy.engine.outlier import LocalOrigin, OutlierDetection, OutlierDetector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def setup(n: int = 10, **cfg):
    clock = Clock()
    cluster = Cluster("c", [Endpoint(f"127.0.0.{i + 1}", 80) for i in range(n)])
    events = []
    det = OutlierDetector(cluster, OutlierDetection(**cfg), clock=clock, random=random.Random(1),
                          on_event=events.append)
    return clock, cluster, det, events


def advance(clock, det, seconds: float) -> None:
    """Move the clock in 1 s steps, running sweeps as a timer would."""
    for _ in range(int(seconds)):
        clock.now += 1
        det.tick()


def test_five_consecutive_5xx_eject_for_30s_then_60s():
    clock, cluster, det, events = setup()
    h = cluster.hosts[0]
    advance(clock, det, 10)  # now on a sweep boundary
    for _ in range(4):
        det.report_http_status(h, 500)
    assert not h.ejected
    det.report_http_status(h, 500)
    assert h.ejected and h not in cluster.lb_hosts()[0]
    assert (events[-1].action, events[-1].detector, events[-1].ejection_seconds) == ("eject", "consecutive_5xx", 30)
    advance(clock, det, 29)
    assert h.ejected
    advance(clock, det, 1)
    assert not h.ejected and events[-1].action == "uneject"
    for _ in range(5):  # still failing: ejected again at once, for twice as long
        det.report_http_status(h, 503)
    assert h.ejected and events[-1].ejection_seconds == 60 and h.times_ejected == 2
    advance(clock, det, 59)
    assert h.ejected
    advance(clock, det, 1)
    assert not h.ejected


def test_ejection_ends_at_the_first_sweep_after_its_time():
    clock, cluster, det, _ = setup()
    h = cluster.hosts[0]
    advance(clock, det, 13)  # 3 s after a sweep
    for _ in range(5):
        det.report_http_status(h, 500)
    advance(clock, det, 36)  # 33 s: ejection time passed, next sweep at 37 s
    assert h.ejected
    advance(clock, det, 1)
    assert not h.ejected


def test_a_success_resets_the_count():
    _, cluster, det, _ = setup()
    h = cluster.hosts[0]
    for status in (500, 500, 500, 500, 200, 500, 500, 500, 500):
        det.report_http_status(h, status)
    assert not h.ejected


def test_multiplier_decays_over_healthy_intervals():
    clock, cluster, det, events = setup()
    h = cluster.hosts[0]
    for _ in range(5):
        det.report_http_status(h, 500)
    advance(clock, det, 30)
    for _ in range(5):
        det.report_http_status(h, 500)
    assert events[-1].ejection_seconds == 60
    advance(clock, det, 60)
    assert not h.ejected and h.ejection_multiplier == 2
    advance(clock, det, 20)  # two healthy sweeps
    assert h.ejection_multiplier == 0
    for _ in range(5):
        det.report_http_status(h, 500)
    assert events[-1].ejection_seconds == 30


def test_max_ejection_time_caps_the_ejection():
    clock, cluster, det, events = setup(base_ejection_time=30, max_ejection_time=70)
    h = cluster.hosts[0]
    seconds = []
    for _ in range(5):
        for _ in range(5):
            det.report_http_status(h, 500)
        seconds.append(events[-1].ejection_seconds)
        while h.ejected:  # then fail again right after the return: no healthy sweep between
            advance(clock, det, 1)
    assert seconds == [30, 60, 70, 70, 70]


def test_max_ejection_percent_respected_but_one_host_always_ejectable():
    _, cluster, det, _ = setup(n=10)
    for h in cluster.hosts[:3]:
        for _ in range(5):
            det.report_http_status(h, 500)
    assert [h.ejected for h in cluster.hosts[:3]] == [True, False, False]  # 10 % of 10
    assert det.stats["ejections_overflow"] == 2
    _, cluster, det, _ = setup(n=4)  # 10 % of 4 is less than one host: still one
    for h in cluster.hosts[:2]:
        for _ in range(5):
            det.report_http_status(h, 500)
    assert sum(h.ejected for h in cluster.hosts) == 1


def test_max_ejection_percent_last_ejection_may_overshoot_as_envoy():
    _, cluster, det, _ = setup(n=15)
    for h in cluster.hosts:
        for _ in range(5):
            det.report_http_status(h, 500)
    assert sum(h.ejected for h in cluster.hosts) == 2  # 1/15 = 6.7 % < 10 % lets a second go


def test_max_ejection_percent_50_of_4():
    _, cluster, det, _ = setup(n=4, max_ejection_percent=50)
    for h in cluster.hosts:
        for _ in range(5):
            det.report_http_status(h, 500)
    assert sum(h.ejected for h in cluster.hosts) == 2 and det.stats["ejections_active"] == 2


def test_gateway_failure_detected_but_not_enforced_by_default():
    _, cluster, det, _ = setup(consecutive_5xx=0)
    h = cluster.hosts[0]
    for _ in range(5):
        det.report_http_status(h, 502)
    assert not h.ejected and det.stats["ejections_detected_consecutive_gateway_failure"] == 1


def test_istio_consecutive_gateway_errors_enforced():
    _, cluster, det, events = setup(consecutive_5xx=0, consecutive_gateway_failure=3,
                                    enforcing_consecutive_gateway_failure=100)
    h = cluster.hosts[0]
    for status in (502, 500, 502, 503):  # a 500 breaks the gateway run
        det.report_http_status(h, status)
    assert not h.ejected
    det.report_http_status(h, 504)
    assert h.ejected and events[-1].detector == "consecutive_gateway_failure"


def test_local_origin_folded_into_5xx_by_default():
    _, cluster, det, _ = setup()
    h = cluster.hosts[0]
    for e in (LocalOrigin.CONNECT_FAILED, LocalOrigin.RESET, LocalOrigin.TIMEOUT, LocalOrigin.CONNECT_FAILED):
        det.report_local_origin(h, e)
    det.report_local_origin(h, LocalOrigin.CONNECT_SUCCESS)  # not a result: no reset
    assert not h.ejected
    det.report_http_status(h, 500)
    assert h.ejected


def test_split_local_origin_errors_counted_apart():
    _, cluster, det, events = setup(split_external_local_origin_errors=True)
    h = cluster.hosts[0]
    for _ in range(4):
        det.report_local_origin(h, LocalOrigin.CONNECT_FAILED)
    det.report_http_status(h, 500)  # does not add to the local-origin run
    det.report_local_origin(h, LocalOrigin.CONNECT_SUCCESS)  # but a connect success resets it
    for _ in range(4):
        det.report_local_origin(h, LocalOrigin.TIMEOUT)
    assert not h.ejected
    det.report_local_origin(h, LocalOrigin.RESET)
    assert h.ejected and events[-1].detector == "consecutive_local_origin_failure"


def test_enforcing_percentage_zero_never_ejects():
    _, cluster, det, _ = setup(enforcing_consecutive_5xx=0)
    h = cluster.hosts[0]
    for _ in range(50):
        det.report_http_status(h, 500)
    assert not h.ejected and det.stats["ejections_detected_consecutive_5xx"] == 10


def test_removed_hosts_are_forgotten():
    clock, cluster, det, _ = setup(n=3)
    h = cluster.hosts[0]
    for _ in range(5):
        det.report_http_status(h, 500)
    cluster.update([hh.endpoint for hh in cluster.hosts[1:]])
    det.forget_removed()
    assert det.stats["ejections_active"] == 0
    advance(clock, det, 10)


@pytest.mark.parametrize("field, value", [("interval", 0), ("max_ejection_percent", 101), ("consecutive_5xx", -1)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"outlier_detection.{field}"):
        OutlierDetection(**{field: value})


def test_load_balancer_stops_picking_an_ejected_host_and_takes_it_back():
    from proxy.engine.lb import new_load_balancer

    clock, cluster, det, _ = setup(n=3, max_ejection_percent=50)
    lb = new_load_balancer("ROUND_ROBIN", cluster, random=random.Random(0))
    bad = cluster.hosts[1]
    for _ in range(5):
        det.report_http_status(bad, 503)
    assert bad not in {lb.pick() for _ in range(30)}
    advance(clock, det, 40)
    assert bad in {lb.pick() for _ in range(30)}


def drive_interval(clock, det, cluster, success: list[float], volume: int = 200) -> None:
    """One interval of traffic (success fraction per host; failures are 500s spread
    evenly, so at 60 % success no run of 5 forms), then the sweep."""
    for h, ok in zip(cluster.hosts, success, strict=True):
        failures = round(volume * (1 - ok))
        for i in range(volume):  # evenly spread: request i fails when the running share steps up
            det.report_http_status(h, 500 if (i + 1) * failures // volume > i * failures // volume else 200)
    advance(clock, det, 10)


def test_success_rate_ejects_the_outlier_below_mean_minus_1_9_stdev():
    clock, cluster, det, events = setup(n=5, max_ejection_percent=50)
    drive_interval(clock, det, cluster, [1, 1, 1, 1, 0.6])
    assert [h.ejected for h in cluster.hosts] == [False, False, False, False, True]
    assert events[-1].detector == "success_rate"


def test_success_rate_needs_minimum_hosts_and_volume():
    clock, cluster, det, _ = setup(n=5, max_ejection_percent=50)
    drive_interval(clock, det, cluster, [1, 1, 1, 1, 0.6], volume=99)  # below request volume
    assert not any(h.ejected for h in cluster.hosts)
    clock, cluster, det, _ = setup(n=4, max_ejection_percent=50)  # below minimum hosts
    drive_interval(clock, det, cluster, [1, 1, 1, 0.6])
    assert not any(h.ejected for h in cluster.hosts)


def test_istio_turns_success_rate_off():
    clock, cluster, det, _ = setup(n=5, max_ejection_percent=50, enforcing_success_rate=0)
    drive_interval(clock, det, cluster, [1, 1, 1, 1, 0.6])
    assert not any(h.ejected for h in cluster.hosts)
    assert det.stats["ejections_detected_success_rate"] == 1


def test_failure_percentage_when_enforced():
    clock, cluster, det, events = setup(n=5, max_ejection_percent=50, enforcing_success_rate=0,
                                        enforcing_failure_percentage=100, consecutive_5xx=0)
    drive_interval(clock, det, cluster, [1, 1, 1, 0.2, 0.1], volume=60)
    assert [h.ejected for h in cluster.hosts] == [False, False, False, False, True]
    assert events[-1].detector == "failure_percentage"


def test_local_origin_success_rate_when_split():
    clock, cluster, det, events = setup(n=5, max_ejection_percent=50, split_external_local_origin_errors=True,
                                        consecutive_local_origin_failure=0)
    for i, h in enumerate(cluster.hosts):
        for j in range(100):
            bad = i == 4 and j % 2 == 0
            det.report_local_origin(h, LocalOrigin.CONNECT_FAILED if bad else LocalOrigin.CONNECT_SUCCESS)
    advance(clock, det, 10)
    assert cluster.hosts[4].ejected and events[-1].detector == "local_origin_success_rate"


def test_istio_translation_matches_istiod():
    d = OutlierDetection.istio(consecutive_5xx_errors=7, base_ejection_time=600.0)
    assert (d.consecutive_5xx, d.enforcing_consecutive_5xx, d.enforcing_success_rate) == (7, 100, 0)
    assert d.max_ejection_time == 600.0 and d.max_ejection_percent == 10
    off = OutlierDetection.istio(consecutive_5xx_errors=0, consecutive_gateway_errors=3, max_ejection_percent=50)
    assert (off.enforcing_consecutive_5xx, off.consecutive_gateway_failure) == (0, 3)
    assert off.enforcing_consecutive_gateway_failure == 100 and off.max_ejection_percent == 50
    default = OutlierDetection.istio()
    assert (default.consecutive_5xx, default.enforcing_consecutive_5xx) == (5, 100)
    assert default.enforcing_consecutive_gateway_failure == 0
