"""The `loopback` pod network mode: every pod a unique 127.x address, no isolation.

Not to be confused with the CNI `loopback` plugin (the reference binary of that name),
which brings up the `lo` interface inside a new network namespace. This mode creates no
namespace and no interface: a pod's containers share the host's network namespace, and
the pod is only given an address of its own out of the node's pod CIDR
(`127.244.<i>.0/24`, allocated by host-local IPAM). Linux routes all of 127.0.0.0/8 to
`lo`, so a process can bind that address and other pods reach it, without root and
without configuring anything. The kubelet hands the address to containers as POD_IP and
through the downward API (status.podIP). Nothing stops a pod from binding or reaching
other addresses: ports are not isolated between pods. The networking issue's `bridge`
mode gives pods real namespaces.

The Result has the address without a gateway (there is no router between pods; the
range's `.1` is still skipped, as host-local does, and stays free for the node).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from cni.config import NetworkConfigList, RuntimeConf
from cni.invoke import PluginRegistry
from cni.ipam.hostlocal import HostLocalPlugin
from cni.libcni import CNIConfig
from cni.podcidr import index_of_cidr, pod_cidr_for_index  # noqa: F401  (re-exported)
from cni.types import (
    CURRENT_VERSION,
    ERR_INTERNAL,
    ERR_INVALID_NETWORK_CONFIG,
    CNIError,
    IPConfig,
    Result,
    version_result,
)

PLUGIN_TYPE = "mkp-loopback"
NETWORK_NAME = "mkp-loopback"


class LoopbackPodNetwork:
    """The in-process CNI plugin of type `mkp-loopback`. Its `ipam` section is delegated
    to the IPAM plugin it names (our host-local, or the reference binary), as real
    plugins delegate with ipam.ExecAdd/ExecDel."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry

    async def add(self, conf: dict[str, Any], rt: RuntimeConf) -> Result:
        ipam_result = await self._ipam(conf).add(self._ipam_conf(conf), rt)
        ips = []
        for ip in ipam_result.ips:
            if not ipaddress.ip_interface(ip.address).ip.is_loopback:
                raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                               f"{PLUGIN_TYPE}: IPAM gave {ip.address}, which is not a loopback address")
            ips.append(IPConfig(ip.address))  # no gateway, no interface: see the module docstring
        return Result(conf.get("cniVersion", CURRENT_VERSION), ips=ips, dns=ipam_result.dns)

    async def delete(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        await self._ipam(conf).delete(self._ipam_conf(conf), rt)

    async def check(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        if not conf.get("prevResult", {}).get("ips"):
            raise CNIError(ERR_INTERNAL, f"{PLUGIN_TYPE}: no address was assigned to {rt.container_id}")
        await self._ipam(conf).check(self._ipam_conf(conf), rt)

    async def version(self) -> dict[str, Any]:
        return version_result()

    def _ipam(self, conf: dict[str, Any]) -> Any:
        ipam = conf.get("ipam")
        if not isinstance(ipam, dict) or not ipam.get("type"):
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"{PLUGIN_TYPE}: IPAM config missing 'ipam' key")
        return self.registry.get(ipam["type"])

    @staticmethod
    def _ipam_conf(conf: dict[str, Any]) -> dict[str, Any]:
        # The IPAM plugin reads the same stdin as its caller, as ipam.ExecAdd passes it.
        return dict(conf)


def loopback_network(pod_cidr: str, *, name: str = NETWORK_NAME, ipam_type: str = "host-local",
                     data_dir: Path | None = None) -> NetworkConfigList:
    """The conflist of the loopback mode for a node with pod CIDR `pod_cidr`."""
    network = ipaddress.ip_network(pod_cidr, strict=False)
    if not network.is_loopback:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"loopback mode needs a 127.x pod CIDR, not {pod_cidr}")
    ipam: dict[str, Any] = {"type": ipam_type, "ranges": [[{"subnet": str(network)}]]}
    if data_dir is not None:
        ipam["dataDir"] = str(data_dir)
    return NetworkConfigList.from_json(
        {"cniVersion": CURRENT_VERSION, "name": name, "plugins": [{"type": PLUGIN_TYPE, "ipam": ipam}]})


def loopback_registry(state_dir: Path, cni_path: list[str] | None = None, *,
                      builtin_ipam: bool = True) -> PluginRegistry:
    """A registry with this package's plugins; without `builtin_ipam`, `host-local` is
    the binary of that name on the CNI path."""
    registry = PluginRegistry(cni_path) if cni_path is not None else PluginRegistry()
    if builtin_ipam:
        registry.register("host-local", HostLocalPlugin(state_dir))
    registry.register(PLUGIN_TYPE, LoopbackPodNetwork(registry))
    return registry


def loopback_cni(state_dir: Path, cni_path: list[str] | None = None, *, builtin_ipam: bool = True) -> CNIConfig:
    """A CNIConfig whose results and allocations live under `state_dir` (the node's cni/)."""
    return CNIConfig(loopback_registry(state_dir, cni_path, builtin_ipam=builtin_ipam), state_dir)
