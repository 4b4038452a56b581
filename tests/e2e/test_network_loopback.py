"""The loopback pod network's subset of issue 5, with the real kubectl: pods share the
host's network namespace with 127.x addresses, Services get 127.96.x ClusterIPs served by
the first node's proxy, pods (namespaces runtime) resolve cluster names through kube-dns,
NodePorts, load balancers and the Ingress answer from the host. NetworkPolicy is not
enforced in this mode: pods share the host's namespace and their connections leave from
127.0.0.1, so neither the kernel nor the proxy can tell which pod is the client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import start_mkp_cluster
from tests.conftest import wait_until as _wait
from tests.e2e.test_network import (
    APPS,
    INGRESS,
    _answering,
    _hostname,
    _http,
    _json,
    _ready_pods,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if os.geteuid() != 0:  # the namespaces runtime (a resolv.conf of the pod's own) needs root
        pytest.skip("needs root")
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "1", "--network", "loopback") as c:
        _wait(lambda: " Ready" in c.kubectl("get", "nodes", "--no-headers", check=False).stdout, 60, "a Ready node")
        c.kubectl("apply", "-f", "-", input=APPS.replace("replicas: 3", "replicas: 2"))
        _wait(lambda: len(_ready_pods(c, "commerce", "app=order-service")) == 2, 90, "2 ready order-service pods")
        _wait(lambda: _ready_pods(c, "default", "app=client"), 60, "the client pod")
        yield c


def test_service_names_resolve_and_balance_over_the_backends(loopback: Any) -> None:
    service = _json(loopback, "get", "svc", "-n", "commerce", "order-service")
    assert service["spec"]["clusterIP"].startswith("127.96.")
    names = {p["metadata"]["name"] for p in _ready_pods(loopback, "commerce", "app=order-service")}
    assert all(p["status"]["podIP"].startswith("127.244.") for p in _ready_pods(loopback, "commerce", "app=order-service"))
    for url in ("http://order-service.commerce.svc.cluster.local/", "http://order-service.commerce/"):
        assert set(_answering(loopback, url, 4)) == names, url
    dns = _json(loopback, "get", "svc", "-n", "kube-system", "kube-dns")["spec"]["clusterIP"]
    assert dns == "127.96.0.10"


def test_nodeport_load_balancer_and_ingress_from_the_host(loopback: Any) -> None:
    names = {p["metadata"]["name"] for p in _ready_pods(loopback, "commerce", "app=order-service")}
    for base in ("http://127.0.0.1:30080", "http://127.2.0.1:30080"):
        status, body = _http(base + "/")
        assert status == 200 and _hostname(body) in names, (base, status, body)
    ip = _wait(lambda: (_json(loopback, "get", "svc", "-n", "commerce", "order-lb")["status"]
                        .get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip"), 20, "the LB address")
    assert _hostname(_http(f"http://{ip}/")[1]) in names
    loopback.kubectl("apply", "-f", "-", input=INGRESS)
    _wait(lambda: _hostname(_http("http://127.0.0.1/inventory", host="api.walmart.com")[1])
          .startswith("inventory-service"), 30, "/inventory through the Ingress")


def test_statefulset_names_resolve(loopback: Any) -> None:
    _wait(lambda: len(_ready_pods(loopback, "default", "app=web")) == 2, 90, "two web pods")
    web1 = _json(loopback, "get", "pod", "web-1")["status"]["podIP"]
    out = _wait(lambda: loopback.kubectl("exec", "client", "--", "nslookup", "web-1.nginx.default.svc.cluster.local",
                                         check=False).stdout, 20, "web-1's name")
    assert web1 in out
