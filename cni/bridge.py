"""The `bridge` pod network mode: a network namespace per pod, a veth into the node's bridge.

This is the conflist a kubeadm node with the reference plugins would carry in
/etc/cni/net.d (kind's and minikube's bridge CNI look the same), run through our libcni:

  bridge    the reference binary: creates the node's bridge if missing (`mkpbr<k>`,
            with the gateway `.1` of the node's pod CIDR when isGateway), a veth pair
            with one end as `eth0` in the pod's namespace, the address from IPAM, and a
            default route via the gateway. hairpinMode lets a pod reach itself through a
            Service (the proxy sends its own packet back out of the port it came in by).
            ipMasq is off: pods on two nodes talk with their own addresses, routed by the
            host between the two bridges, and nothing is NATed to the outside.
  loopback  the reference binary, chained: brings `lo` up in the pod's namespace (a new
            namespace has it down; containerd does the same with its own loopback call)
            and passes the bridge's Result on.

IPAM is `host-local` over the node's pod CIDR. The bridge binary executes the IPAM plugin
itself (from CNI_PATH), so here it is always the host-local *binary*; its `dataDir` is the
node's `<cni>/networks`, the very layout our in-process host-local reads, so the kubelet's
prune and inspection work the same in both modes.

The `none` network (annotation `mkp.dev/network: none`) is the same namespace with only
`lo` up and no address, as Docker's `--network none`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from cni.config import NetworkConfigList
from cni.invoke import DEFAULT_CNI_PATH, PluginRegistry
from cni.libcni import CNIConfig
from cni.types import CURRENT_VERSION, ERR_INVALID_NETWORK_CONFIG, CNIError

NETWORK_NAME = "mkp-bridge"
NONE_NETWORK_NAME = "mkp-none"
REQUIRED_BINARIES = ("bridge", "host-local", "loopback")


def bridge_network(pod_cidr: str, bridge: str, *, data_dir: Path, name: str = NETWORK_NAME,
                   mtu: int | None = None) -> NetworkConfigList:
    """The conflist of node `bridge` whose pods get addresses of `pod_cidr`."""
    try:
        network = ipaddress.ip_network(pod_cidr, strict=True)
    except ValueError as exc:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"bridge mode: invalid pod CIDR {pod_cidr!r}: {exc}") from None
    if network.version != 4 or network.prefixlen > 30 or network.is_loopback:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"bridge mode needs an IPv4 pod CIDR of at least 4 addresses outside 127/8, not {pod_cidr}")
    if not bridge or len(bridge) > 15 or "/" in bridge or " " in bridge:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"bridge mode: invalid bridge name {bridge!r}")
    gateway = str(network.network_address + 1)
    bridge_conf: dict[str, Any] = {
        "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
        "hairpinMode": True, "forceAddress": False,
        "ipam": {"type": "host-local", "dataDir": str(data_dir),
                 "ranges": [[{"subnet": str(network), "gateway": gateway}]],
                 "routes": [{"dst": "0.0.0.0/0"}]}}
    if mtu is not None:
        bridge_conf["mtu"] = mtu
    return NetworkConfigList.from_json({"cniVersion": CURRENT_VERSION, "name": name,
                                        "plugins": [bridge_conf, {"type": "loopback"}]})


def none_network(name: str = NONE_NETWORK_NAME) -> NetworkConfigList:
    """A namespace with `lo` up and nothing else."""
    return NetworkConfigList.from_json({"cniVersion": CURRENT_VERSION, "name": name,
                                        "plugins": [{"type": "loopback"}]})


def bridge_cni(state_dir: Path, cni_path: list[str] | None = None) -> CNIConfig:
    """A CNIConfig over the reference binaries on `cni_path` (kubelet default:
    /opt/cni/bin then /usr/lib/cni), results cached under `state_dir`."""
    registry = PluginRegistry(cni_path if cni_path is not None else DEFAULT_CNI_PATH)
    for binary in REQUIRED_BINARIES:
        registry.find_binary(binary)  # fail at start, not at the first pod
    return CNIConfig(registry, Path(state_dir))
