"""Running the controllers: under leader election, as kube-controller-manager does.

    run_controller_manager
      leader_elect: campaign for Lease kube-system/kube-controller-manager; once leading:
        run_controllers: build the controllers (they ask the shared informer factory for
          the informers they need and register their handlers), start the informers,
          wait for their caches to sync, then run every controller until cancelled.

As in Kubernetes, informers start only once this replica leads (a standby keeps no
watches open), and losing the Lease ends the process's work: run_controller_manager raises
`LeaderElectionLost` (kube-controller-manager exits), so a supervisor restarts it with
fresh caches rather than trusting state from a term that ended. Cancellation stops the
controllers, closes the informers, flushes pending Events and releases the Lease, so a
successor takes over at its next retry instead of after the lease duration.

Writes carry the client's field manager; `main` makes a client with
"kube-controller-manager", and a client given here without one gets that name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.manager.registry import CONTROLLERS, ControllerContext, select_controllers
from minikube_py.client import ApiClient, Clock, LeaderElector, RealClock, SharedInformerFactory

log = logging.getLogger("controllers.manager")

FIELD_MANAGER = "kube-controller-manager"


@dataclass(frozen=True)
class LeaderElectionConfig:
    """kube-controller-manager's --leader-elect-* defaults."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    namespace: str = "kube-system"
    name: str = "kube-controller-manager"


class LeaderElectionLost(RuntimeError):
    """This replica led and lost the Lease; start afresh (kube-controller-manager exits)."""


async def run_controllers(client: ApiClient, names: Iterable[str], *, clock: Clock | None = None,
                          concurrency: Mapping[str, int] | None = None,
                          options: Mapping[str, Any] | None = None) -> None:
    """Build the `names` controllers on one shared informer factory and run them until
    cancelled (or until one of them fails, which is raised)."""
    clock = clock or RealClock()
    informers = SharedInformerFactory(client, clock=clock)
    context = ControllerContext(client, informers, clock, dict(concurrency or {}), dict(options or {}))
    try:
        running = {name: CONTROLLERS[name](context) for name in names}
        informers.start()
        await informers.wait_for_cache_sync()
        log.info("caches synced; starting controllers: %s", ", ".join(running) or "(none)")
        async with asyncio.TaskGroup() as group:
            for name, controller in running.items():
                group.create_task(controller.run(), name=name)
    finally:
        await informers.shutdown()
        await context.close()


async def run_controller_manager(client: ApiClient, *, controllers: list[str] | None = None,
                                 leader_elect: bool = True, identity: str | None = None, clock: Clock | None = None,
                                 leader_election: LeaderElectionConfig | None = None,
                                 concurrency: Mapping[str, int] | None = None,
                                 options: Mapping[str, Any] | None = None) -> None:
    """Run the selected controllers (`--controllers` entries; None: all on by default)
    until cancelled; with `leader_elect`, only while holding the Lease."""
    names = select_controllers(controllers)
    if client.field_manager is None:
        client.field_manager = FIELD_MANAGER
    if not leader_elect:
        await run_controllers(client, names, clock=clock, concurrency=concurrency, options=options)
        return
    await _lead(client, names, identity, clock or RealClock(), leader_election or LeaderElectionConfig(),
                concurrency, options)


async def _lead(client: ApiClient, names: list[str], identity: str | None, clock: Clock,
                config: LeaderElectionConfig, concurrency: Mapping[str, int] | None,
                options: Mapping[str, Any] | None = None) -> None:
    failures: list[BaseException] = []
    elector_task: asyncio.Task[None] | None = None

    async def lead() -> None:
        try:
            await run_controllers(client, names, clock=clock, concurrency=concurrency, options=options)
            raise RuntimeError("the controllers stopped on their own")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # A leader whose controllers died must not keep renewing the Lease.
            failures.append(exc)
            if elector_task is not None:
                elector_task.cancel()
            raise

    elector = LeaderElector(client, config.name, namespace=config.namespace, identity=identity,
                            on_started_leading=lead, on_new_leader=lambda leader: log.info("leader is %s", leader),
                            lease_duration=config.lease_duration, renew_deadline=config.renew_deadline,
                            retry_period=config.retry_period, clock=clock)
    elector_task = asyncio.create_task(elector.run(), name="leader election")
    try:
        await asyncio.shield(elector_task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not failures or (current is not None and current.cancelling()):
            raise  # we were cancelled: stop campaigning (and release the Lease)
    finally:
        if not elector_task.done():
            elector_task.cancel()
        await asyncio.gather(elector_task, return_exceptions=True)
    if failures:
        raise failures[0]
    raise LeaderElectionLost(f"{elector.identity} lost the lease {config.namespace}/{config.name}")
