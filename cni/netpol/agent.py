"""The per-node NetworkPolicy agent: informers in, an nftables table and an answer out.

Like Calico's Felix or kube-router's policy controller, one agent runs per node and
enforces policy for that node's pods only. It watches NetworkPolicies, Pods,
Namespaces (for namespaceSelector) and Nodes (their addresses are "the node", always
allowed) through the client runtime, and reconciles level-triggered: every event adds
the one key `ruleset` to a work queue, whose de-duplication coalesces a burst (a
Deployment of fifty pods) into one pass, and whose single worker keeps at most one
`nft` transaction in flight. A pass rebuilds the whole `PolicyModel` from the caches,
swaps it in for `allowed()`, renders this node's table and applies it when the text
changed. A failed apply is retried with the queue's backoff.

`allowed()` is what the service proxy asks for every connection it opens for a
client: a cached lookup in the current immutable model, no I/O.

NetworkPolicy has no status in networking.k8s.io/v1, so the agent writes nothing to
the API: a policy that does not parse is logged (and fails closed, see the model).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any, Protocol

import click

from cni.netpol import nft as nftables
from cni.netpol.model import PolicyModel, address_network
from minikube_py.client import (
    NAMESPACES,
    NODES,
    PODS,
    ApiClient,
    Controller,
    EventHandler,
    ItemExponentialFailureRateLimiter,
    SharedInformerFactory,
    WorkQueue,
    client_for,
    run_until_signalled,
    setup_process,
)
from minikube_py.client.resources import NETWORKPOLICIES

log = logging.getLogger("cni.netpol")

KEY = "ruleset"
FIELD_MANAGER = "mkp-netpol"


def host_addresses(nodes: list[dict[str, Any]]) -> list[str]:
    """Every node's addresses and each pod range's gateway (the bridge's address)."""
    found: list[str] = []
    for node in nodes:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") in ("InternalIP", "ExternalIP") and address.get("address"):
                found.append(address["address"])
        spec = node.get("spec") or {}
        for cidr in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            try:
                network = address_network(cidr)
            except ValueError:
                continue
            found.append(str(network.network_address + 1))
    return found


class NftRunner(Protocol):
    """What the agent needs of nft (`cni.netpol.nft.Nftables`; tests may stand in)."""

    def apply(self, script: str) -> None: ...

    def delete(self, table: str) -> None: ...


class NetworkPolicyAgent:
    """Enforces NetworkPolicy for one node's pods (nftables) and answers `allowed()`.

    `nftables_enabled=False` keeps only the answer (no kernel rules: the loopback
    network, or a host without root); `nft` runs nft elsewhere (tests: in their own
    namespace); `factory` shares informers with the caller, who then starts the factory
    (before or while `start()` waits for its caches) and shuts it down.
    """

    def __init__(self, client: ApiClient, node_name: str, *, table_prefix: str = nftables.DEFAULT_PREFIX,
                 nftables_enabled: bool = True, nft: NftRunner | None = None,
                 factory: SharedInformerFactory | None = None) -> None:
        self.client = client
        self.node_name = node_name
        self.table = nftables.table_name(node_name, table_prefix)
        self.nftables_enabled = nftables_enabled
        self.nft: NftRunner = nft or nftables.Nftables()
        self._own_factory = factory is None
        self.factory = factory or SharedInformerFactory(client)
        self.informers = [self.factory.informer(r) for r in (NETWORKPOLICIES, PODS, NAMESPACES, NODES)]
        self.queue: WorkQueue[str] = WorkQueue("netpol", rate_limiter=ItemExponentialFailureRateLimiter(0.05, 10.0))
        self.model = PolicyModel([], [])
        self.applied: str | None = None  # the ruleset text now in the kernel
        self.passes = 0  # reconciles that completed (model swapped, ruleset applied)
        self.errors: list[str] = []  # policies of the current model that did not parse
        self._nft_lock = threading.Lock()
        self._handlers: list[tuple[Any, EventHandler]] = []
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, *, timeout: float | None = 30.0) -> None:
        """Start watching and return once the caches synced and the first ruleset is in
        place, so `allowed()` answers from real policies from then on. Raises (after
        cleaning up) when the caches do not sync in time or nft refuses the ruleset."""
        for informer in self.informers:
            handler = EventHandler(self._changed, lambda old, new: self._changed(new), self._changed)
            informer.add_event_handler(handler)
            self._handlers.append((informer, handler))
        if self._own_factory:
            self.factory.start()
        try:
            synced = await asyncio.gather(*(i.wait_synced(timeout) for i in self.informers))
            if not all(synced):
                raise TimeoutError(f"NetworkPolicy agent for {self.node_name}: caches not synced after {timeout}s")
            await self._reconcile(KEY)  # the first pass here, so its error reaches the caller
        except BaseException:
            await self.stop()
            raise
        controller = Controller("netpol", self.queue, self._reconcile, wait_for=self.informers)
        self._task = asyncio.create_task(controller.run(), name=f"netpol {self.node_name}")

    async def stop(self) -> None:
        """Stop watching and remove this node's table."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for informer, handler in self._handlers:
            informer.remove_event_handler(handler)
        self._handlers.clear()
        if self._own_factory:
            await self.factory.shutdown()
        if self.nftables_enabled and self.applied is not None:
            self.applied = None
            # Under the lock: an apply cancelled above may still be running in its thread.
            try:
                await asyncio.to_thread(self._locked, self.nft.delete, self.table)
            except nftables.NftError as exc:
                log.warning("node %s: could not remove table %s: %s", self.node_name, self.table, exc)

    def _locked(self, fn: Any, *args: Any) -> None:
        with self._nft_lock:
            fn(*args)

    # -- the answer ----------------------------------------------------------------------
    def allowed(self, src_ip: str, dst_ip: str, port: int, protocol: str = "TCP") -> bool:
        """May `src_ip` open a connection to `dst_ip`:`port`/`protocol` under the
        NetworkPolicies now known? (Raises PolicyError for nonsense arguments.)"""
        return self.model.allowed(src_ip, dst_ip, port, protocol)

    # -- reconcile -----------------------------------------------------------------------
    def _changed(self, _obj: Any) -> None:
        self.queue.add(KEY)

    def compute(self, objects: list[list[dict[str, Any]]]) -> tuple[PolicyModel, list[str], str | None]:
        """The model, its policy errors and this node's ruleset (None without nftables)
        from listed NetworkPolicies, Pods, Namespaces and Nodes. Pure CPU: it runs in a
        thread, off the loop that may also carry the service proxy's traffic."""
        policies, pods, namespaces, nodes = objects
        model, errors = PolicyModel.from_objects(policies, pods, namespaces, host_addresses=host_addresses(nodes))
        script = nftables.render(model, self.node_name, table=self.table) if self.nftables_enabled else None
        return model, errors, script

    async def _reconcile(self, _key: str) -> None:
        objects = [informer.lister.list() for informer in self.informers]  # copies, taken on the loop
        model, errors, script = await asyncio.to_thread(self.compute, objects)
        for message in sorted(set(errors) - set(self.errors)):
            log.warning("%s (its pods stay isolated, without its rules)", message)
        self.errors = errors
        self.model = model
        if script is not None and script != self.applied:
            self.applied = script  # before the await: stop() must remove even a half-done apply
            try:
                await asyncio.to_thread(self._locked, self.nft.apply, script)
            except BaseException:
                self.applied = ""  # unknown: the next pass applies again, stop() still deletes
                raise
            log.info("node %s: NetworkPolicy ruleset applied (%d isolated pods)", self.node_name,
                     len(nftables.local_rules(model, self.node_name)))
        self.passes += 1


