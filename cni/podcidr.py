"""Which pod CIDR a node gets, from its index, in either addressing scheme.

Loopback mode gives node i `127.244.<i>.0/24`: all of 127.0.0.0/8 is local on Linux, so
processes can bind these addresses without root and without configuring anything.
Bridge mode (the networking issue) and fake nodes use /24s of the 10.244 cluster CIDR
(kind's default). `index_of_cidr` understands both, so the lead can hand out node
indexes that are unique across fake and real nodes whatever scheme each uses.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_CLUSTER_CIDR = "127.244.0.0/16"
BRIDGE_CLUSTER_CIDR = "10.244.0.0/14"  # what fake nodes use (kubelet/fake/config.py)
NODE_PREFIX = 24
_CLUSTERS = [ipaddress.ip_network(LOOPBACK_CLUSTER_CIDR), ipaddress.ip_network(BRIDGE_CLUSTER_CIDR)]


def pod_cidr_for_index(index: int, cluster_cidr: str = LOOPBACK_CLUSTER_CIDR) -> str:
    """The index-th /24 of `cluster_cidr`: 127.244.<index>.0/24 by default."""
    cluster = ipaddress.ip_network(cluster_cidr)
    size = 2 ** (cluster.max_prefixlen - NODE_PREFIX)
    if index < 0 or (index + 1) * size > cluster.num_addresses:
        raise ValueError(f"the cluster CIDR {cluster_cidr} has no /{NODE_PREFIX} number {index}")
    return f"{cluster.network_address + index * size}/{NODE_PREFIX}"


def index_of_cidr(cidr: str) -> int | None:
    """The node index of a /24 of 127.244.0.0/16 or of 10.244.0.0/14; None otherwise."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    if network.version != 4 or network.prefixlen != NODE_PREFIX:
        return None
    for cluster in _CLUSTERS:
        if network.subnet_of(cluster):  # type: ignore[arg-type]
            return (int(network.network_address) - int(cluster.network_address)) >> (32 - NODE_PREFIX)
    return None
