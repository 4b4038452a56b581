"""The cluster's network as `mkp up` lays it out: which pod network mode, what each real
node's addresses are, and the networking components that come with real nodes.

With at least one real node a cluster also runs, as a kubeadm cluster with the CoreDNS
addon and ingress-nginx would:

  kube-proxy-<node>   the node's service proxy (`mkp kube-proxy`): ClusterIPs, NodePorts and
                      load-balancer addresses, following EndpointSlices;
  coredns             the cluster DNS (`mkp dns`), published as the kube-system/kube-dns
                      Service at the tenth address of the Service range;
  ingress-controller  the Ingress controller of IngressClass `mkp` (`mkp ingress`).

The node processes all share this machine's network namespace, so the addresses differ
per node (cni.addressing) and each node's proxy serves the pods of its own bridge: node 1
also serves clients on the host itself (device `lo`), NodePorts on 127.0.0.1 and the
load-balancer addresses.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cni import addressing

CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
DNS_PORT = 53
DNS_PORT_UNPRIVILEGED = 10053
NETPOL_TABLE_PREFIX = "mkp_netpol"  # nft tables `inet mkp_netpol_<node>` (cni.netpol)
INGRESS_PORTS = (80, 443)
INGRESS_PORTS_UNPRIVILEGED = (8080, 8443)


def is_root() -> bool:
    return os.geteuid() == 0


def default_network() -> str:
    return addressing.default_network(is_root())


def default_ingress_ports() -> tuple[int, int]:
    return INGRESS_PORTS if is_root() else INGRESS_PORTS_UNPRIVILEGED


def parse_ingress_ports(text: str) -> tuple[int, int]:
    """`HTTP,HTTPS`, e.g. `80,443` or `8080,8443`."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        http, https = int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(f"--ingress-ports {text!r}: give two ports, HTTP,HTTPS (e.g. 8080,8443)") from None
    for port in (http, https):
        if not 1 <= port <= 65535:
            raise ValueError(f"--ingress-ports {text!r}: {port} is not a port number")
    if http == https:
        raise ValueError(f"--ingress-ports {text!r}: HTTP and HTTPS need two different ports")
    return http, https


@dataclass(frozen=True)
class NodeAddresses:
    number: int  # 1, 2, ... in `mkp up --nodes N` order
    name: str
    pod_cidr: str
    node_ip: str
    bridge: str  # "" in loopback mode


@dataclass(frozen=True)
class NetworkPlan:
    network: str
    nodes: tuple[NodeAddresses, ...]

    @classmethod
    def of(cls, network: str, node_names: list[str]) -> NetworkPlan:
        nodes = tuple(NodeAddresses(i, name, addressing.pod_cidr(network, i), addressing.node_ip(network, i),
                                    addressing.bridge_name(i) if network == addressing.BRIDGE else "")
                      for i, name in enumerate(node_names, 1))
        return cls(network, nodes)

    @property
    def bridge(self) -> bool:
        return self.network == addressing.BRIDGE

    @property
    def service_cidr(self) -> str:
        return addressing.service_cidr(self.network)

    @property
    def dns_ip(self) -> str:
        return addressing.cluster_dns_ip(self.service_cidr)

    @property
    def dns_listen(self) -> str:
        """Where the DNS server listens: the first node's address, as if CoreDNS ran there."""
        port = DNS_PORT if is_root() else DNS_PORT_UNPRIVILEGED
        return f"{self.nodes[0].node_ip}:{port}"

    def kubelet_args(self, node: NodeAddresses) -> list[str]:
        args = ["--pod-cidr", node.pod_cidr, "--node-ip", node.node_ip, "--network", self.network,
                "--cluster-dns", self.dns_ip, "--cluster-domain", addressing.CLUSTER_DOMAIN]
        if node.bridge:
            args += ["--bridge", node.bridge]
        return args

    def proxy_args(self, node: NodeAddresses) -> list[str]:
        first = node.number == 1
        args = ["--hostname-override", node.name, "--metrics-bind-address", f"{node.node_ip}:10249"]
        if self.bridge:
            devices = (["lo"] if first else []) + [node.bridge]
            for device in devices:
                args += ["--cluster-ip-bind-device", device]
        elif not first:
            args.append("--no-cluster-ips")  # one host namespace, no bridge to tell clients apart
        addresses = (["127.0.0.1"] if first else []) + [node.node_ip]
        args += ["--nodeport-addresses", ",".join(addresses)]
        args.append("--load-balancers" if first else "--no-load-balancers")
        if self.bridge:
            args.append("--network-policy-nftables")
        return args

    def dns_args(self) -> list[str]:
        return ["--listen", self.dns_listen, "--service-ip", self.dns_ip,
                "--cluster-domain", addressing.CLUSTER_DOMAIN,
                "--metrics-bind-address", f"{self.nodes[0].node_ip}:9153"]

    def host_setup(self, state_file: Path) -> None:
        """Bridge mode: the host's part of the pod network (bridges, local routes for the
        Service and node ranges, the guards that keep pod traffic on this machine)."""
        if not self.bridge or not self.nodes:
            return
        from cni import hostnet
        hostnet.setup_cluster(state_file, service_cidr=self.service_cidr,
                              cluster_cidr=addressing.BRIDGE_CLUSTER_CIDR, node_cidr=addressing.BRIDGE_NODE_CIDR,
                              nodes=[hostnet.NodeNet(n.bridge, n.pod_cidr, n.node_ip) for n in self.nodes])


def host_teardown(state_file: Path) -> None:
    """Undo `NetworkPlan.host_setup` from its record (nothing recorded: nothing to do),
    and drop the NetworkPolicy tables the nodes' agents left if they were killed before
    removing them themselves."""
    if not state_file.exists():
        return
    from cni import hostnet
    from cni.netpol import nft
    if shutil.which("nft"):
        nft.cleanup(NETPOL_TABLE_PREFIX)
    hostnet.teardown_cluster(state_file)


def leftovers() -> list[str]:
    """Every host object a bridge-mode cluster makes that is still there (links, pod
    namespaces, routes, rules, NetworkPolicy tables): empty once `mkp down` is done."""
    from cni import hostnet
    from cni.netpol import nft
    found = hostnet.leftovers()
    if shutil.which("nft"):
        found += [f"nft table inet {t}" for t in nft.Nftables().tables(NETPOL_TABLE_PREFIX)]
    return found


def ingress_args(ports: tuple[int, int]) -> list[str]:
    return ["--address", "127.0.0.1", "--http-port", str(ports[0]), "--https-port", str(ports[1]),
            "--publish-address", "127.0.0.1", "--metrics-bind-address", "127.0.0.1:10254"]