def cleanup(prefix: str = nftables.DEFAULT_PREFIX) -> list[str]:
    """Delete every NetworkPolicy table whose name starts with `prefix` (`mkp down`)."""
    return nftables.cleanup(prefix)


# -- the process ---------------------------------------------------------------------------------
async def serve(client: ApiClient, node: str, table_prefix: str) -> None:
    agent = NetworkPolicyAgent(client, node, table_prefix=table_prefix)

    async def work() -> None:
        await agent.start()
        try:
            await asyncio.Event().wait()
        finally:
            await agent.stop()

    await run_until_signalled(client, work, "netpol")


def main(kubeconfig: str | None, server: str | None, node: str, table_prefix: str = nftables.DEFAULT_PREFIX) -> None:
    """Run one node's agent until SIGTERM/SIGINT (its table is removed on the way out)."""
    import uvloop

    setup_process()
    try:
        client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent="mkp-netpol/minikube_py")
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    uvloop.run(serve(client, node, table_prefix))


@click.command("netpol")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig of the cluster.")
@click.option("--server", help="API server URL (overrides the kubeconfig's).")
@click.option("--node", help="The node whose pods to enforce NetworkPolicy for.")
@click.option("--table-prefix", default=nftables.DEFAULT_PREFIX, show_default=True,
              help="nftables tables are named <prefix>_<node>.")
@click.option("--cleanup", "do_cleanup", is_flag=True,
              help="Delete every table named <prefix>* and exit (what mkp down does).")
def netpol_command(kubeconfig: str | None, server: str | None, node: str | None, table_prefix: str,
                   do_cleanup: bool) -> None:
    """Enforce NetworkPolicy for one node's pods with nftables (bridge network, root)."""
    if do_cleanup:
        for name in cleanup(table_prefix):
            click.echo(f"deleted table inet {name}")
        return
    if not node:
        raise click.UsageError("give --node NAME (or --cleanup)")
    if not (kubeconfig or server):
        raise click.UsageError("give --kubeconfig or --server")
    main(kubeconfig, server, node, table_prefix)
