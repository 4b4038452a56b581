"""Services through the real kubectl: allocation, the kubernetes Service, type changes."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.e2e


def test_kubernetes_service_points_at_the_api_server(mkp_cluster_module):
    k = mkp_cluster_module.kubectl
    svc = json.loads(k("get", "svc", "kubernetes", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.96.0.1" and svc["spec"]["ports"][0]["port"] == 443
    port = int(mkp_cluster_module.server.rsplit(":", 1)[1])
    ep = json.loads(k("get", "endpoints", "kubernetes", "-o", "json").stdout)
    assert ep["subsets"][0]["ports"][0]["port"] == port


def test_service_types_get_addresses_and_ports(mkp_cluster):
    k = mkp_cluster.kubectl
    k("create", "deployment", "web", "--image=nginx:1.27", "--port=80")
    assert k("expose", "deploy", "web", "--port=80", "--target-port=8080").stdout.strip() == "service/web exposed"
    k("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
    k("create", "service", "clusterip", "headless", "--clusterip=None", "--tcp=80:80")
    k("create", "service", "loadbalancer", "lb", "--tcp=80:80")
    out = k("get", "svc").stdout
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert re.search(r"^web\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80/TCP", out, re.M)
    assert re.search(r"^np\s+NodePort\s+10\.\d+\.\d+\.\d+\s+<none>\s+80:30080/TCP", out, re.M)
    assert re.search(r"^headless\s+ClusterIP\s+None\s+<none>\s+80/TCP", out, re.M)
    assert re.search(r"^lb\s+LoadBalancer\s+10\.\d+\.\d+\.\d+\s+<pending>\s+80:3\d{4}/TCP", out, re.M)
    taken = k("create", "service", "nodeport", "np2", "--tcp=80:8080", "--node-port=30080", check=False)
    assert taken.returncode != 0 and "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" \
        in taken.stderr
    k("patch", "svc", "np", "-p", '{"spec":{"type":"ClusterIP"}}')
    spec = json.loads(k("get", "svc", "np", "-o", "json").stdout)["spec"]
    assert "nodePort" not in spec["ports"][0] and "externalTrafficPolicy" not in spec
    k("create", "service", "nodeport", "np2", "--tcp=80:8080", "--node-port=30080")  # freed by the type change
    ip = json.loads(k("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    k("delete", "svc", "web")
    k("create", "service", "clusterip", "again", f"--clusterip={ip}", "--tcp=80:80")  # freed by the delete
