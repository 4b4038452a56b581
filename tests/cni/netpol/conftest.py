"""A private two-node pod network for NetworkPolicy tests, all inside one network
namespace of the test's own ("tn-host-<id>"), so nothing of the machine's own network
is touched: two bridges (tnbr0 10.244.200.1/24, tnbr1 10.244.201.1/24) routed between
each other as the host routes between nodes, and pod namespaces ("tn-<pod>-<id>") with
a veth into their bridge. bridge-nf-call-iptables is read and set to 1 inside that
namespace (the sysctl is per namespace) and put back in teardown; deleting the
namespaces removes every link, route and nft table the test made.

`PodNet.connect(src, dst_ip, port)` tries a TCP connect from a pod namespace with a
0.5 s timeout; every pod runs a TCP server on ports 80 and 8080 and a UDP echo on 53.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cni.netpol.nft import Nftables

SERVER = textwrap.dedent("""
    import socket, selectors, sys
    sel = selectors.DefaultSelector()
    for port in (80, 8080):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64); s.setblocking(False); sel.register(s, selectors.EVENT_READ, "tcp")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 53)); sel.register(u, selectors.EVENT_READ, "udp")
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "tcp":
                conn, _ = key.fileobj.accept(); conn.sendall(b"hi"); conn.close()
            else:
                data, peer = key.fileobj.recvfrom(512); key.fileobj.sendto(data, peer)
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        if proto == "tcp":
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.settimeout(0.5); sys.exit(0 if s.recv(2) == b"hi" else 2)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(0.5)
        u.sendto(b"ping", (host, port)); sys.exit(0 if u.recvfrom(512)[0] == b"ping" else 2)
    except OSError:
        sys.exit(1)
""")


def _sh(*argv: str, input: str | None = None) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def require_root_networking() -> None:
    missing = [tool for tool in ("ip", "nft") if not any(
        os.access(Path(d) / tool, os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin"])]
    message = None
    if os.geteuid() != 0:
        message = "NetworkPolicy kernel tests need root"
    elif missing:
        message = f"missing tools: {', '.join(missing)}"
    elif not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        message = "br_netfilter is not loaded (modprobe br_netfilter)"
    if message:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: a missing tool is a failure, not a skip)")
        pytest.skip(message)


@dataclass
class PodNet:
    host: str  # the namespace holding the bridges (the "host" of both nodes)
    suffix: str
    pods: dict[str, str] = field(default_factory=dict)  # pod -> its namespace
    ips: dict[str, str] = field(default_factory=dict)  # pod -> its address
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def nft(self) -> Nftables:
        return Nftables(netns=self.host)

    def add_pod(self, name: str, bridge: int, host_number: int) -> str:
        netns, ip = f"tn-{name}-{self.suffix}", f"10.244.{200 + bridge}.{host_number}"
        _sh("ip", "netns", "add", netns)
        self.pods[name], self.ips[name] = netns, ip
        veth = f"tnv{len(self.pods)}"
        _sh("ip", "-n", self.host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _sh("ip", "-n", self.host, "link", "set", veth, "master", f"tnbr{bridge}", "up")
        _sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _sh("ip", "-n", netns, "link", "set", "eth0", "up")
        _sh("ip", "-n", netns, "link", "set", "lo", "up")
        _sh("ip", "-n", netns, "route", "add", "default", "via", f"10.244.{200 + bridge}.1")
        server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", SERVER],
                                  stdout=subprocess.PIPE, text=True)
        self.servers.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        return ip

    def connect(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> bool:
        """Whether pod `src` reaches pod (or address) `dst` on `port`."""
        argv = ["ip", "netns", "exec", self.pods[src], sys.executable, "-c", CLIENT,
                self.ips.get(dst, dst), str(port), proto]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def host_connect(self, dst: str, port: int = 80) -> bool:
        argv = ["ip", "netns", "exec", self.host, sys.executable, "-c", CLIENT, self.ips[dst], str(port), "tcp"]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def tables(self) -> list[str]:
        return self.nft.tables("tn_")


@pytest.fixture
def podnet() -> Iterator[PodNet]:
    require_root_networking()
    suffix = uuid.uuid4().hex[:6]
    net = PodNet(f"tn-host-{suffix}", suffix)
    sysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    old = None
    try:
        _sh("ip", "netns", "add", net.host)
        old = _sh("ip", "netns", "exec", net.host, "cat", sysctl).strip()
        _sh("ip", "netns", "exec", net.host, "sh", "-c", f"echo 1 > {sysctl}; echo 1 > /proc/sys/net/ipv4/ip_forward")
        for bridge in (0, 1):
            _sh("ip", "-n", net.host, "link", "add", f"tnbr{bridge}", "type", "bridge")
            _sh("ip", "-n", net.host, "addr", "add", f"10.244.{200 + bridge}.1/24", "dev", f"tnbr{bridge}")
            _sh("ip", "-n", net.host, "link", "set", f"tnbr{bridge}", "up")
        _sh("ip", "-n", net.host, "link", "set", "lo", "up")
        yield net
    finally:
        for server in net.servers:
            server.kill()
            server.wait()
        if old is not None:
            subprocess.run(["ip", "netns", "exec", net.host, "sh", "-c", f"echo {old} > {sysctl}"], check=False)
        for netns in [*net.pods.values(), net.host]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
