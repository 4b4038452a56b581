"""Settings of the process kubelet (`mkp kubelet --node NAME`), and what it reads off the host.

The values a learner sees on the Node (capacity, allocatable, nodeInfo) come from this
machine: CPUs from os.cpu_count(), memory from /proc/meminfo, ephemeral-storage from the
file system under the node's root directory, 110 pods (the kubelet's --max-pods).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelet.fake import ipam
from kubelet.fake.config import KUBELET_PORT, FakeNodeConfig
from kubelet.fake.nodestatus import NodeProfile

RUNTIMES = ("process", "namespaces", "fake")
NETWORKS = ("loopback", "bridge")
NETNS_DIR = Path("/var/run/netns")  # where `ip netns` (and containerd) keep pods' namespaces
MKP_VERSION = "0.1.0"


def _addresses(values: list[str] | tuple[str, ...] | str) -> list[str]:
    """--cluster-dns values: repeated or comma-separated IP addresses."""
    items = [values] if isinstance(values, str) else list(values)
    out = []
    for item in items:
        for part in str(item).split(","):
            if part.strip():
                try:
                    out.append(str(ipaddress.ip_address(part.strip())))
                except ValueError:
                    raise ValueError(f"--cluster-dns {part.strip()!r} is not an IP address") from None
    return out


def default_runtime() -> str:
    """`namespaces` as root (it needs to mount and make namespaces), else `process`."""
    return "namespaces" if os.geteuid() == 0 else "process"


def default_root(node: str) -> Path:
    """$MKP_CLUSTER_HOME/nodes/<node> (set by `mkp up`), else ~/.mkp/nodes/<node>."""
    base = os.environ.get("MKP_CLUSTER_HOME")
    if base:
        return Path(base) / "nodes" / node
    return Path(os.environ.get("MKP_HOME") or Path.home() / ".mkp") / "nodes" / node


def _meminfo_kib() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def host_capacity(root: Path, max_pods: int = 110) -> dict[str, str]:
    """The node's capacity as a kubelet measures it (memory in Ki, as kubelets write it)."""
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{_meminfo_kib()}Ki", "pods": str(max_pods),
                "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
        capacity["ephemeral-storage"] = f"{st.f_blocks * st.f_frsize // 1024}Ki"
    except OSError:
        pass
    return capacity


def _is_tmpfs(path: Path) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == str(path) and line.split()[2] == "tmpfs" for line in f)
    except OSError:
        return False


def os_image() -> str:
    """PRETTY_NAME of /etc/os-release, as the kubelet reports osImage."""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@dataclass
