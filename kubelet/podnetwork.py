"""The kubelet's pod network: which CNI network a pod sandbox joins, per mode.

loopback  pods share the host's namespace; each gets a 127.244.<node>.x address from
          the node's pod CIDR (spec.podCIDR, known once the Node is registered).
bridge    each pod gets a network namespace (named `cni-<pod uid>` in /var/run/netns,
          as containerd names them, so `ip netns exec` works on them) with a veth into
          the node's bridge and an address of the node's --pod-cidr (cni.bridge). Pods
          annotated `mkp.dev/network: none` get a namespace with only `lo` up and no
          address (Docker's `--network none`); the loopback mode cannot isolate a pod
          and refuses them.

Both speak the NetworkPlugin protocol the pod workers use (setup_pod, teardown_pod),
plus `setup_isolated_pod` for the `none` pods; teardown works whichever a pod used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cni.manager import NetworkManager, PodNetwork
from cni.netns import NetnsDir


class NetworkUnavailable(Exception):
    """The pod asks for a network this node's mode cannot give (FailedCreatePodSandBox)."""


class LoopbackPodNetwork:
    """The loopback mode; the manager is made once the node's pod CIDR is known."""

    def __init__(self, state_dir: Path, pod_cidr: Callable[[], str | None]) -> None:
        self.state_dir = Path(state_dir)
        self._pod_cidr = pod_cidr
        self._manager: NetworkManager | None = None

    def manager(self) -> NetworkManager:
        if self._manager is None:
            cidr = self._pod_cidr()
            if not cidr:
                raise RuntimeError("the node has no pod CIDR yet")
            self._manager = NetworkManager.loopback(self.state_dir, cidr)
        return self._manager

    async def setup_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork:
        return await self.manager().setup_pod(namespace, name, uid, sandbox_id)

    async def setup_isolated_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork:
        raise NetworkUnavailable("annotation mkp.dev/network: none needs a network namespace per pod, which the "
                                 "loopback pod network does not make (start the cluster with --network bridge)")

    async def teardown_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> None:
        await self.manager().teardown_pod(namespace, name, uid, sandbox_id)


class BridgePodNetwork:
    """The bridge mode: the node's bridge network and the `none` network, one netns dir."""

    def __init__(self, state_dir: Path, pod_cidr: str, bridge: str, *, netns_dir: NetnsDir,
                 cni_path: list[str] | None = None) -> None:
        self.netns_dir = netns_dir
        self.bridge = NetworkManager.bridge(Path(state_dir), pod_cidr, bridge, netns_dir=netns_dir, cni_path=cni_path)
        self.none = NetworkManager.none(Path(state_dir), netns_dir=netns_dir, cni_path=cni_path)

    async def setup_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork:
        return await self.bridge.setup_pod(namespace, name, uid, sandbox_id)

    async def setup_isolated_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> PodNetwork:
        return await self.none.setup_pod(namespace, name, uid, sandbox_id)

    async def teardown_pod(self, namespace: str, name: str, uid: str, sandbox_id: str) -> None:
        """DEL from the network the sandbox is in (both when unknown: DEL is idempotent)."""
        if await self.none.status(namespace, name, uid, sandbox_id) is not None:
            await self.none.teardown_pod(namespace, name, uid, sandbox_id)
            return
        await self.bridge.teardown_pod(namespace, name, uid, sandbox_id)

    def pods(self) -> dict[str, PodNetwork]:
        return {**self.bridge.pods(), **self.none.pods()}


def pod_network(config: Any, run_root: Path, pod_cidr: Callable[[], str | None]) -> Any:
    """The network of a kubelet with KubeletConfig `config` (state in <run_root>/cni)."""
    state_dir = Path(run_root) / "cni"
    if config.network == "bridge":
        return BridgePodNetwork(state_dir, config.pod_cidr, config.bridge, netns_dir=NetnsDir(config.netns_dir),
                                cni_path=config.cni_path)
    return LoopbackPodNetwork(state_dir, pod_cidr)
