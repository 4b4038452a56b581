"""Running a network configuration list, as libcni (the library every runtime uses) does.

ADD runs the plugins in order, each getting the previous one's Result as `prevResult`;
the last Result is the attachment's and is cached on disk under
`<cache_dir>/results/<network>-<container id>-<ifname>`. DEL runs the plugins in reverse
order with the cached Result as `prevResult` and then drops the cache; CHECK runs them in
order against the cached Result (not for configs older than 0.4.0, nor with
disableCheck). The cache is what lets a restarted kubelet know what it set up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cni.config import NetworkConfigList, RuntimeConf, plugin_stdin
from cni.invoke import PluginRegistry
from cni.types import ERR_INCOMPATIBLE_VERSION, ERR_UNKNOWN_CONTAINER, CNIError, Result

_NO_CHECK = ("0.1.0", "0.2.0", "0.3.0", "0.3.1")  # CHECK arrived in 0.4.0


class CNIConfig:
    """Invokes network configuration lists through a PluginRegistry."""

    def __init__(self, registry: PluginRegistry, cache_dir: Path) -> None:
        self.registry = registry
        self.cache_dir = Path(cache_dir)

    async def add_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> Result:
        prev: Result | None = None
        for index in range(len(net.plugins)):
            conf = plugin_stdin(net, index, rt, prev)
            prev = await self.registry.get(conf["type"]).add(conf, rt)
        assert prev is not None  # a list always has at least one plugin
        self._write_cache(net, rt, prev)
        return prev

    async def del_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        """Tear the attachment down. DEL must succeed for attachments already gone, so a
        missing cache is not an error; the plugins are still called (they clean up state)."""
        cached = self.cached_result(net, rt)
        prev = cached if net.cni_version not in _NO_CHECK else None
        for index in reversed(range(len(net.plugins))):
            conf = plugin_stdin(net, index, rt, prev)
            await self.registry.get(conf["type"]).delete(conf, rt)
        self._cache_path(net, rt).unlink(missing_ok=True)

    async def check_network_list(self, net: NetworkConfigList, rt: RuntimeConf) -> None:
        if net.cni_version in _NO_CHECK:
            raise CNIError(ERR_INCOMPATIBLE_VERSION,
                           f'configuration version "{net.cni_version}" does not support the CHECK command')
        if net.disable_check:
            return
        cached = self.cached_result(net, rt)
        if cached is None:
            raise CNIError(ERR_UNKNOWN_CONTAINER,
                           f"no cached result for network {net.name} and container {rt.container_id}")
        for index in range(len(net.plugins)):
            conf = plugin_stdin(net, index, rt, cached)
            await self.registry.get(conf["type"]).check(conf, rt)

    async def version(self, type_name: str) -> dict[str, Any]:
        return await self.registry.get(type_name).version()

    def cached_result(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        entry = self.cached_entry(net.name, rt.container_id, rt.ifname)
        return Result.from_json(entry["result"]) if entry else None

    def cached_entry(self, network: str, container_id: str, ifname: str) -> dict[str, Any] | None:
        """The whole cache entry of one attachment: result, netns, cniArgs, config."""
        return self._read_cache(self.cache_dir / "results" / f"{network}-{container_id}-{ifname}")

    def cached_attachments(self, network: str) -> list[dict[str, Any]]:
        """Every cached attachment of `network`: {containerId, ifName, cniArgs, result}."""
        directory = self.cache_dir / "results"
        if not directory.is_dir():
            return []
        found = []
        for path in sorted(directory.glob(f"{network}-*")):
            entry = self._read_cache(path)
            if entry and entry.get("networkName") == network:
                found.append(entry)
        return found

    def _cache_path(self, net: NetworkConfigList, rt: RuntimeConf) -> Path:
        return self.cache_dir / "results" / f"{net.name}-{rt.container_id}-{rt.ifname}"

    def _write_cache(self, net: NetworkConfigList, rt: RuntimeConf, result: Result) -> None:
        path = self._cache_path(net, rt)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"kind": "cniCacheV1", "containerId": rt.container_id, "ifName": rt.ifname,
                 "networkName": net.name, "netns": rt.netns, "cniArgs": [list(a) for a in rt.args],
                 "capabilityArgs": rt.capability_args, "config": net.to_json(), "result": result.to_json()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)  # atomic: a crash leaves the old entry or the new one

    @staticmethod
    def _read_cache(path: Path) -> dict[str, Any] | None:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("kind") == "cniCacheV1" else None
