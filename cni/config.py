"""Network configuration (a `.conflist`) and the runtime's per-attachment parameters.

A network configuration list names the network, its CNI version and the plugins to run
in order; each plugin entry has a `type` (which plugin) and plugin-specific keys such as
`ipam`. RuntimeConf is what the spec's environment variables carry (container id, netns
path, interface name, CNI_ARGS) plus capability arguments that the runtime injects into
a plugin's `runtimeConfig` only when the plugin declares that capability, as libcni does.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cni.types import (
    ERR_DECODING_FAILURE,
    ERR_INCOMPATIBLE_VERSION,
    ERR_INVALID_NETWORK_CONFIG,
    SUPPORTED_VERSIONS,
    CNIError,
    Result,
)

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")  # the spec's rule for network names
# CNI_ARGS a Kubernetes runtime passes for a pod (containerd and CRI-O use these names).
K8S_ARG_KEYS = ("K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID")


@dataclass
class RuntimeConf:
    """One attachment: container `container_id`'s interface `ifname` in netns `netns`."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: list[tuple[str, str]] = field(default_factory=list)
    capability_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_pod(cls, namespace: str, name: str, uid: str, sandbox_id: str, *, netns: str,
                ifname: str = "eth0", capability_args: dict[str, Any] | None = None) -> RuntimeConf:
        """The RuntimeConf a Kubernetes runtime builds for a pod sandbox."""
        args = [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name),
                ("K8S_POD_INFRA_CONTAINER_ID", sandbox_id), ("K8S_POD_UID", uid)]
        return cls(sandbox_id, netns, ifname, args, dict(capability_args or {}))

    def cni_args(self) -> str:
        """CNI_ARGS: `KEY=VALUE` pairs joined with `;`."""
        for key, value in self.args:
            if not key or any(c in key + value for c in ";="):
                raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"invalid CNI_ARGS entry {key}={value}")
        return ";".join(f"{k}={v}" for k, v in self.args)

    def arg(self, key: str) -> str | None:
        return next((v for k, v in self.args if k == key), None)


def _check_version(version: Any) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f"config is {version!r}, supported {list(SUPPORTED_VERSIONS)}")
    return str(version)


@dataclass
class NetworkConfigList:
    """A `.conflist`: {cniVersion, name, disableCheck, plugins: [{type, ...}, ...]}."""

    name: str
    cni_version: str
    plugins: list[dict[str, Any]]
    disable_check: bool = False

    @classmethod
    def from_json(cls, data: Any) -> NetworkConfigList:
        """Parse a conflist, or a single-plugin `.conf` (promoted to a one-entry list)."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise CNIError(ERR_DECODING_FAILURE, f"error parsing configuration: {exc}") from None
        if not isinstance(data, dict):
            raise CNIError(ERR_DECODING_FAILURE, "error parsing configuration: expected a JSON object")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"invalid network name {name!r}",
                           "must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")
        version = _check_version(data.get("cniVersion"))
        if "plugins" in data:
            plugins = data["plugins"]
            if not isinstance(plugins, list) or not plugins:
                raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"error parsing configuration list: no plugins in list {name}")
        else:
            plugins = [{k: v for k, v in data.items() if k not in ("name", "cniVersion")}]
        for i, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
                raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"plugins[{i}] of network {name} has no type")
        return cls(name, version, [copy.deepcopy(p) for p in plugins], bool(data.get("disableCheck", False)))

    @classmethod
    def from_file(cls, path: Path) -> NetworkConfigList:
        return cls.from_json(Path(path).read_bytes())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": self.cni_version, "name": self.name}
        if self.disable_check:
            out["disableCheck"] = True
        out["plugins"] = copy.deepcopy(self.plugins)
        return out


def plugin_stdin(net: NetworkConfigList, index: int, rt: RuntimeConf, prev: Result | None) -> dict[str, Any]:
    """The configuration plugin `index` reads on stdin: its own entry plus the network's
    name and version, `prevResult`, and `runtimeConfig` holding only the capability
    arguments its `capabilities` map enables (libcni's injectRuntimeConfig)."""
    conf = copy.deepcopy(net.plugins[index])
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    if prev is not None:
        conf["prevResult"] = prev.converted(net.cni_version).to_json()
    wanted = {k for k, on in (conf.get("capabilities") or {}).items() if on}
    runtime = {k: v for k, v in rt.capability_args.items() if k in wanted}
    if runtime:
        conf["runtimeConfig"] = {**conf.get("runtimeConfig", {}), **runtime}
    return conf
