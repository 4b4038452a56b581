"""`mkp dns` against a real API server: the process as a user starts it, objects made
with kubectl, answers read with dig and dnspython. The server listens on a loopback
address of its own with a free port."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from minikube_py.client import SERVICES, ApiClient, ApiError
from tests.conftest import REPO_ROOT, MkpCluster, require_tool, start_mkp_cluster, wait_until

HOST = "127.53.53.1"
SERVICE_IP = "10.96.0.10"


def _free_port(host: str) -> int:
    """A port free for both UDP and TCP on `host`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


class DnsProcess:
    def __init__(self, cluster: MkpCluster, log: Path) -> None:
        self.cluster = cluster
        self.port = _free_port(HOST)
        self.metrics_port = _free_port(HOST)
        self.log = log
        argv = [sys.executable, "-c", "from cni.dns.cli import dns_command; dns_command()",
                "--kubeconfig", str(cluster.kubeconfig), "--listen", f"{HOST}:{self.port}",
                "--service-ip", SERVICE_IP, "--cluster-domain", "cluster.local",
                "--metrics-bind-address", f"{HOST}:{self.metrics_port}"]
        with log.open("w") as out:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, env=cluster.env, stdout=out, stderr=out)

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.metrics_port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def ask(self, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        if tcp:
            return dns.query.tcp(query, HOST, port=self.port, timeout=2)
        return dns.query.udp(query, HOST, port=self.port, timeout=2)

    def values(self, name: str, rdtype: str = "A") -> list[str] | None:
        """Sorted answer data, or None for an error rcode (NXDOMAIN...)."""
        response = self.ask(name, rdtype)
        if response.rcode() != dns.rcode.NOERROR:
            return None
        return sorted(rd.to_text() for rrset in response.answer for rd in rrset)

    def dig(self, *args: str) -> str:
        argv = [require_tool("dig"), f"@{HOST}", "-p", str(self.port), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MkpCluster]:
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp")) as c:
        yield c


@pytest.fixture(scope="module")
def server(cluster: MkpCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsProcess]:
    process = DnsProcess(cluster, tmp_path_factory.mktemp("dns") / "dns.log")
    try:
        wait_until(lambda: process.http("/ready")[0] == 200 or process.process.poll() is not None, 30,
                   "mkp dns to be ready")
        assert process.process.poll() is None, process.log.read_text()
        yield process
    finally:
        process.stop()


def apply(cluster: MkpCluster, *objects: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def within_a_second(check, what: str) -> float:
    """Seconds until `check()` is truthy; fails after 1 s."""
    started = time.monotonic()
    wait_until(check, 1.0, what, interval=0.02)
    return time.monotonic() - started


def get(cluster: MkpCluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", "-o", "json", *args).stdout)


# -- the kube-dns Service and its slice ------------------------------------------------------


def test_kube_dns_service_is_ensured_without_a_selector(cluster, server):
    svc = get(cluster, "-n", "kube-system", "service", "kube-dns")
    assert svc["metadata"]["labels"] == {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                         "kubernetes.io/name": "CoreDNS"}
    assert "selector" not in svc["spec"]
    assert svc["spec"]["clusterIP"] == SERVICE_IP
    assert sorted((p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]) == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]


def test_kube_dns_slice_points_at_the_listener_and_the_controller_leaves_it_alone(cluster, server):
    slices = get(cluster, "-n", "kube-system", "endpointslices", "-l", "kubernetes.io/service-name=kube-dns")["items"]
    [ours] = slices
    assert ours["metadata"]["name"] == "kube-dns-mkp"
    assert ours["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "mkp-dns"
    assert ours["endpoints"] == [{"addresses": [HOST], "conditions": {"ready": True, "serving": True,
                                                                      "terminating": False}}]
    assert sorted((p["name"], p["port"], p["protocol"]) for p in ours["ports"]) == [
        ("dns", server.port, "UDP"), ("dns-tcp", server.port, "TCP"), ("metrics", server.metrics_port, "TCP")]
    time.sleep(1.5)  # room for the EndpointSlice controller, or for us, to write something
    again = get(cluster, "-n", "kube-system", "endpointslices", "-l", "kubernetes.io/service-name=kube-dns")["items"]
    assert [s["metadata"]["resourceVersion"] for s in again] == [ours["metadata"]["resourceVersion"]]


def test_kube_dns_endpoints_are_written_too_and_not_mirrored(cluster, server):
    endpoints = wait_until(lambda: cluster.kubectl("-n", "kube-system", "get", "endpoints", "kube-dns", "-o", "json",
                                                   check=False).stdout, 5, "the kube-dns Endpoints")
    obj = json.loads(endpoints)
    assert obj["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"
    [subset] = obj["subsets"]
    assert subset["addresses"] == [{"ip": HOST}]
    assert sorted((p["name"], p["port"]) for p in subset["ports"]) == [
        ("dns", server.port), ("dns-tcp", server.port), ("metrics", server.metrics_port)]
    table = cluster.kubectl("-n", "kube-system", "get", "endpoints", "kube-dns").stdout
    assert f"{HOST}:{server.port}" in table


def test_kube_dns_objects_are_put_back_when_changed(cluster, server):
    cluster.kubectl("-n", "kube-system", "delete", "endpointslice", "kube-dns-mkp")
    within_a_second(lambda: cluster.kubectl("-n", "kube-system", "get", "endpointslice", "kube-dns-mkp",
                                            check=False).returncode == 0, "the slice to come back")
    cluster.kubectl("-n", "kube-system", "patch", "service", "kube-dns", "--type", "merge",
                    "-p", '{"spec": {"selector": {"k8s-app": "kube-dns"}}}')
    within_a_second(lambda: "selector" not in get(cluster, "-n", "kube-system", "service", "kube-dns")["spec"],
                    "the selector to be removed")


def test_kube_dns_with_another_cluster_ip_is_created_again(cluster, server):
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
             "spec": {"clusterIP": "10.96.0.11", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}

    async def swap() -> bool:
        """Delete kube-dns and create it with another address before mkp dns does."""
        async with ApiClient.from_kubeconfig(cluster.kubeconfig) as client:
            await client.delete(SERVICES, "kube-dns", "kube-system")
            try:
                await client.create(SERVICES, other)
            except ApiError as exc:
                if exc.is_already_exists():
                    return False
                raise
            return True

    assert any(asyncio.run(swap()) for _ in range(20)), "mkp dns always won the race"

    def recreated() -> bool:
        found = cluster.kubectl("-n", "kube-system", "get", "service", "kube-dns", "-o", "json", check=False)
        return found.returncode == 0 and json.loads(found.stdout)["spec"]["clusterIP"] == SERVICE_IP

    wait_until(recreated, 5, "kube-dns to get its address back", interval=0.05)
    owner = get(cluster, "-n", "kube-system", "endpointslice", "kube-dns-mkp")["metadata"]["ownerReferences"][0]
    wait_until(lambda: get(cluster, "-n", "kube-system", "endpointslice", "kube-dns-mkp")["metadata"]
               ["ownerReferences"][0]["uid"] == get(cluster, "-n", "kube-system", "service", "kube-dns")
               ["metadata"]["uid"], 5, "the slice to name the new Service as its owner", interval=0.05)
    assert owner["kind"] == "Service" and owner["name"] == "kube-dns"


# -- records --------------------------------------------------------------------------------


def test_service_a_and_srv_records_with_dig(cluster, server):
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
    ip = get(cluster, "service", "web")["spec"]["clusterIP"]
    within_a_second(lambda: server.values("web.default.svc.cluster.local") == [ip], "the A record")
    assert server.dig("+short", "web.default.svc.cluster.local").split() == [ip]
    assert server.dig("+short", "+tcp", "web.default.svc.cluster.local").split() == [ip]
    assert server.dig("+short", "SRV", "_http._tcp.web.default.svc.cluster.local").split() == [
        "0", "100", "80", "web.default.svc.cluster.local."]
    assert server.values("kubernetes.default.svc.cluster.local") == ["10.96.0.1"]
    assert server.values("kube-dns.kube-system.svc.cluster.local") == [SERVICE_IP]


def test_nxdomain_carries_the_zone_soa(server):
    out = server.dig("nope.default.svc.cluster.local")
    assert "status: NXDOMAIN" in out and "flags: qr aa rd" in out
    authority = out.split("AUTHORITY SECTION:")[1].split()
    assert authority[:6] == ["cluster.local.", "5", "IN", "SOA", "ns.dns.cluster.local.", "hostmaster.cluster.local."]
    assert "status: SERVFAIL" in server.dig("www.example.com")


def test_tcp_answers_the_same_as_udp(server):
    udp, tcp = server.ask("kubernetes.default.svc.cluster.local"), server.ask("kubernetes.default.svc.cluster.local",
                                                                            tcp=True)
    assert udp.answer == tcp.answer and udp.answer


def test_records_follow_service_deletion_within_a_second(cluster, server):
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "short", "namespace": "default"},
                    "spec": {"ports": [{"port": 80}]}})
    within_a_second(lambda: server.values("short.default.svc.cluster.local"), "the new Service's name")
    cluster.kubectl("delete", "service", "short", "--wait=false")
    within_a_second(lambda: server.ask("short.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN,
                    "NXDOMAIN after the delete")


def _statefulset_slice(ready_web_1: bool) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "nginx-pods", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "nginx"}},
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.9.10"], "hostname": "web-0", "conditions": {"ready": True}},
                          {"addresses": ["10.244.9.11"], "hostname": "web-1", "conditions": {"ready": ready_web_1}}]}


