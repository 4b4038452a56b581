"""The bridge pod network for real: two node bridges set up as `mkp up` does (hostnet),
pods' namespaces through NetworkManager.bridge and the reference plugins, traffic
between them, and nothing left behind. Host objects carry the prefix `tb`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cni import hostnet
from cni.bridge import bridge_network
from cni.manager import NetworkManager
from cni.netns import NetnsDir, is_netns_mount
from cni.types import CNIError
from tests.cni.conftest import reference_plugin
from tests.conftest import require_tool

CLUSTER = "10.233.0.0/16"
SERVICES = "10.234.0.0/16"
NODES = "192.168.233.0/24"
TABLE = 24733


@pytest.fixture(autouse=True)
def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the bridge network needs root (CI=true: not skipped)")
        pytest.skip("the bridge network needs root")
    for tool in ("ip", "nsenter", "unshare"):
        require_tool(tool)
    for plugin in ("bridge", "host-local", "loopback"):
        reference_plugin(plugin)


@dataclass
class Node:
    bridge: str
    pod_cidr: str
    manager: NetworkManager


@dataclass
class Cluster:
    nodes: list[Node]
    netns: NetnsDir
    state_file: Path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    tag = uuid.uuid4().hex[:6]
    bridges = [f"tbbr{tag}a", f"tbbr{tag}b"]
    cidrs = ["10.233.255.0/24", "10.233.254.0/24"]
    netns = NetnsDir(tmp_path / "netns")
    state = tmp_path / "hostnet.json"
    nodes = [Node(b, c, NetworkManager.bridge(tmp_path / b / "cni", c, b, netns_dir=netns))
             for b, c in zip(bridges, cidrs, strict=True)]
    try:
        hostnet.setup_cluster(state, service_cidr=SERVICES, cluster_cidr=CLUSTER, node_cidr=NODES,
                              nodes=[hostnet.NodeNet(n.bridge, n.pod_cidr, f"192.168.233.{i}")
                                     for i, n in enumerate(nodes, 2)], table=TABLE, priority=TABLE)
        yield Cluster(nodes, netns, state)
    finally:
        for path in netns.list():
            with contextlib.suppress(Exception):
                netns.delete(path.name.removeprefix("cni-"))
        hostnet.teardown_cluster(state)
    assert hostnet.leftovers(link_prefix=f"tbbr{tag}", table=TABLE, cluster_cidr=CLUSTER,
                             local_cidrs=(SERVICES, NODES), netns_dir=tmp_path / "netns") == []


def in_netns(netns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True, text=True, timeout=timeout)


SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(); print("ready", flush=True)
c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 8080), timeout=5); print(c.recv(100).decode())
"""


