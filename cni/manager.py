"""What the kubelet calls to give a pod sandbox its network and take it away.

The kubelet (like containerd's CRI plugin) sets up the network once per sandbox: it
builds the pod's RuntimeConf (K8S_POD_* CNI_ARGS, ifname eth0), creates the sandbox's
network namespace when the mode uses one, and runs the network's plugin chain; teardown
runs DEL and removes the namespace. Everything is keyed by sandbox id and idempotent,
and the state is on disk (libcni's result cache plus IPAM files), so a kubelet that
restarts finds every pod's address again by reading it, without calling a plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cni.bridge import bridge_cni, bridge_network, none_network
from cni.config import NetworkConfigList, RuntimeConf
from cni.ipam import hostlocal
from cni.libcni import CNIConfig
from cni.loopback import loopback_cni, loopback_network
from cni.netns import NetnsDir
from cni.types import Result

HOST_NETNS = "/proc/self/ns/net"  # CNI_NETNS when pods share the host's namespace
IFNAME = "eth0"


@dataclass
class PodNetwork:
    """A sandbox's network: status.podIP (`ip`), status.podIPs (`ips`, IPv4 first as the
    kubelet orders them) and the netns path (None: the host's namespace)."""

    sandbox_id: str
    ip: str | None
    ips: list[str]
    netns: str | None
    result: Result = field(repr=False, default_factory=Result)
    namespace: str = ""
    name: str = ""
    uid: str = ""


def _pod_network(entry_netns: str | None, sandbox_id: str, result: Result,
                 args: dict[str, str]) -> PodNetwork:
    # Result order within a family is kept: the first address is the pod's primary one.
    unique = list(dict.fromkeys(ip.ip for ip in result.ips))
    ordered = sorted(unique, key=lambda a: ipaddress.ip_address(a).version)
    netns = entry_netns if entry_netns and entry_netns != HOST_NETNS else None
    return PodNetwork(sandbox_id, ordered[0] if ordered else None, ordered, netns, result,
                      args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", ""), args.get("K8S_POD_UID", ""))


class NetworkPlugin(Protocol):
    """What the kubelet needs from pod networking (NetworkManager implements it; the
    kubelet's per-mode wrappers in kubelet.podnetwork delegate to one or two managers)."""

    async def setup_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork: ...

    async def teardown_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> None: ...

    async def status(self, namespace: str, name: str, uid: str, sandbox_id: str, *,
                     check: bool = False) -> PodNetwork | None: ...

    def pods(self) -> dict[str, PodNetwork]: ...

    async def prune(self, keep: Collection[str]) -> list[str]: ...


class NetworkManager:
    """Pod networking over one network configuration list. With `netns_dir`, each
    sandbox gets its own namespace there (bridge mode); without, pods share the host's."""

    def __init__(self, cni: CNIConfig, network: NetworkConfigList, *, netns_dir: NetnsDir | None = None,
                 ifname: str = IFNAME) -> None:
        self.cni = cni
        self.network = network
        self.netns_dir = netns_dir
        self.ifname = ifname
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @classmethod
    def loopback(cls, state_dir: Path, pod_cidr: str, *, cni_path: list[str] | None = None,
                 builtin_ipam: bool = True) -> NetworkManager:
        """The loopback mode for a node, state under `state_dir` (the node's `cni/` dir).
        With builtin_ipam False the reference `host-local` binary (found on `cni_path`)
        allocates, in the same files."""
        state_dir = Path(state_dir)
        network = loopback_network(pod_cidr, data_dir=None if builtin_ipam else state_dir / "networks")
        return cls(loopback_cni(state_dir, cni_path, builtin_ipam=builtin_ipam), network)

    @classmethod
    def bridge(cls, state_dir: Path, pod_cidr: str, bridge: str, *, netns_dir: NetnsDir,
               cni_path: list[str] | None = None) -> NetworkManager:
        """The bridge mode for a node (see cni.bridge): each sandbox a namespace in
        `netns_dir`, a veth into `bridge`, an address of `pod_cidr`; state under
        `state_dir` (results cache, host-local files in `networks/`)."""
        state_dir = Path(state_dir)
        network = bridge_network(pod_cidr, bridge, data_dir=state_dir / "networks")
        return cls(bridge_cni(state_dir, cni_path), network, netns_dir=netns_dir)

    @classmethod
    def none(cls, state_dir: Path, *, netns_dir: NetnsDir, cni_path: list[str] | None = None) -> NetworkManager:
        """Namespaces with only `lo` up (annotation mkp.dev/network: none). The Result
        holds lo's 127.0.0.1, which is no pod IP: callers report none."""
        return cls(bridge_cni(state_dir, cni_path), none_network(), netns_dir=netns_dir)

    async def setup_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork:
        """ADD the sandbox to the network, or return what an earlier ADD gave it."""
        async with self._lock(sandbox_id):
            existing = self._cached(sandbox_id)
            if existing is not None:
                if existing.netns is None or self.netns_dir is None or self.netns_dir.exists(sandbox_id):
                    return existing
                # The attachment outlived its namespace (`mkp down` stopped the pod, or the
                # machine rebooted): DEL what is left of it (its address), then ADD anew.
                await self._teardown(self._runtime_conf(sandbox_id, namespace, name, uid))
            netns = str(self.netns_dir.create(sandbox_id)) if self.netns_dir else HOST_NETNS
            rt = RuntimeConf.for_pod(namespace, name, uid, sandbox_id, netns=netns, ifname=self.ifname)
            try:
                result = await self.cni.add_network_list(self.network, rt)
            except BaseException:
                # As the kubelet does after a failed ADD: DEL so nothing half-made remains.
                with contextlib.suppress(Exception):
                    await self._teardown(rt)
                raise
            return _pod_network(netns, sandbox_id, result, dict(rt.args))

    async def teardown_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> None:
        """DEL the sandbox from the network and remove its namespace. Idempotent."""
        async with self._lock(sandbox_id):
            await self._teardown(self._runtime_conf(sandbox_id, namespace, name, uid))

    def _runtime_conf(self, sandbox_id: str, namespace: str, name: str, uid: str) -> RuntimeConf:
        """What DEL is run with: the cached ADD's arguments, else the pod's."""
        cached = self._entry(sandbox_id)
        if cached is not None:
            return RuntimeConf(sandbox_id, cached.get("netns") or HOST_NETNS, self.ifname,
                               [tuple(a) for a in cached.get("cniArgs", [])])  # type: ignore[misc]
        netns = str(self.netns_dir.path(sandbox_id)) if self.netns_dir else HOST_NETNS
        return RuntimeConf.for_pod(namespace, name, uid, sandbox_id, netns=netns, ifname=self.ifname)

    async def status(self, namespace: str, name: str, uid: str, sandbox_id: str, *,
                     check: bool = False) -> PodNetwork | None:
        """The sandbox's network from the cache (None if it has none); `check` also runs
        the plugins' CHECK, raising CNIError if the attachment is broken."""
        found = self._cached(sandbox_id)
        if found is not None and check:
            rt = RuntimeConf.for_pod(namespace, name, uid, sandbox_id, netns=found.netns or HOST_NETNS,
                                     ifname=self.ifname)
            await self.cni.check_network_list(self.network, rt)
        return found

    def pods(self) -> dict[str, PodNetwork]:
        """Every sandbox attached to the network, by sandbox id (for re-adoption after a
        restart and for cleaning up sandboxes the kubelet no longer knows)."""
        out = {}
        for entry in self.cni.cached_attachments(self.network.name):
            if entry.get("ifName") != self.ifname:
                continue
            result = Result.from_json(entry["result"])
            args = {k: v for k, v in entry.get("cniArgs", [])}
            out[entry["containerId"]] = _pod_network(entry.get("netns"), entry["containerId"], result, args)
        return out

    async def prune(self, keep: Collection[str]) -> list[str]:
        """Tear down every attachment whose sandbox id is not in `keep` (the sandboxes
        the kubelet knows after a restart): cached results, host-local allocations left
        by an ADD that crashed before its result was cached, and namespace files. As CNI
        1.1's GC verb does for valid attachments. Returns the sandbox ids removed.
        The namespace sweep takes every `cni-*` file of `netns_dir`: only prune with a
        directory this manager has to itself (not a /var/run/netns that several nodes'
        kubelets share; the kubelet does not prune)."""
        found = {e["containerId"] for e in self.cni.cached_attachments(self.network.name)
                 if e.get("ifName") == self.ifname}
        for network_dir in self._host_local_dirs():
            found |= {cid for cid, ifname in hostlocal.owners(network_dir) if ifname in (self.ifname, "")}
        if self.netns_dir is not None:
            found |= {p.name.removeprefix("cni-") for p in self.netns_dir.list()}
        stale = sorted(found - set(keep))
        for sandbox_id in stale:
            await self.teardown_pod("", "", "", sandbox_id)
        return stale

    def _host_local_dirs(self) -> list[Path]:
        dirs = []
        for plugin in self.network.plugins:
            ipam = plugin.get("ipam")
            if isinstance(ipam, dict) and ipam.get("type") == "host-local":
                data_dir = Path(ipam["dataDir"]) if ipam.get("dataDir") else self.cni.cache_dir / "networks"
                dirs.append(data_dir / self.network.name)
        return dirs

    async def _teardown(self, rt: RuntimeConf) -> None:
        await self.cni.del_network_list(self.network, rt)
        if self.netns_dir is not None:
            self.netns_dir.delete(rt.container_id)

    def _entry(self, sandbox_id: str) -> dict[str, Any] | None:
        return self.cni.cached_entry(self.network.name, sandbox_id, self.ifname)

    def _cached(self, sandbox_id: str) -> PodNetwork | None:
        entry = self._entry(sandbox_id)
        if entry is None:
            return None
        args = {k: v for k, v in entry.get("cniArgs", [])}
        return _pod_network(entry.get("netns"), sandbox_id, Result.from_json(entry["result"]), args)

    @contextlib.asynccontextmanager
    async def _lock(self, sandbox_id: str) -> AsyncIterator[None]:
        """One operation per sandbox at a time; the lock is dropped when nobody holds or
        awaits it, so the table does not grow with every pod ever seen."""
        lock, users = self._locks.get(sandbox_id, (asyncio.Lock(), 0))
        self._locks[sandbox_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[sandbox_id]
            if users == 1:
                del self._locks[sandbox_id]
            else:
                self._locks[sandbox_id] = (lock, users - 1)