def test_headless_statefulset_names_and_endpoint_readiness(cluster, server):
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "default"},
                    "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}},
          _statefulset_slice(True))
    within_a_second(lambda: server.values("nginx.default.svc.cluster.local") == ["10.244.9.10", "10.244.9.11"],
                    "the endpoints' addresses")
    assert server.values("web-0.nginx.default.svc.cluster.local") == ["10.244.9.10"]
    assert server.dig("+short", "SRV", "_web._tcp.nginx.default.svc.cluster.local").splitlines() == [
        "0 50 80 web-0.nginx.default.svc.cluster.local.", "0 50 80 web-1.nginx.default.svc.cluster.local."]
    apply(cluster, _statefulset_slice(False))
    within_a_second(lambda: server.values("nginx.default.svc.cluster.local") == ["10.244.9.10"],
                    "the unready endpoint to leave")
    assert server.ask("web-1.nginx.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN
    assert server.values("10.9.244.10.in-addr.arpa", "PTR") == ["web-0.nginx.default.svc.cluster.local."]


def test_external_name_cname(cluster, server):
    apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "search", "namespace": "default"},
                    "spec": {"type": "ExternalName", "externalName": "www.example.com"}})
    within_a_second(lambda: server.values("search.default.svc.cluster.local") == ["www.example.com."],
                    "the CNAME")
    assert server.dig("+short", "search.default.svc.cluster.local").split() == ["www.example.com."]