def serve_once(netns: str) -> subprocess.Popen[str]:
    server = subprocess.Popen(["nsenter", f"--net={netns}", sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


async def test_pods_on_two_bridges_talk_with_their_own_addresses(cluster: Cluster):
    (one, two) = cluster.nodes
    a = await one.manager.setup_pod("default", "a", "uid-a", "sb-a")
    b = await two.manager.setup_pod("default", "b", "uid-b", "sb-b")
    assert a.ip is not None and a.ip.startswith("10.233.255.") and a.ip != "10.233.255.1"
    assert b.ip is not None and b.ip.startswith("10.233.254.")
    assert a.netns and b.netns
    routes = in_netns(a.netns, "ip", "route").stdout
    assert "default via 10.233.255.1 dev eth0" in routes
    assert "UP" in in_netns(a.netns, "ip", "-br", "link", "show", "lo").stdout
    server = serve_once(b.netns)
    try:
        client = in_netns(a.netns, sys.executable, "-c", CLIENT, b.ip)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == a.ip  # routed through the host, no NAT
    finally:
        server.kill()
        server.wait()
    # and from the host (the kubelet's probes, port-forward) through the gateway address
    server = serve_once(a.netns)
    try:
        with socket.create_connection((a.ip, 8080), timeout=5) as conn:
            assert conn.recv(100).decode() == "10.233.255.1"
    finally:
        server.kill()
        server.wait()


async def test_a_pod_reaches_a_cluster_ip_and_a_node_ip_the_host_listens_on(cluster: Cluster):
    a = await cluster.nodes[0].manager.setup_pod("default", "a", "uid-a", "sb-a")
    assert a.netns and a.ip
    for address in ("10.234.0.10", "192.168.233.3"):  # AnyIP: bound with no address on any link
        with socket.socket() as listener:
            listener.bind((address, 0))
            listener.listen()
            port = listener.getsockname()[1]
            client = subprocess.Popen(["nsenter", f"--net={a.netns}", sys.executable, "-c",
                                       f"import socket; socket.create_connection(('{address}', {port}), timeout=5)"])
            listener.settimeout(5)
            conn, peer = listener.accept()
            conn.close()
            assert client.wait(10) == 0
            assert peer[0] == a.ip  # the proxy sees the pod's own address


async def test_guard_keeps_pod_traffic_on_the_machine(cluster: Cluster):
    one = cluster.nodes[0]
    a = await one.manager.setup_pod("default", "a", "uid-a", "sb-a")
    assert a.ip is not None
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"
    for outside in ("8.8.8.8", "192.0.2.1", "10.233.7.7"):  # the internet, the LAN, a /24 without a node
        got = subprocess.run(["ip", "route", "get", outside, "from", a.ip, "iif", one.bridge],
                             capture_output=True, text=True)
        assert got.returncode != 0 and "no route to host" in got.stderr.lower(), got
    local = subprocess.run(["ip", "route", "get", "10.234.0.10", "from", a.ip, "iif", one.bridge],
                           capture_output=True, text=True, check=True).stdout
    assert local.startswith("local 10.234.0.10")  # a ClusterIP is this machine (AnyIP)
    other = subprocess.run(["ip", "route", "get", "10.233.254.9", "from", a.ip, "iif", one.bridge],
                           capture_output=True, text=True, check=True).stdout
    assert f"dev {cluster.nodes[1].bridge}" in other


async def test_hairpin_is_on_and_del_removes_veth_namespace_and_address(cluster: Cluster):
    one = cluster.nodes[0]
    a = await one.manager.setup_pod("default", "a", "uid-a", "sb-a")
    ports = json.loads(subprocess.run(["ip", "-j", "link", "show", "master", one.bridge],
                                      capture_output=True, text=True, check=True).stdout)
    assert len(ports) == 1
    veth = ports[0]["ifname"]
    assert Path(f"/sys/class/net/{veth}/brport/hairpin_mode").read_text().strip() == "1"
    ipam_dir = one.manager._host_local_dirs()[0]
    assert (ipam_dir / a.ip).exists()
    assert await one.manager.status("default", "a", "uid-a", "sb-a", check=True) is not None
    await one.manager.teardown_pod("default", "a", "uid-a", "sb-a")
    assert subprocess.run(["ip", "-j", "link", "show", "master", one.bridge], capture_output=True, text=True,
                          check=True).stdout.strip() in ("", "[]")
    assert not Path(a.netns or "").exists() and not is_netns_mount(Path(a.netns or ""))
    assert sorted(p.name for p in ipam_dir.iterdir()) == ["last_reserved_ip.0", "lock"]
    assert one.manager.pods() == {}
    await one.manager.teardown_pod("default", "a", "uid-a", "sb-a")  # DEL is idempotent


async def test_an_attachment_whose_namespace_is_gone_is_made_again(cluster: Cluster):
    """`mkp down` stops the pods and removes their namespaces but keeps the node's
    state; on `mkp up` the kubelet asks for the same sandbox's network again."""
    one = cluster.nodes[0]
    first = await one.manager.setup_pod("default", "a", "uid-a", "sb-a")
    cluster.netns.delete("sb-a")
    assert not cluster.netns.exists("sb-a")
    again = await one.manager.setup_pod("default", "a", "uid-a", "sb-a")
    assert cluster.netns.exists("sb-a") and again.netns == first.netns and again.ip
    assert in_netns(again.netns or "", "ip", "-4", "-o", "addr", "show", "eth0").stdout.count(again.ip or "-") == 1
    ipam_dir = one.manager._host_local_dirs()[0]
    assert sorted(p.name for p in ipam_dir.iterdir() if p.name[0].isdigit()) == [again.ip]
    await one.manager.teardown_pod("default", "a", "uid-a", "sb-a")


async def test_none_network_has_only_lo_up(cluster: Cluster, tmp_path: Path):
    manager = NetworkManager.none(tmp_path / "none" / "cni", netns_dir=cluster.netns)
    pod = await manager.setup_pod("default", "n", "uid-n", "sb-n")
    try:
        assert pod.netns
        links = in_netns(pod.netns, "ip", "-o", "link").stdout
        assert "lo:" in links and "eth0" not in links and "LOWER_UP" in links
        addrs = in_netns(pod.netns, "ip", "-o", "-4", "addr").stdout
        assert "127.0.0.1/8" in addrs and "10.233." not in addrs
    finally:
        await manager.teardown_pod("default", "n", "uid-n", "sb-n")
    assert not Path(pod.netns).exists()


def test_bad_configuration_is_refused(tmp_path: Path):
    with pytest.raises(CNIError, match="invalid pod CIDR"):
        bridge_network("10.233.1.0/33", "tbbr0", data_dir=tmp_path)
    with pytest.raises(CNIError, match="outside 127/8"):
        bridge_network("127.244.1.0/24", "tbbr0", data_dir=tmp_path)
    with pytest.raises(CNIError, match="invalid bridge name"):
        bridge_network("10.233.1.0/24", "a-much-too-long-bridge", data_dir=tmp_path)
    with pytest.raises(CNIError, match="failed to find plugin"):
        NetworkManager.bridge(tmp_path, "10.233.1.0/24", "tbbr0", netns_dir=NetnsDir(tmp_path), cni_path=[])
