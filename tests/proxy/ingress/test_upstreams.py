"""Backends to endpoints: Service port by number or name, EndpointSlice port by name, readiness."""

from __future__ import annotations

import pytest

from minikube_py.client import Store
from minikube_py.client.store import Lister
from proxy.ingress.routes import ServiceBackend
from proxy.ingress.upstreams import Endpoint, Upstream, resolve


def lister(*objects: dict) -> Lister:
    store = Store()
    for obj in objects:
        store.upsert(obj)
    return Lister(store)


SERVICE = {"metadata": {"name": "web", "namespace": "d"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                              {"name": "admin", "port": 9000, "targetPort": "admin"}]}}


def endpoint(address: str, ready: bool | None = True, terminating: bool = False) -> dict:
    conditions: dict = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [address], "conditions": conditions}


SLICE = {"metadata": {"name": "web-1", "namespace": "d", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4",
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "admin", "port": 9901, "protocol": "TCP"}],
         "endpoints": [endpoint("127.244.1.2"), endpoint("127.244.1.3", ready=False, terminating=True),
                       endpoint("127.244.1.4", ready=None)]}
OTHER_SERVICE_SLICE = {**SLICE, "metadata": {"name": "api-1", "namespace": "d",
                                             "labels": {"kubernetes.io/service-name": "api"}}}


@pytest.mark.parametrize(("port", "expected"), [
    pytest.param(80, [Endpoint("127.244.1.2", 8080), Endpoint("127.244.1.4", 8080)], id="by-number"),
    pytest.param("admin", [Endpoint("127.244.1.2", 9901), Endpoint("127.244.1.4", 9901)], id="by-name"),
    pytest.param(81, [], id="no-such-port"),
])
def test_ready_endpoints_of_the_named_port(port, expected):
    got = resolve(ServiceBackend("d", "web", port), lister(SERVICE), lister(SLICE, OTHER_SERVICE_SLICE))
    assert got == expected


def test_missing_service_has_no_endpoints():
    assert resolve(ServiceBackend("d", "gone", 80), lister(SERVICE), lister(SLICE)) == []


def test_round_robin_offers_distinct_endpoints_for_retries():
    upstream = Upstream("u", [Endpoint("a", 1), Endpoint("b", 1), Endpoint("c", 1)])
    assert upstream.pick(3) == [Endpoint("a", 1), Endpoint("b", 1), Endpoint("c", 1)]
    assert upstream.pick(2) == [Endpoint("b", 1), Endpoint("c", 1)]
    assert Upstream("empty", []).pick(3) == []
