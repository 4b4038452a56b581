"""The kube-scheduler process (`mkp scheduler`) and `mkp explain schedule POD`.

`run_scheduler` is kube-scheduler's app.Run: start the informers and wait for their
caches (every replica does this, so a standby takes over with a warm cache), then
campaign for the Lease kube-system/kube-scheduler and run the scheduling loop only
while leading. Losing the Lease ends the process with `LeaderElectionLost`, as
kube-scheduler exits ("leaderelection lost") and its supervisor restarts it.

`main` is synchronous for the CLI: it connects as kube-scheduler (field manager and
user agent, so managedFields show who bound a pod), runs on uvloop and stops cleanly
on SIGTERM or SIGINT (the loop stops, pending Events are flushed, the Lease released).

`explain_pod` answers "why did this pod go there (or nowhere)?" from a fresh snapshot
read from the API, independent of any running scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any

from controllers.scheduler.cache import OBJECT_TABLES, is_terminal, node_name_of
from controllers.scheduler.explain import format_explanation
from controllers.scheduler.loop import DEFAULT_SCHEDULER_NAME, Scheduler, scheduler_name_of
from controllers.scheduler.nodeinfo import Snapshot, object_key
from controllers.scheduler.plugins import default_framework
from minikube_py.client import (
    NODES,
    PODS,
    ApiClient,
    Clock,
    LeaderElector,
    RealClock,
    SharedInformerFactory,
    client_for,
    run_until_signalled,
    setup_process,
)

log = logging.getLogger("controllers.scheduler")

FIELD_MANAGER = "kube-scheduler"
USER_AGENT = "kube-scheduler/minikube_py"
LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


class LeaderElectionLost(RuntimeError):
    """The scheduler stopped leading: the process should exit and be restarted."""


@dataclass(frozen=True)
class ElectionTimings:
    """Leader election periods in seconds (kube-scheduler's --leader-elect-* defaults)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


async def run_scheduler(client: ApiClient, *, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                        leader_elect: bool = True, identity: str | None = None, clock: Clock | None = None,
                        election: ElectionTimings | None = None) -> None:
    """Run one scheduler until cancelled; raises LeaderElectionLost if the Lease is lost."""
    clock = clock or RealClock()
    factory = SharedInformerFactory(client, clock=clock)
    scheduler = Scheduler(client, factory, scheduler_name=scheduler_name, clock=clock)
    factory.start()
    try:
        await factory.wait_for_cache_sync()
        if not leader_elect:
            await scheduler.run()
            return
        await _lead(scheduler, client, identity, clock, election or ElectionTimings())
    finally:
        await scheduler.close()
        await factory.shutdown()


async def _lead(scheduler: Scheduler, client: ApiClient, identity: str | None, clock: Clock,
                timings: ElectionTimings) -> None:
    """Run the loop while holding the Lease. A crash of the loop ends the campaign (and
    releases the Lease) instead of leaving a leader that does not schedule."""
    crashed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def lead() -> None:
        try:
            await scheduler.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the waiter below
            if not crashed.done():
                crashed.set_exception(exc)

    elector = LeaderElector(client, LEASE_NAME, namespace=LEASE_NAMESPACE, identity=identity,
                            on_started_leading=lead, lease_duration=timings.lease_duration,
                            renew_deadline=timings.renew_deadline, retry_period=timings.retry_period,
                            clock=clock)
    campaign = asyncio.create_task(elector.run(), name="leader election kube-scheduler")
    try:
        await asyncio.wait({campaign, crashed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        campaign.cancel()
        await asyncio.gather(campaign, return_exceptions=True)
    if crashed.done():
        crashed.result()
    raise LeaderElectionLost(f"{elector.identity} lost the lease {LEASE_NAMESPACE}/{LEASE_NAME}")


# -- mkp explain schedule POD --------------------------------------------------------------------
async def read_snapshot(client: ApiClient, *, leave_out: str | None = None) -> Snapshot:
    """A Snapshot of the cluster as the API has it now; `leave_out` (namespace/name) is a
    pod left off its node, to evaluate it as if it were not scheduled yet."""
    resources = [NODES, PODS, *(resource for resource, _ in OBJECT_TABLES)]
    listed = await asyncio.gather(*(client.list_all(resource) for resource in resources))
    items = [objects for objects, _ in listed]
    nodes, pods, tables = items[0], items[1], items[2:]
    pods = [p for p in pods if object_key(p) != leave_out and node_name_of(p) and not is_terminal(p)]
    by_table = {table: objects for (_, table), objects in zip(OBJECT_TABLES, tables, strict=True)}
    return Snapshot(nodes, pods, **by_table)


def as_unscheduled(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as it was before binding: no spec.nodeName."""
    spec = {k: v for k, v in (pod.get("spec") or {}).items() if k != "nodeName"}
    return {**pod, "spec": spec}


async def explain_pod(client: ApiClient, namespace: str, name: str) -> str:
    """The text of `mkp explain schedule POD`: every node's filter verdicts and scores for
    the pod against the cluster now (a bound pod is evaluated as if it were pending)."""
    pod = await client.get(PODS, name, namespace)
    snapshot = await read_snapshot(client, leave_out=f"{namespace}/{name}")
    result = default_framework().schedule(as_unscheduled(pod), snapshot, explain=True)
    lines = [format_explanation(result)]
    node = node_name_of(pod)
    if node:
        lines.append(f"Currently bound to node {node} (evaluated above as if it were not scheduled yet).")
    elif scheduler_name_of(pod) != DEFAULT_SCHEDULER_NAME:
        lines.append(f"Note: spec.schedulerName is {scheduler_name_of(pod)!r}; "
                     f"{DEFAULT_SCHEDULER_NAME} leaves this pod to that scheduler.")
    return "\n".join(lines)


# -- the process ---------------------------------------------------------------------------------
def make_client(kubeconfig: str | None, server: str | None) -> ApiClient:
    """A client as kube-scheduler; `server` overrides the kubeconfig's (--master)."""
    return client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)


async def serve(client: ApiClient, leader_elect: bool) -> None:
    """Run until SIGTERM/SIGINT (then stop cleanly) or until the scheduler ends."""
    await run_until_signalled(client, lambda: run_scheduler(client, leader_elect=leader_elect), "scheduler")


def main(kubeconfig: str | None, server: str | None, leader_elect: bool) -> None:
    """Entry point of `mkp scheduler` (blocks until stopped; exit 1 on a lost Lease)."""
    import uvloop

    setup_process()
    try:
        client = make_client(kubeconfig, server)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    try:
        uvloop.run(serve(client, leader_elect))
    except LeaderElectionLost as exc:
        log.error("%s; exiting", exc)
        sys.exit(1)