class KubeletConfig:
    """How one process kubelet runs.

    node            the Node's name
    root            node root directory (pods, logs, cni state, checkpoints)
    runtime         `process` or `namespaces` (see kubelet/runtime)
    network         pod network: `loopback` (each pod a 127.244.<node>.x address, the
                    host's namespace) or `bridge` (root, the namespaces runtime: a netns
                    per pod on the node's bridge `bridge`, addresses of `pod_cidr`; the
                    host side is made by `mkp up`, cni.hostnet)
    cluster_dns     --cluster-dns: the nameservers of ClusterFirst pods (none: they fall
                    back to the host's resolv.conf with a MissingClusterDNS warning)
    cluster_domain  --cluster-domain: the search domains' suffix (cluster.local)
    port            kubelet server port (10250; 0 picks a free one); it listens on the
                    node's InternalIP (127.1.0.<n>), so several nodes share a port number
    heartbeat       Lease renewal period; status_report_frequency: node status writes
    sync_frequency  how often every pod is re-synced even without changes (configMap and
                    secret volume contents refresh at this pace too; kubelet: 1 min)
    """

    node: str
    root: Path
    runtime: str = field(default_factory=default_runtime)
    network: str = "loopback"
    port: int = KUBELET_PORT
    heartbeat: float = 10.0
    status_report_frequency: float = 60.0
    sync_frequency: float = 10.0
    max_pods: int = 110
    pod_workers: int = 64
    pod_cidr: str | None = None  # --pod-cidr: this node's pod range (else the next free 127.244.<i>.0/24)
    node_ip: str | None = None  # --node-ip: its InternalIP, where the kubelet server listens
    bridge: str | None = None  # --bridge: the node's bridge (bridge network)
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")  # --resolv-conf: the host's, base of Default
    netns_dir: Path = NETNS_DIR  # bridge network: where pods' namespaces are bound
    cni_path: list[str] | None = None  # CNI plugin directories (default /opt/cni/bin, /usr/lib/cni)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {self.runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if self.network not in NETWORKS:
            raise ValueError(f"unknown pod network {self.network!r}: choose one of {', '.join(NETWORKS)}")
        self.root = Path(self.root)
        self.resolv_conf = Path(self.resolv_conf)
        self.netns_dir = Path(self.netns_dir)
        self.cluster_dns = _addresses(self.cluster_dns)
        if self.network == "bridge":
            self._check_bridge()

    def _check_bridge(self) -> None:
        """The bridge network puts each pod in a network namespace: only a runtime that
        joins one can run its pods, and only root can make them."""
        if self.runtime != "namespaces":
            raise ValueError(f"the bridge pod network needs the namespaces runtime: the {self.runtime} runtime "
                             "cannot put a pod's processes in its network namespace (use --network loopback)")
        if os.geteuid() != 0:
            raise ValueError("the bridge pod network needs root (it makes network namespaces and veth pairs)")
        missing = [flag for flag, value in (("--bridge", self.bridge), ("--pod-cidr", self.pod_cidr),
                                            ("--node-ip", self.node_ip)) if not value]
        if missing:
            raise ValueError(f"the bridge pod network needs {', '.join(missing)} (mkp up passes them)")
        try:
            ipaddress.ip_network(str(self.pod_cidr), strict=True)
        except ValueError as exc:
            raise ValueError(f"--pod-cidr {self.pod_cidr}: {exc}") from None
        # The host side (bridges, local routes, the guards that keep pod traffic on this
        # machine) comes first: without it, the plugin would make the bridge and turn on
        # forwarding, and a pod's packets could follow the default route out.
        if not Path("/sys/class/net", str(self.bridge)).exists():
            raise ValueError(f"bridge {self.bridge} does not exist: the host side of the bridge network is set up "
                             "by `mkp up` (cni.hostnet.setup_cluster) before its kubelets start")

    def run_root(self) -> Path:
        """Where running pods' state lives (the shim's pid/exit files, fifos, env,
        sandboxes, overlay upper dirs, pod IP allocations): a tmpfs (/run, else /dev/shm)
        when we may write there, as containerd keeps tasks under /run/containerd;
        metadata-heavy pod starts on a slow disk would otherwise wait on it. `<root>/run`
        links to it. Containers do not survive a reboot, and neither does this state;
        logs, images and volumes stay on disk under `root`."""
        link = self.root / "run"
        if link.is_symlink() or link.is_dir():
            return link.resolve()
        target = link
        base = next((Path(d) for d in ("/run", "/dev/shm") if _is_tmpfs(Path(d)) and os.access(d, os.W_OK)), None)
        if base is not None:
            digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
            target = base / "mkp" / f"{self.node}-{digest}"
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.root.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
        else:
            target.mkdir(parents=True, exist_ok=True)
        return target

    def node_config(self) -> FakeNodeConfig:
        """The node half's settings (shared with fake nodes: registration, Lease, status)."""
        return FakeNodeConfig(capacity=host_capacity(self.root, self.max_pods), heartbeat=self.heartbeat,
                              status_report_frequency=self.status_report_frequency)

    def profile(self, port: int, images: Callable[[], list[dict[str, Any]]] | None = None) -> NodeProfile:
        return NodeProfile(fake=False, kubelet_port=port, os_image=os_image(), images=images,
                           runtime_version=f"{self.runtime}://{MKP_VERSION}",
                           cidr_for_index=ipam.loopback_cidr_for_index, pod_cidr=self.pod_cidr, node_ip=self.node_ip)
