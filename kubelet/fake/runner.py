"""Running fake nodes: wiring the node and pod halves on one client, and the process
entry point (`main`, uvloop, SIGTERM).

One process serves any number of fake nodes, the way kwok does: one informer for Nodes,
one for bound Pods, two controllers (nodes keyed by name, pods by namespace/name). That
keeps 500 nodes x 20 pods at two watches and one cache instead of a kubelet each.

Stopping (cancel, SIGTERM, SIGINT) leaves Nodes, Leases and pods as they are, as a
stopped kubelet does: the Leases stop renewing and the node lifecycle controller takes
it from there. Starting again re-adopts everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubelet.fake.config import FIELD_MANAGER, FakeNodeConfig
from kubelet.fake.nodes import NodeAgent
from kubelet.fake.pods import PodDriver
from minikube_py.client import (
    NODES,
    PODS,
    ApiClient,
    Clock,
    RealClock,
    SharedInformerFactory,
    client_for,
    run_until_signalled,
    setup_process,
)

log = logging.getLogger("kubelet.fake")

BOUND_PODS = "spec.nodeName!="  # field selector: every pod a scheduler (or user) bound


class FakeNodes:
    """The fake nodes `names`, talking to the API server through `client`."""

    def __init__(self, client: ApiClient, names: Sequence[str], *, config: FakeNodeConfig | None = None,
                 clock: Clock | None = None) -> None:
        if not names:
            raise ValueError("fake nodes need at least one node name")
        if len(set(names)) != len(names):
            raise ValueError("fake node names must be unique")
        self.client = client
        self.config = config or FakeNodeConfig()
        self.clock = clock or RealClock()
        self.factory = SharedInformerFactory(client, clock=self.clock)
        self.nodes = NodeAgent(client, names, config=self.config, clock=self.clock,
                               informer=self.factory.informer(NODES), on_ready=self._node_ready)
        self.pods = PodDriver(client, self.nodes.handles, config=self.config, clock=self.clock,
                              informer=self.factory.informer(PODS, field_selector=BOUND_PODS))

    def _node_ready(self, name: str) -> None:
        self.pods.node_ready(name)

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """True once every node is registered (real seconds; False on timeout)."""
        return await self.nodes.wait_ready(timeout)

    async def run(self) -> None:
        """Serve until cancelled."""
        self.factory.start()
        self.nodes.enqueue_all()
        controllers = [self.nodes.controller(), self.pods.controller()]
        log.info("fake nodes %s starting", ", ".join(self.nodes.handles))
        try:
            async with asyncio.TaskGroup() as group:  # one failing controller stops both
                for controller in controllers:
                    group.create_task(controller.run(), name=f"controller {controller.name}")
        finally:
            await self.factory.shutdown()
            await self._flush_events()

    async def _flush_events(self, timeout: float = 2.0) -> None:
        recorders = [h.recorder for h in self.nodes.handles.values() if h.recorder is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.close() for r in recorders), return_exceptions=True), timeout)


async def run_fake_nodes(client: ApiClient, *, names: list[str], capacity: Mapping[str, str] | None = None,
                         clock: Clock | None = None, heartbeat: float = 10.0, **options: Any) -> None:
    """Register the nodes `names` and drive their pods until cancelled.

    capacity   resources per node, merged over DEFAULT_CAPACITY (cpu 8, memory 32Gi,
               ephemeral-storage 100Gi, pods 110)
    clock      injectable time (FakeClock in tests)
    heartbeat  seconds between Lease renewals
    options    the other FakeNodeConfig fields: status_report_frequency, run_seconds,
               record_events, pod_workers, node_workers
    """
    config = FakeNodeConfig(capacity=dict(capacity or {}), heartbeat=heartbeat, **options)
    await FakeNodes(client, names, config=config, clock=clock).run()


def user_agent(config: FakeNodeConfig) -> str:
    return f"kubelet/{config.kubelet_version} (linux/{config.architecture}) mkp/fake"


async def serve(*, names: Sequence[str], kubeconfig: str | None = None, server: str | None = None,
                config: FakeNodeConfig | None = None) -> None:
    """Run fake nodes against the cluster of `kubeconfig` (or the plain `server` URL)
    until SIGTERM or SIGINT."""
    config = config or FakeNodeConfig()
    client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=user_agent(config))
    await run_until_signalled(client, FakeNodes(client, list(names), config=config).run, "fake nodes")


def main(*, names: Sequence[str], kubeconfig: str | None = None, server: str | None = None,
         config: FakeNodeConfig | None = None) -> None:
    """Process entry point (`mkp kubelet --fake ...`): logging, uvloop, serve()."""
    import uvloop

    setup_process()
    uvloop.run(serve(names=names, kubeconfig=kubeconfig, server=server, config=config))
