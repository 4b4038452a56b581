"""Pod networking end to end with the real kubectl (issue 5's "Done when"): a bridge-mode
cluster of two real nodes, the seed's order-service behind a Service, DNS names, NodePort
and LoadBalancer from the host, the seed's Ingress, NetworkPolicy, and a `mkp down`
that leaves no link, namespace, route or rule behind; then the loopback mode's subset.

Clients inside the cluster are busybox pods (`wget`, `nslookup`); answers come from the
podinfo image, whose JSON names the pod that served it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool, run_mkp, start_mkp_cluster
from tests.conftest import wait_until as _wait

pytestmark = pytest.mark.e2e

APPS = """
apiVersion: v1
kind: Namespace
metadata: {name: commerce, labels: {team: commerce}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: order-service, namespace: commerce}
spec:
  replicas: 3
  selector: {matchLabels: {app: order-service}}
  template:
    metadata: {labels: {app: order-service}}
    spec:
      containers:
        - name: order-service
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["./podinfo", "--port=8080"]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: order-service, namespace: commerce}
spec:
  selector: {app: order-service}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: inventory-service, namespace: commerce}
spec:
  replicas: 1
  selector: {matchLabels: {app: inventory-service}}
  template:
    metadata: {labels: {app: inventory-service}}
    spec:
      containers:
        - name: inventory-service
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["./podinfo", "--port=8080"]
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: inventory-service, namespace: commerce}
spec:
  selector: {app: inventory-service}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: order-nodeport, namespace: commerce}
spec:
  type: NodePort
  selector: {app: order-service}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: order-lb, namespace: commerce}
spec:
  type: LoadBalancer
  selector: {app: order-service}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["./podinfo", "--port=8080"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers:
    - name: client
      image: busybox:1.36
      command: ["sleep", "3600"]
"""

INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api-ingress
  namespace: commerce
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
spec:
  rules:
    - host: api.walmart.com
      http:
        paths:
          - path: /orders
            pathType: Prefix
            backend: {service: {name: order-service, port: {number: 80}}}
          - path: /inventory
            pathType: Prefix
            backend: {service: {name: inventory-service, port: {number: 80}}}
"""

DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: commerce}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

ALLOW_CLIENT = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: commerce}
spec:
  podSelector: {matchLabels: {app: order-service}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: default}}
          podSelector: {matchLabels: {app: client}}
      ports: [{port: http}]
