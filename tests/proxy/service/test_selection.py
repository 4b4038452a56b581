"""Endpoint selection, frontends and round robin as pure code: kube-proxy's rules for
conditions, terminating fallback, traffic policies, zone hints, named ports, and which
addresses each node's proxy listens on."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.client import FakeClock
from proxy.service.balancer import Balancer
from proxy.service.endpoints import Endpoint, select, slice_endpoints
from proxy.service.model import (
    CLUSTER_IP,
    EXTERNAL,
    INTERNAL,
    LOAD_BALANCER,
    NODE_PORT,
    Frontend,
    ProxyConfig,
    plan_service,
)

Obj = dict[str, Any]


def ep(ip: str, node: str = "n1", **conditions: Any) -> Obj:
    out: Obj = {"addresses": [ip], "nodeName": node}
    if conditions:
        out["conditions"] = conditions
    return out


def slice_of(endpoints: list[Obj], *, port: int = 8080, name: str = "http", protocol: str = "TCP",
             address_type: str = "IPv4") -> Obj:
    return {"addressType": address_type, "endpoints": endpoints,
            "ports": [{"name": name, "port": port, "protocol": protocol}]}


def svc(**spec: Any) -> Obj:
    body: Obj = {"clusterIP": "10.96.0.15", "clusterIPs": ["10.96.0.15"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}], **spec}
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": body}


def ips(endpoints: tuple[Endpoint, ...] | list[Endpoint]) -> list[str]:
    return [e.ip for e in endpoints]


def test_conditions_default_as_in_kubernetes_and_duplicates_prefer_ready() -> None:
    slices = [slice_of([ep("10.0.0.1"), ep("10.0.0.2", ready=False), ep("10.0.0.3", ready=False, serving=True,
                                                                         terminating=True)]),
              slice_of([ep("10.0.0.2", ready=True)])]  # the same endpoint, ready, in a second slice
    found = {e.ip: e for e in slice_endpoints(slices, "http", "TCP")}
    assert (found["10.0.0.1"].ready, found["10.0.0.1"].serving, found["10.0.0.1"].terminating) == (True, True, False)
    assert found["10.0.0.2"].ready
    assert (found["10.0.0.3"].ready, found["10.0.0.3"].serving, found["10.0.0.3"].terminating) == (False, True, True)


def test_named_target_ports_resolve_per_slice_and_other_ports_are_ignored() -> None:
    slices = [slice_of([ep("10.0.0.1")], port=8080), slice_of([ep("10.0.0.2")], port=9090),
              slice_of([ep("10.0.0.3")], name="metrics", port=9100),
              slice_of([ep("10.0.0.4")], protocol="UDP"), slice_of([ep("fd00::1")], address_type="IPv6")]
    assert [e.address for e in slice_endpoints(slices, "http", "TCP")] == [("10.0.0.1", 8080), ("10.0.0.2", 9090)]


@pytest.mark.parametrize(("endpoints", "local", "expected", "has_any"), [
    pytest.param([ep("a"), ep("b", ready=False)], False, ["a"], True, id="ready-only"),
    pytest.param([ep("a", ready=False, serving=True, terminating=True), ep("b", ready=False)], False, ["a"], True,
                 id="terminating-serving-fallback"),
    pytest.param([ep("a", ready=False, serving=True, terminating=True), ep("b")], False, ["b"], True,
                 id="ready-beats-terminating"),
    pytest.param([ep("a", ready=False, serving=False, terminating=True)], False, [], False, id="nothing-usable"),
    pytest.param([ep("a", node="n1"), ep("b", node="n2")], True, ["a"], True, id="local-only"),
    pytest.param([ep("b", node="n2")], True, [], True, id="local-none-drops-but-has-any"),
    pytest.param([ep("a", node="n1", ready=False, serving=True, terminating=True), ep("b", node="n2")], True, ["a"],
                 True, id="local-terminating-fallback"),
])
def test_selection(endpoints: list[Obj], local: bool, expected: list[str], has_any: bool) -> None:
    found = slice_endpoints([slice_of([{**e, "addresses": [f"10.0.0.{ord(e['addresses'][0][0])}"]}
                                       for e in endpoints])], "http", "TCP")
    selection = select(found, local=local, node="n1")
    assert ips(selection.endpoints) == [f"10.0.0.{ord(x)}" for x in expected]
    assert selection.has_any == has_any


def test_zone_hints_narrow_to_this_zone_only_when_every_ready_endpoint_has_them() -> None:
    def hinted(ip: str, zone: str | None) -> Obj:
        out = ep(ip)
        if zone:
            out["hints"] = {"forZones": [{"name": zone}]}
        return out

    both = slice_endpoints([slice_of([hinted("10.0.0.1", "a"), hinted("10.0.0.2", "b")])], "http", "TCP")
    assert ips(select(both, local=False, node="n1", zone="a").endpoints) == ["10.0.0.1"]
    assert ips(select(both, local=False, node="n1", zone="c").endpoints) == ["10.0.0.1", "10.0.0.2"]
    assert ips(select(both, local=False, node="n1", zone="").endpoints) == ["10.0.0.1", "10.0.0.2"]
    partly = slice_endpoints([slice_of([hinted("10.0.0.1", "a"), hinted("10.0.0.2", None)])], "http", "TCP")
    assert ips(select(partly, local=False, node="n1", zone="a").endpoints) == ["10.0.0.1", "10.0.0.2"]


def test_frontends_per_kind_and_flags() -> None:
    service = svc(type="LoadBalancer", externalIPs=["192.168.49.2"])
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "127.3.0.1", "ipMode": "VIP"},
                                                      {"ip": "127.3.0.2", "ipMode": "Proxy"}]}}
    slices = [slice_of([ep("10.244.255.2")])]
    first = ProxyConfig("n1", ("lo", "mkpbr1"), True, ("127.0.0.1", "192.168.49.2"), True)
    plan = plan_service(service, slices, first)
    kinds = {(str(f), r.kind, r.traffic) for f, r in plan.frontends.items()}
    assert kinds == {
        ("10.96.0.15:80/TCP on lo", CLUSTER_IP, INTERNAL), ("10.96.0.15:80/TCP on mkpbr1", CLUSTER_IP, INTERNAL),
        ("192.168.49.2:80/TCP on lo", "ExternalIP", EXTERNAL), ("192.168.49.2:80/TCP on mkpbr1", "ExternalIP", EXTERNAL),
        ("127.0.0.1:30080/TCP", NODE_PORT, EXTERNAL), ("192.168.49.2:30080/TCP", NODE_PORT, EXTERNAL),
        ("127.3.0.1:80/TCP", LOAD_BALANCER, EXTERNAL)}  # ipMode Proxy: not bound
    second = ProxyConfig("n2", ("mkpbr2",), True, ("192.168.49.3",), False)
    assert sorted(map(str, plan_service(service, slices, second).frontends)) == [
        "10.96.0.15:80/TCP on mkpbr2", "192.168.49.2:80/TCP on mkpbr2", "192.168.49.3:30080/TCP"]
    loopback_other = ProxyConfig("n2", (), False, ("127.2.0.2",), False)
    assert list(plan_service(service, slices, loopback_other).frontends) == [Frontend("127.2.0.2", 30080, "TCP")]


@pytest.mark.parametrize("service", [
    pytest.param(svc(clusterIP="None", clusterIPs=["None"]), id="headless"),
    pytest.param({"metadata": {"name": "x", "namespace": "d"}, "spec": {"type": "ExternalName",
                                                                        "externalName": "example.com"}},
                 id="external-name"),
])
def test_headless_and_external_name_have_no_frontends(service: Obj) -> None:
    plan = plan_service(service, [slice_of([ep("10.0.0.1")])], ProxyConfig("n1"))
    assert not plan.frontends and not plan.groups


def test_sctp_is_skipped_with_a_reason_and_affinity_defaults_to_three_hours() -> None:
    service = svc(ports=[{"name": "s", "port": 9, "protocol": "SCTP"}, {"name": "http", "port": 80}],
                  sessionAffinity="ClientIP")
    plan = plan_service(service, [slice_of([ep("10.0.0.1")])], ProxyConfig("n1"))
    assert plan.skipped == ["default/web:s: protocol SCTP is not proxied"]
    assert [g.affinity_timeout for g in plan.groups.values()] == [10800.0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"node_name": ""}, "--hostname-override"),
    ({"node_name": "n", "nodeport_addresses": ("10.0.0.0/8",)}, "not an IP address"),
    ({"node_name": "n", "bind_devices": ("a-very-long-device-name",)}, "not a network device name"),
])
def test_bad_flags_are_clear_errors(kwargs: Obj, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProxyConfig(**kwargs)


def endpoints(*names: str) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(f"10.0.0.{n}", 80) for n in names)


def test_round_robin_rotates_and_carries_its_place_over_updates() -> None:
    balancer = Balancer()
    balancer.update(endpoints("1", "2", "3"))
    assert [balancer.pick("c").ip for _ in range(4)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"]
    balancer.update(endpoints("1", "3"))  # 2 turned unready
    assert [balancer.pick("c").ip for _ in range(3)] == ["10.0.0.3", "10.0.0.1", "10.0.0.3"]
    balancer.update(())
    assert balancer.pick("c") is None


def test_client_ip_affinity_sticks_until_idle_timeout_or_endpoint_gone() -> None:
    clock = FakeClock()
    balancer = Balancer(clock=clock)
    balancer.update(endpoints("1", "2"), affinity_timeout=10)
    first = balancer.pick("10.1.1.1")
    assert all(balancer.pick("10.1.1.1") == first for _ in range(5))
    assert balancer.pick("10.1.1.2") != first  # another client continues the rotation
    clock.advance(11)
    balancer.pick("10.1.1.3")  # move the rotation on
    assert balancer.pick("10.1.1.1") is not None
    sticky = balancer.pick("10.1.1.1")
    balancer.update(tuple(e for e in endpoints("1", "2") if e != sticky), affinity_timeout=10)
    assert balancer.pick("10.1.1.1") != sticky
