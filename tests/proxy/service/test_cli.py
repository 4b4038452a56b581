"""`mkp kube-proxy` as a process against a real `mkp up` cluster: a NodePort Service created
with kubectl is served on the node address, /healthz and /metrics answer, SIGTERM stops
it cleanly; and bad flags are clear errors before anything starts."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxy.service.cli import proxy_command
from tests.conftest import REPO_ROOT, start_mkp_cluster, wait_until
from tests.proxy.service.harness import random_loopback


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--server", "http://127.0.0.1:1"], "--hostname-override", id="no-node-name"),
    pytest.param(["--hostname-override", "n1"], "--kubeconfig or --server", id="no-cluster"),
    pytest.param(["--server", "http://127.0.0.1:1", "--hostname-override", "n1", "--nodeport-addresses", "10.0.0.0/8"],
                 "not an IP address", id="cidr-not-address"),
    pytest.param(["--server", "http://127.0.0.1:1", "--hostname-override", "n1", "--metrics-bind-address", "nope"],
                 "HOST:PORT", id="metrics-address"),
    pytest.param(["--server", "http://127.0.0.1:1", "--hostname-override", "n1", "--udp-timeout", "0s"],
                 "greater than 0", id="udp-timeout"),
])
def test_bad_flags_fail_before_starting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(proxy_command, args)
    assert result.exit_code == 2
    assert message in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(host: str, port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def manifest(backend_ip: str, backend_port: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: NodePort
  ports: [{{name: http, port: 8080, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-manual
  namespace: default
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: {backend_port}, protocol: TCP}}]
endpoints:
- addresses: [{backend_ip}]
  nodeName: n1
  conditions: {{ready: true}}
"""


def test_mkp_proxy_serves_a_node_port_and_stops_on_sigterm(tmp_path: Path) -> None:
    node_ip, backend_ip = random_loopback(88), random_loopback(244)
    backend_port, metrics_port = free_port(), free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from the backend\n")
    backend = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", backend_ip, str(backend_port)],
                               cwd=tmp_path / "www", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy: subprocess.Popen[str] | None = None
    try:
        with start_mkp_cluster(tmp_path / "mkp") as cluster:
            cluster.kubectl("apply", "-f", "-", input=manifest(backend_ip, backend_port))
            node_port = int(cluster.kubectl("get", "service", "web", "-o",
                                            "jsonpath={.spec.ports[0].nodePort}").stdout)
            argv = [sys.executable, "-c", "from proxy.service.cli import proxy_command; proxy_command()",
                    "--kubeconfig", str(cluster.kubeconfig), "--hostname-override", "n1", "--no-cluster-ips",
                    "--nodeport-addresses", node_ip, "--metrics-bind-address", f"127.0.0.1:{metrics_port}"]
            proxy = subprocess.Popen(argv, cwd=REPO_ROOT, env=cluster.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

            def answers() -> str | None:
                try:
                    return http_get(node_ip, node_port, "/")[1]
                except OSError:
                    return None

            assert wait_until(answers, timeout=30, what="the NodePort") == "hello from the backend\n"
            status, body = http_get("127.0.0.1", metrics_port, "/healthz")
            assert status == 200 and "lastUpdated" in json.loads(body)
            metrics = http_get("127.0.0.1", metrics_port, "/metrics")[1]
            assert 'mkp_proxy_connections_total{protocol="TCP",service="default/web:http"}' in metrics
            proxy.send_signal(signal.SIGTERM)
            output, _ = proxy.communicate(timeout=10)
            assert proxy.returncode == 0, output
            assert f"opened listener {node_ip}:{node_port}/TCP for default/web:http (NodePort)" in output
            assert f"closed listener {node_ip}:{node_port}/TCP for default/web:http (NodePort): proxy stopping" \
                in output
            started = time.monotonic()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((node_ip, node_port), timeout=2)
            assert time.monotonic() - started < 2
    finally:
        for process in (proxy, backend):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