"""


DOCKER_LESSON = """
apiVersion: v1
kind: Pod
metadata: {name: host-net}
spec:
  hostNetwork: true
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: no-net, annotations: {mkp.dev/network: none}}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
"""


def _require_bridge() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the bridge network needs root (CI=true: a failure, not a skip)")
        pytest.skip("the bridge network needs root")
    for tool in ("ip", "nft"):
        require_tool(tool)
    if not Path("/usr/lib/cni/bridge").exists():
        require_tool("/usr/lib/cni/bridge")


def _json(cluster: Any, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def _ready_pods(cluster: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    pods = _json(cluster, "get", "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])]


ERRORS: list[str] = []  # why fetches failed, for assertion messages


def _fetch(cluster: Any, url: str, *, pod: str = "client", namespace: str = "default", timeout: int = 5) -> str:
    """What `wget -qO- URL` prints in the client pod ("" when it fails). Debian's static
    busybox wget crashes with its own -T outside the host's root: `timeout` bounds it."""
    result = cluster.kubectl("exec", "-n", namespace, pod, "--", "timeout", str(timeout), "wget", "-qO-", url,
                             check=False)
    if result.returncode != 0:
        ERRORS.append(f"{url}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout if result.returncode == 0 else ""


def _hostname(body: str) -> str:
    try:
        return str(json.loads(body)["hostname"])
    except (ValueError, KeyError):
        return ""


def _answering(cluster: Any, url: str, count: int) -> list[str]:
    return [_hostname(_fetch(cluster, url)) for _ in range(count)]


def _http(url: str, *, host: str | None = None, timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError:
        return 0, ""


def _leftovers() -> list[str]:
    from minikube_py import network
    return network.leftovers()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _require_bridge()
    assert not _leftovers(), f"host network objects left by someone else: {_leftovers()}"
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp"), None, "--nodes", "2", "--network", "bridge") as c:
        _wait(lambda: c.kubectl("get", "nodes", "--no-headers", check=False).stdout.count(" Ready") == 2, 60,
              "two Ready nodes")
        c.kubectl("apply", "-f", "-", input=APPS)
        _wait(lambda: len(_ready_pods(c, "commerce", "app=order-service")) == 3, 90, "3 ready order-service pods")
        _wait(lambda: _ready_pods(c, "default", "app=client"), 60, "the client pod")
        yield c
    left = _leftovers()
    assert not left, f"mkp down left host network objects behind: {left}"


def test_pods_get_bridge_addresses_and_talk_across_nodes_without_nat(bridge: Any) -> None:
    pods = _ready_pods(bridge, "commerce", "app=order-service")
    client = _json(bridge, "get", "pod", "client")
    assert all(p["status"]["podIP"].startswith("10.244.") for p in [*pods, client])
    others = [p for p in pods if p["spec"]["nodeName"] != client["spec"]["nodeName"]]
    assert others, "the scheduler put every order-service pod on the client's node"
    body = _fetch(bridge, f"http://{others[0]['status']['podIP']}:8080/")
    assert _hostname(body) == others[0]["metadata"]["name"], body
    internal = {a["type"]: a["address"] for a in _json(bridge, "get", "node", bridge.name)["status"]["addresses"]}
    assert internal["InternalIP"] == "192.168.49.2"


def test_service_name_answers_from_every_backend_round_robin(bridge: Any) -> None:
    names = {p["metadata"]["name"] for p in _ready_pods(bridge, "commerce", "app=order-service")}
    for url in ("http://order-service.commerce.svc.cluster.local/", "http://order-service.commerce/"):
        answered = _answering(bridge, url, 3)
        assert set(answered) == names, (url, answered, names, ERRORS[-3:])


def test_a_curl_pod_reaches_the_service_by_name(bridge: Any) -> None:
    """What a learner types: a one-off curl pod (the curl project's image)."""
    bridge.kubectl("run", "curl", "--image=curlimages/curl", "--restart=Never", "--",
                   "-s", "http://order-service.commerce.svc.cluster.local/")
    _wait(lambda: _json(bridge, "get", "pod", "curl")["status"].get("phase") in ("Succeeded", "Failed"), 60,
          "the curl pod to finish")
    assert _json(bridge, "get", "pod", "curl")["status"]["phase"] == "Succeeded"
    assert _hostname(bridge.kubectl("logs", "curl").stdout).startswith("order-service-")
    bridge.kubectl("delete", "pod", "curl", "--wait=false")


def test_nodeport_and_load_balancer_answer_from_the_host(bridge: Any) -> None:
    names = {p["metadata"]["name"] for p in _ready_pods(bridge, "commerce", "app=order-service")}
    for base in ("http://127.0.0.1:30080", "http://192.168.49.2:30080", "http://192.168.49.3:30080"):
        status, body = _http(base + "/")
        assert status == 200 and _hostname(body) in names, (base, status, body)
    ip = _wait(lambda: (_json(bridge, "get", "svc", "-n", "commerce", "order-lb")["status"]
                        .get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip"), 20, "the LB address")
    assert ip.startswith("127.3.")
    status, body = _http(f"http://{ip}/")
    assert status == 200 and _hostname(body) in names
    table = bridge.kubectl("get", "svc", "-n", "commerce", "order-lb").stdout
    assert ip in table and "80:3" in table, table
    # The API server's services/proxy (what `kubectl proxy` users browse): a ready endpoint.
    for port in ("http", "80"):
        body = bridge.kubectl("get", "--raw", f"/api/v1/namespaces/commerce/services/order-service:{port}/proxy/").stdout
        assert _hostname(body) in names, body
    missing = bridge.kubectl("get", "--raw", "/api/v1/namespaces/commerce/services/order-service:99/proxy/",
                             check=False)
    assert 'no service port 99 found for service "order-service"' in missing.stderr


def test_ingress_routes_orders_and_inventory(bridge: Any) -> None:
    bridge.kubectl("apply", "-f", "-", input=INGRESS)
    _wait(lambda: _hostname(_http("http://127.0.0.1/orders", host="api.walmart.com")[1]).startswith("order-service"),
          30, "/orders through the Ingress")
    status, body = _http("http://127.0.0.1/inventory", host="api.walmart.com")
    assert status == 200 and _hostname(body).startswith("inventory-service")
    assert _http("http://127.0.0.1/orders", host="other.example.com")[0] == 404
    _wait(lambda: (_json(bridge, "get", "ingress", "-n", "commerce", "api-ingress")["status"]
                   .get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip") == "127.0.0.1", 20,
          "the Ingress status")


def test_dns_answers_for_headless_and_statefulset_names(bridge: Any) -> None:
    _wait(lambda: len(_ready_pods(bridge, "default", "app=web")) == 2, 90, "two web pods")
    web0 = _json(bridge, "get", "pod", "web-0")["status"]["podIP"]

    def lookup(name: str) -> str:
        result = bridge.kubectl("exec", "client", "--", "nslookup", name, check=False)
        return result.stdout if result.returncode == 0 else ""

    assert web0 in _wait(lambda: lookup("web-0.nginx.default.svc.cluster.local"), 20, "web-0's name")
    headless = lookup("nginx.default.svc.cluster.local")
    for pod in _ready_pods(bridge, "default", "app=web"):
        assert pod["status"]["podIP"] in headless
    assert "NXDOMAIN" in bridge.kubectl("exec", "client", "--", "nslookup", "nope.default.svc.cluster.local",
                                        check=False).stdout + bridge.kubectl(
        "exec", "client", "--", "nslookup", "nope.default.svc.cluster.local", check=False).stderr


def test_unready_pod_stops_getting_traffic(bridge: Any) -> None:
    pods = _ready_pods(bridge, "commerce", "app=order-service")
    victim = pods[0]
    bridge.kubectl("exec", "client", "--", "timeout", "3", "wget", "-qO-", "--post-data", "",
                   f"http://{victim['status']['podIP']}:8080/readyz/disable", check=False)
    _wait(lambda: victim["metadata"]["name"] not in {p["metadata"]["name"] for p in
                                                     _ready_pods(bridge, "commerce", "app=order-service")},
          20, "the pod to turn unready")
    time.sleep(1.0)  # the bound: no new connection 1 s after the endpoint change
    answered = _answering(bridge, "http://order-service.commerce/", 6)
    assert victim["metadata"]["name"] not in answered and all(answered), answered
    bridge.kubectl("exec", "client", "--", "timeout", "3", "wget", "-qO-", "--post-data", "",
                   f"http://{victim['status']['podIP']}:8080/readyz/enable", check=False)


def test_scaling_changes_the_answering_set(bridge: Any) -> None:
    bridge.kubectl("scale", "-n", "commerce", "deployment/order-service", "--replicas=2")
    _wait(lambda: len(_json(bridge, "get", "pods", "-n", "commerce", "-l", "app=order-service")["items"]) == 2
          and len(_ready_pods(bridge, "commerce", "app=order-service")) == 2, 60, "two order-service pods")
    names = {p["metadata"]["name"] for p in _ready_pods(bridge, "commerce", "app=order-service")}
    time.sleep(1.0)
    answered = _answering(bridge, "http://order-service.commerce/", 4)
    assert set(answered) == names, (answered, names, ERRORS[-4:])


def test_network_policy_default_deny_then_allow(bridge: Any) -> None:
    target = _ready_pods(bridge, "commerce", "app=order-service")[0]["status"]["podIP"]
    assert _fetch(bridge, f"http://{target}:8080/")
    bridge.kubectl("apply", "-f", "-", input=DENY_ALL)
    _wait(lambda: not _fetch(bridge, f"http://{target}:8080/", timeout=1), 20, "default deny to block")
    assert not _fetch(bridge, "http://order-service.commerce/", timeout=1)
    bridge.kubectl("apply", "-f", "-", input=ALLOW_CLIENT)
    _wait(lambda: _fetch(bridge, f"http://{target}:8080/", timeout=1), 20, "the allow rule to re-open")
    assert _fetch(bridge, "http://order-service.commerce/")
    bridge.kubectl("delete", "networkpolicy", "-n", "commerce", "default-deny", "allow-client")


def test_docker_lesson_host_bridge_and_none(bridge: Any) -> None:
    """The seed's Docker network drivers: host (hostNetwork), bridge (every pod here), none."""
    bridge.kubectl("apply", "-f", "-", input=DOCKER_LESSON)
    _wait(lambda: len(_ready_pods(bridge, "default", "app!=web,app!=client")) >= 2, 60, "host-net and no-net Ready")
    host = _json(bridge, "get", "pod", "host-net")
    node = _json(bridge, "get", "node", host["spec"]["nodeName"])
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert host["status"]["podIP"] == internal
    links = bridge.kubectl("exec", "host-net", "--", "ip", "-o", "link").stdout
    assert "mkpbr" in links  # the host's own links: the node bridges
    none = _json(bridge, "get", "pod", "no-net")
    assert not none["status"].get("podIP")
    links = bridge.kubectl("exec", "no-net", "--", "ip", "-o", "link").stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
    assert not _fetch(bridge, "http://order-service.commerce/", pod="no-net", timeout=2)
    client_links = bridge.kubectl("exec", "client", "--", "ip", "-o", "link").stdout
    assert "eth0" in client_links and "mkpbr" not in client_links


MORE_SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: order-sticky, namespace: commerce}
spec:
  selector: {app: order-service}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: orders-alias, namespace: default}
spec:
  type: ExternalName
  externalName: order-service.commerce.svc.cluster.local
"""


def test_session_affinity_external_name_and_hairpin(bridge: Any) -> None:
    bridge.kubectl("apply", "-f", "-", input=MORE_SERVICES)
    _wait(lambda: _fetch(bridge, "http://order-sticky.commerce/"), 20, "order-sticky to answer")
    sticky = _answering(bridge, "http://order-sticky.commerce/", 4)
    assert len(set(sticky)) == 1 and sticky[0], (sticky, ERRORS[-4:])
    # ExternalName: a CNAME to the Service's own name, which the cluster DNS follows.
    lookup = bridge.kubectl("exec", "client", "--", "nslookup", "orders-alias.default.svc.cluster.local").stdout
    assert "order-service.commerce.svc.cluster.local" in lookup
    service_ip = _json(bridge, "get", "svc", "-n", "commerce", "order-service")["spec"]["clusterIP"]
    assert service_ip in lookup
    # Hairpin: a pod reaches itself through its own Service.
    pods = _ready_pods(bridge, "commerce", "app=order-service")
    me = pods[0]["metadata"]["name"]
    for _ in range(2 * len(pods)):  # round robin: at least twice to itself
        result = bridge.kubectl("exec", "-n", "commerce", me, "--", "podcli", "check", "http", "--delay", "0s",
                                "order-service.commerce.svc.cluster.local/", check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ingress_tls_from_a_secret(bridge: Any, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=api.walmart.com", "-addext", "subjectAltName=DNS:api.walmart.com",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    bridge.kubectl("create", "secret", "tls", "tls-secret", "-n", "commerce", f"--cert={cert}", f"--key={key}")
    tls_ingress = INGRESS.replace("name: api-ingress", "name: api-ingress-tls").replace(
        "spec:\n  rules:", "spec:\n  tls:\n    - hosts: [api.walmart.com]\n      secretName: tls-secret\n  rules:")
    assert "secretName: tls-secret" in tls_ingress
    bridge.kubectl("apply", "-f", "-", input=tls_ingress)
    curl = require_tool("curl")

    def https_orders() -> str:
        result = subprocess.run([curl, "-s", "--cacert", str(cert), "--resolve", "api.walmart.com:443:127.0.0.1",
                                 "https://api.walmart.com/orders"], capture_output=True, text=True, timeout=10)
        return result.stdout if result.returncode == 0 else ""

    assert _hostname(_wait(https_orders, 30, "https through the Ingress")).startswith("order-service")
    redirect = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H",
                               "Host: api.walmart.com", "http://127.0.0.1/orders"], capture_output=True, text=True)
    assert redirect.stdout.startswith("308 https://api.walmart.com/orders"), redirect.stdout
    bridge.kubectl("delete", "ingress", "-n", "commerce", "api-ingress-tls")


def test_down_and_up_again_brings_the_pods_back_on_the_network(bridge: Any) -> None:
    """Last in the module: `mkp down` (state kept) removes every pod namespace and host
    object, `mkp up` makes them again and the Service answers from its pods."""
    replicas = len(_ready_pods(bridge, "commerce", "app=order-service"))  # 2 after the scaling test, else 3
    run_mkp("down", "--name", bridge.name, env=bridge.env)
    assert not _leftovers(), _leftovers()
    run_mkp("up", "--name", bridge.name, "--no-merge", env=bridge.env)
    _wait(lambda: len(_ready_pods(bridge, "commerce", "app=order-service")) == replicas, 90, "the pods Ready again")
    names = {p["metadata"]["name"] for p in _ready_pods(bridge, "commerce", "app=order-service")}
    _wait(lambda: set(_answering(bridge, "http://order-service.commerce/", 4)) == names, 30,
          "the Service to answer from both pods again")
