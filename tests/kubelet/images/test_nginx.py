"""The nginx image: Debian's nginx behind the Docker image's entrypoint and layout,
listening on port 80 of the pod IP the kubelet passes in MKP_POD_IP (root only)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import urllib.request

import pytest

from kubelet.images import IF_NOT_PRESENT
from tests.conftest import require_tool, wait_until


def _free_pod_ip() -> str:
    for _ in range(20):
        address = f"127.203.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, 80))
                return address
            except OSError:
                continue
    raise AssertionError("no free 127.203.x.y:80")


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


async def test_nginx_serves_the_welcome_page_on_the_pod_ip(store, processes, tmp_path):
    require_tool("nginx")
    if os.geteuid() != 0:
        pytest.skip("nginx binds port 80: needs root")
    image, _ = await store.pull("nginx:1.27", IF_NOT_PRESENT)
    assert image.entrypoint == ["/docker-entrypoint.sh"] and image.cmd == ["nginx", "-g", "daemon off;"]
    pod_ip = _free_pod_ip()
    env = {**image.env, "PATH": image.process_path, "MKP_POD_IP": pod_ip, "TMPDIR": str(tmp_path)}
    nginx = processes.start([image.host_path(image.entrypoint[0]), *image.cmd], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    page = wait_until(lambda: nginx.poll() is not None or _fetch(f"http://{pod_ip}/"), timeout=20,
                      interval=0.05, what="nginx's welcome page")
    assert nginx.poll() is None, nginx.communicate()
    assert "<title>Welcome to nginx!</title>" in page
    assert _listeners(80) >= {pod_ip} and "0.0.0.0" not in _listeners(80)  # the pod IP only
    os.killpg(nginx.pid, signal.SIGTERM)
    assert nginx.wait(timeout=10) == 0
    out, err = nginx.communicate()
    assert '"GET / HTTP/1.1" 200' in out  # access log on stdout
    assert "nginx/" in err  # error log (notices) on stderr


def _listeners(port: int) -> set[str]:
    """IPv4 addresses with a listening TCP socket on `port`, from /proc/net/tcp."""
    found = set()
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found