def test_pod_names_and_new_namespaces(cluster, server):
    assert server.values("10-244-1-5.default.pod.cluster.local") == ["10.244.1.5"]
    assert server.ask("10-244-1-5.td-new.pod.cluster.local").rcode() == dns.rcode.NXDOMAIN
    cluster.kubectl("create", "namespace", "td-new")
    within_a_second(lambda: server.values("10-244-1-5.td-new.pod.cluster.local") == ["10.244.1.5"],
                    "the namespace's pod names")
    assert server.values("td-new.svc.cluster.local") == []
    assert server.values("dns-version.cluster.local", "TXT") == ['"1.1.0"']


def test_metrics_health_and_ready(server):
    server.ask("kubernetes.default.svc.cluster.local")
    assert server.http("/health") == (200, "OK")
    assert server.http("/ready") == (200, "OK")
    status, text = server.http("/metrics")
    assert status == 200
    label = f'server="dns://{HOST}:{server.port}"'
    assert f'coredns_dns_requests_total{{family="1",proto="udp",{label},type="A",view="",zone="."}}' in text
    assert f'coredns_dns_responses_total{{plugin="kubernetes",rcode="NOERROR",{label},view="",zone="."}}' in text
    assert "coredns_dns_request_duration_seconds_bucket{" in text


def test_serves_at_least_5000_queries_per_second(server):
    query = dns.message.make_query("kubernetes.default.svc.cluster.local", "A").to_wire()
    total, in_flight = 20000, 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect((HOST, server.port))
        started = time.perf_counter()
        for _ in range(in_flight):
            sock.send(query)
        for done in range(total):
            assert sock.recv(4096)[:2] == query[:2]
            if done + in_flight < total:
                sock.send(query)
        rate = total / (time.perf_counter() - started)
    assert rate >= 5000, f"{rate:.0f} queries/s"


def test_sigterm_marks_the_endpoint_terminating(cluster, server):
    """Last: stops the module's server."""
    assert server.stop() == 0, server.log.read_text()
    [endpoint] = get(cluster, "-n", "kube-system", "endpointslice", "kube-dns-mkp")["endpoints"]
    assert endpoint["conditions"] == {"ready": False, "serving": False, "terminating": True}
