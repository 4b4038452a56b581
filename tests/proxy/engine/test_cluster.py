"""Cluster membership, kept host state on update, and Envoy's panic mode."""

from __future__ import annotations

import pytest

from proxy.engine.cluster import Cluster, CommonLbConfig, Endpoint


def eps(n: int, weight: int = 1) -> list[Endpoint]:
    return [Endpoint(f"127.0.0.{i + 1}", 8080, weight) for i in range(n)]


def test_update_keeps_state_of_endpoints_that_stay():
    c = Cluster("c", eps(3))
    h1 = c.hosts[1]
    h1.active_requests = 4
    h1.ejected = True
    h1.ejection_multiplier = 2
    added, removed = c.update([Endpoint("127.0.0.2", 8080, 5), Endpoint("127.0.0.9", 8080)])
    assert c.hosts[0] is h1 and h1.weight == 5 and h1.active_requests == 4 and h1.ejection_multiplier == 2
    assert [h.address for h in added] == ["127.0.0.9"]
    assert sorted(h.address for h in removed) == ["127.0.0.1", "127.0.0.3"]


def test_update_bumps_version_and_rejects_duplicates():
    c = Cluster("c", eps(2))
    v = c.version
    c.update(eps(2))
    assert c.version == v + 1
    with pytest.raises(ValueError, match="127.0.0.1:8080 listed twice"):
        c.update(eps(1) + eps(1))


def test_healthy_hosts_skip_ejected_and_eds_unhealthy():
    c = Cluster("c", eps(3) + [Endpoint("127.0.0.9", 1, health_status="DRAINING")])
    c.hosts[0].ejected = True
    c.changed()
    assert [h.address for h in c.healthy_hosts()] == ["127.0.0.2", "127.0.0.3"]
    hosts, panic = c.lb_hosts()
    assert not panic and len(hosts) == 2  # 2/4 = 50 %, not below the threshold


def test_panic_mode_below_threshold_uses_all_hosts():
    c = Cluster("c", eps(4))
    for h in c.hosts[:3]:
        h.ejected = True
    c.changed()
    hosts, panic = c.lb_hosts()
    assert panic and len(hosts) == 4


def test_istio_min_health_percent_zero_disables_panic():
    c = Cluster("c", eps(4), common_lb_config=CommonLbConfig(healthy_panic_threshold=0))
    for h in c.hosts:
        h.ejected = True
    c.changed()
    assert c.lb_hosts() == ((), False)  # no host: the router answers 503 UH


def test_lb_hosts_cache_follows_version():
    c = Cluster("c", eps(2))
    assert len(c.lb_hosts()[0]) == 2
    c.hosts[0].ejected = True
    assert len(c.lb_hosts()[0]) == 2  # not told yet
    c.changed()
    assert len(c.lb_hosts()[0]) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"address": "", "port": 1}, "socket_address.address", id="address"),
        pytest.param({"address": "a", "port": 0}, "port_value", id="port"),
        pytest.param({"address": "a", "port": 1, "load_balancing_weight": 0}, "load_balancing_weight", id="weight"),
        pytest.param({"address": "a", "port": 1, "health_status": "SICK"}, "health_status", id="health"),
    ],
)
def test_bad_endpoint_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Endpoint(**kwargs)


def test_bad_panic_threshold():
    with pytest.raises(ValueError, match="healthy_panic_threshold"):
        CommonLbConfig(healthy_panic_threshold=101)
