"""`mkp ingress` as a process: flags, serving, a clean stop on SIGTERM, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import REPO_ROOT, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ingress_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "proxy.ingress.cli", *args]


ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def status_of(url: str, host: str | None = None) -> int | None:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_ingress_command_serves_and_stops_on_sigterm(mkp_cluster_module):
    http, https, metrics = free_port(), free_port(), free_port()
    process = subprocess.Popen(ingress_argv("--kubeconfig", str(mkp_cluster_module.kubeconfig), "--http-port", str(http),
                                            "--https-port", str(https), "--metrics-bind-address", f"127.0.0.1:{metrics}"),
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: status_of(f"http://127.0.0.1:{metrics}/healthz") == 200, timeout=20, what="/healthz")
        assert status_of(f"http://127.0.0.1:{http}/", host="nobody.test") == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read() if process.stdout else ""
    assert f"serving http://127.0.0.1:{http}" in output


def test_ingress_command_needs_a_cluster():
    result = subprocess.run(ingress_argv("--http-port", "0"), env=ENV, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--kubeconfig" in result.stderr


@pytest.mark.timeout(60)
def test_ingress_command_reports_a_port_in_use(mkp_cluster_module):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(ingress_argv("--kubeconfig", str(mkp_cluster_module.kubeconfig), "--http-port", str(port),
                                             "--https-port", "0", "--metrics-bind-address", ""),
                                env=ENV, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower()
