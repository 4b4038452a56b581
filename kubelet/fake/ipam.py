"""Addresses of fake nodes and their pods: a pod CIDR and an InternalIP per node, and
a pool of pod IPs per node.

Node `i` (0-based, the lowest index no other node's spec.podCIDR uses) gets
10.244.0.0/14's i-th /24 as spec.podCIDR and 127.1.x.y as InternalIP. A real cluster
has the node-ipam controller set spec.podCIDR; fake nodes set it themselves when they
register, since nothing else does yet, and keep it once set (it is immutable).

Pod IPs come from the node's CIDR, skipping the network, the gateway (.1, the bridge on
a real node) and broadcast addresses, handed out round robin as the host-local IPAM
plugin does, so a just-released address is not reused at once. The pool remembers which
pod (uid) holds each address, so that a fake node process that restarts can re-adopt
the addresses its running pods already have before it hands out new ones.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from kubelet.fake.config import CLUSTER_CIDR, NODE_CIDR_PREFIX, NODE_IP_BASE

_CLUSTER = ipaddress.ip_network(CLUSTER_CIDR)
_NODE_IP_BASE = ipaddress.ip_address(NODE_IP_BASE)
_LOOPBACK_PODS = ipaddress.ip_network("127.244.0.0/16")
_HOSTS_PER_OCTET = 254  # InternalIP last octets 1..254


class AddressesExhausted(Exception):
    """No pod IP is left in a node's CIDR."""


def loopback_cidr_for_index(index: int) -> str:
    """Node number `index`'s pod CIDR under the loopback pod network of real nodes:
    127.244.<index>.0/24 (the same numbering as 10.244.<index>.0/24, so fake and real
    nodes never share an index)."""
    if not 0 <= index < 256:
        raise AddressesExhausted(f"the loopback pod range {_LOOPBACK_PODS} has no /{NODE_CIDR_PREFIX} number {index}")
    return f"127.244.{index}.0/{NODE_CIDR_PREFIX}"


def cidr_for_index(index: int) -> str:
    """The index-th /24 of the cluster CIDR (10.244.0.0/24, 10.244.1.0/24, ...)."""
    size = 2 ** (32 - NODE_CIDR_PREFIX)
    if index < 0 or (index + 1) * size > _CLUSTER.num_addresses:
        raise AddressesExhausted(f"the cluster CIDR {CLUSTER_CIDR} has no /{NODE_CIDR_PREFIX} number {index}")
    return f"{_CLUSTER.network_address + index * size}/{NODE_CIDR_PREFIX}"


@functools.lru_cache(maxsize=65536)
def index_of_cidr(cidr: str) -> int | None:
    """Which /24 of the cluster CIDR `cidr` is (None if it is not one of them).
    Memoized: registering node i looks at the CIDRs of all i nodes before it, and
    parsing them again each time made registering 500 nodes take seconds of CPU."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    if network.prefixlen == NODE_CIDR_PREFIX and network.subnet_of(_LOOPBACK_PODS):  # type: ignore[arg-type]
        return (int(network.network_address) - int(_LOOPBACK_PODS.network_address)) // 2 ** (32 - NODE_CIDR_PREFIX)
    if network.prefixlen != NODE_CIDR_PREFIX or not network.subnet_of(_CLUSTER):  # type: ignore[arg-type]
        return None
    return (int(network.network_address) - int(_CLUSTER.network_address)) // 2 ** (32 - NODE_CIDR_PREFIX)


def free_index(used_cidrs: Iterable[str]) -> int:
    """The lowest /24 index no CIDR in `used_cidrs` occupies."""
    used = {i for i in map(index_of_cidr, used_cidrs) if i is not None}
    index = 0
    while index in used:
        index += 1
    return index


def node_ip_for_index(index: int) -> str:
    """A loopback InternalIP per node index: 127.1.0.1, 127.1.0.2, ... 127.1.0.254, 127.1.1.1."""
    high, low = divmod(index, _HOSTS_PER_OCTET)
    return str(_NODE_IP_BASE + high * 256 + low + 1)


class PodIPPool:
    """The pod IPs of one node. The CIDR may be learnt after addresses are reserved
    (pods are seen before their node is registered); allocation needs it."""

    def __init__(self, cidr: str | None = None) -> None:
        self._owners: dict[str, str] = {}  # ip -> pod uid
        self._by_uid: dict[str, str] = {}  # pod uid -> ip (the inverse of _owners)
        self._hosts: list[str] = []
        self._cursor = 0
        self.cidr: str | None = None
        if cidr:
            self.set_cidr(cidr)

    def set_cidr(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        hosts = [str(ip) for ip in network.hosts()]
        self.cidr = str(network)
        self._hosts = hosts[1:]  # .1 is the node's gateway on a real bridge network

    def reserve(self, ip: str, uid: str) -> None:
        """Record that pod `uid` has `ip` (re-adoption; idempotent)."""
        previous = self._owners.get(ip)
        if previous is not None:
            self._by_uid.pop(previous, None)
        self._owners[ip] = uid
        self._by_uid[uid] = ip

    def allocate(self, uid: str) -> str:
        """An address for pod `uid`: the one it already holds, or the next free one."""
        if uid in self._by_uid:
            return self._by_uid[uid]
        if not self._hosts:
            raise AddressesExhausted("the node has no pod CIDR yet")
        for step in range(len(self._hosts)):
            ip = self._hosts[(self._cursor + step) % len(self._hosts)]
            if ip not in self._owners:
                self._cursor = (self._cursor + step + 1) % len(self._hosts)
                self.reserve(ip, uid)
                return ip
        raise AddressesExhausted(f"no IP addresses available in range set: {self.cidr}")

    def release(self, ip: str | None, uid: str) -> None:
        """Give `ip` back if pod `uid` holds it."""
        if ip and self._owners.get(ip) == uid:
            del self._owners[ip]
            self._by_uid.pop(uid, None)

    def holder(self, ip: str) -> str | None:
        return self._owners.get(ip)

    def __len__(self) -> int:
        return len(self._owners)
