"""Every address plan of a cluster in one place: pod, node, Service, DNS and load-balancer
addresses for each pod network mode, and the names of the host links the bridge mode
creates.

Two modes (`mkp up --network`):

loopback  no root needed, no isolation. Everything is an address of 127.0.0.0/8, all of
          which Linux delivers locally: pods 127.244.<256-k>.x (node number k, from 1),
          nodes 127.2.0.k, Service ClusterIPs 127.96.0.0/16, LoadBalancer addresses
          127.3.0.0/16.
bridge    root. Each pod gets a network namespace and a veth into its node's bridge
          `mkpbr<k>` (gateway .1), addresses from the node's /24 of the cluster CIDR
          10.244.0.0/16 (10.244.<256-k>.0/24, the numbering fake nodes leave free). Nodes
          are 192.168.49.<k+1> (minikube's docker-driver addresses), ClusterIPs come from
          10.96.0.0/12 as kubeadm's do. Both ranges are made local on the host with
          `local` routes (AnyIP), so the service proxy can listen on any ClusterIP and a
          packet to one never leaves the machine. LoadBalancer addresses are on loopback
          as with `minikube tunnel` (127.3.0.0/16).

The cluster DNS Service `kube-system/kube-dns` has the tenth address of the Service
range, as kubeadm gives it (10.96.0.10, or 127.96.0.10).
"""

from __future__ import annotations

import ipaddress

LOOPBACK = "loopback"
BRIDGE = "bridge"
NETWORKS = (LOOPBACK, BRIDGE)

CLUSTER_DOMAIN = "cluster.local"

LOOPBACK_CLUSTER_CIDR = "127.244.0.0/16"
LOOPBACK_SERVICE_CIDR = "127.96.0.0/16"
LOOPBACK_NODE_BASE = "127.2.0."

BRIDGE_CLUSTER_CIDR = "10.244.0.0/16"
BRIDGE_SERVICE_CIDR = "10.96.0.0/12"
BRIDGE_NODE_CIDR = "192.168.49.0/24"
BRIDGE_PREFIX = "mkpbr"  # node k's bridge: mkpbr<k>; every host link the mode makes starts with "mkp"

LOAD_BALANCER_CIDR = "127.3.0.0/16"  # status.loadBalancer.ingress addresses, both modes

NODE_PORT_RANGE = (30000, 32767)


def default_network(is_root: bool) -> str:
    return BRIDGE if is_root else LOOPBACK


def service_cidr(network: str) -> str:
    return BRIDGE_SERVICE_CIDR if network == BRIDGE else LOOPBACK_SERVICE_CIDR


def cluster_cidr(network: str) -> str:
    return BRIDGE_CLUSTER_CIDR if network == BRIDGE else LOOPBACK_CLUSTER_CIDR


def cluster_dns_ip(service_range: str) -> str:
    """The kube-dns Service address: the tenth of the Service range."""
    return str(ipaddress.ip_network(service_range, strict=False).network_address + 10)


def pod_cidr(network: str, number: int) -> str:
    """Real node number `number` (1, 2, ...): the /24 counted down from the top of the
    cluster CIDR, so fake nodes (counting up from 0) never get the same one."""
    if number < 1 or number > 255:
        raise ValueError(f"node number {number} out of range 1..255")
    base = "127.244" if network == LOOPBACK else "10.244"
    return f"{base}.{256 - number}.0/24"


def gateway(pod_range: str) -> str:
    """The first address of a node's pod range: its bridge's address (bridge mode)."""
    return str(ipaddress.ip_network(pod_range, strict=False).network_address + 1)


def node_ip(network: str, number: int) -> str:
    if network == BRIDGE:
        return str(ipaddress.ip_network(BRIDGE_NODE_CIDR).network_address + 1 + number)
    return f"{LOOPBACK_NODE_BASE}{number}"


def bridge_name(number: int) -> str:
    return f"{BRIDGE_PREFIX}{number}"
