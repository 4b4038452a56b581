"""The node half of fake nodes: register each Node, keep its status and its Lease fresh.

One reconciler serves every fake node of the process, keyed by node name, on the shared
runtime (informer on Nodes, work queue, Controller). `reconcile(name)`:

1. registers the Node if it does not exist (or adopts the one that does, as a kubelet
   that restarts: its pod CIDR and address are kept, missing default labels restored);
2. renews the node's Lease when its heartbeat is due (every `heartbeat` seconds,
   jittered by up to 4% as the kubelet's lease controller is);
3. patches nodes/<name>/status when a condition is not the healthy one (say the node
   lifecycle controller set Ready=Unknown while this process was down), when a field
   such as capacity differs, or when the periodic report is due;
4. asks to be called again when the next of those is due (`requeue_after`).

Timers run on the injectable clock, so tests drive heartbeats with a FakeClock. A failed
call (API server down, a conflict twice over) raises; the work queue retries the node
after 0.2 s, doubling up to 7 s, as the kubelet's lease controller backs off.

Load: per node one Lease write per heartbeat and one status write per report period,
as real kubelets cost. After registration the first renewals are spread at random over
half a period, so hundreds of nodes do not renew in the same instant.

A Node deleted while this process runs is not registered again (the kubelet does not
either); restarting the process registers it anew.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelet.fake import ipam, nodestatus
from kubelet.fake.config import COMPONENT, FIELD_MANAGER, NODE_LEASE_NAMESPACE, FakeNodeConfig
from minikube_py.client import (
    LEASES,
    NODES,
    NORMAL,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    Informer,
    ItemExponentialFailureRateLimiter,
    Result,
    WorkQueue,
    key_of,
)

log = logging.getLogger("kubelet.fake.nodes")

Obj = dict[str, Any]
JITTER = 0.04  # the kubelet's lease controller: wait.JitterUntil(..., 0.04, ...)


@dataclass
class NodeHandle:
    """What this process knows about one of its nodes; shared with the pod half."""

    name: str
    pool: ipam.PodIPPool = field(default_factory=ipam.PodIPPool)
    recorder: EventRecorder | None = None
    node: Obj | None = None  # newest Node object we wrote or read
    internal_ip: str | None = None
    registered: bool = False
    deleted: bool = False
    lease: Obj | None = None
    lease_due: float | None = None  # clock.monotonic() of the next renewal (None: at once)
    status_due: float | None = None  # ... of the next periodic status report (None: not set)
    last_unschedulable: bool = False  # spec.unschedulable last seen (the kubelet starts from False)

    @property
    def ready(self) -> bool:
        """Registered, addressed, and not deleted: its pods can run."""
        return self.registered and not self.deleted and self.internal_ip is not None

    @property
    def uid(self) -> str | None:
        return ((self.node or {}).get("metadata") or {}).get("uid")


def revision(obj: Obj | None) -> int:
    """An object's resourceVersion as a number (mkp's are store revisions; 0 if none)."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def newest(a: Obj | None, b: Obj | None) -> Obj | None:
    """The later of two versions of one object (mkp's resourceVersions are revisions)."""
    if a is None or b is None:
        return a or b
    if (a.get("metadata") or {}).get("uid") != (b.get("metadata") or {}).get("uid"):
        return a
    return a if revision(a) >= revision(b) else b


class NodeAgent:
    """Registers, heartbeats and reports the status of a set of fake nodes."""

    def __init__(self, client: ApiClient, names: Iterable[str], *, config: FakeNodeConfig, clock: Clock,
                 informer: Informer, on_ready: Callable[[str], None] = lambda name: None,
                 profile: nodestatus.NodeProfile = nodestatus.FAKE) -> None:
        self.client = client
        self.config = config
        self.profile = profile
        self.clock = clock
        self.informer = informer
        self.on_ready = on_ready
        self.handles: dict[str, NodeHandle] = {}
        for name in names:
            recorder = EventRecorder(client, COMPONENT, name, clock=clock) if config.record_events else None
            self.handles[name] = NodeHandle(name, recorder=recorder)
        # A failed heartbeat is retried soon, never later than the kubelet would (7 s).
        self.queue: WorkQueue[str] = WorkQueue("fake-nodes", clock=clock,
                                               rate_limiter=ItemExponentialFailureRateLimiter(0.2, 7.0))
        self._all_ready = asyncio.Event()
        informer.add_event_handler(EventHandler(self._on_change, lambda old, new: self._on_change(new),
                                                self._on_delete))

    # -- wiring -----------------------------------------------------------------------

    def controller(self) -> Controller:
        return Controller("fake-nodes", self.queue, self.reconcile, workers=self.config.node_workers,
                          wait_for=[self.informer])

    def enqueue_all(self) -> None:
        for name in self.handles:
            self.queue.add(name)

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait (real seconds) until every node is registered; False on timeout."""
        try:
            await asyncio.wait_for(self._all_ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _on_change(self, node: Obj) -> None:
        name = key_of(node)
        if name in self.handles:
            self.queue.add(name)

    def _on_delete(self, node: Obj | DeletedFinalStateUnknown) -> None:
        handle = self.handles.get(key_of(node))
        if handle is not None and handle.registered and not handle.deleted:
            log.warning("node %s was deleted; it stays deleted until this process restarts", handle.name)
            handle.deleted = True

    # -- reconcile --------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result | None:
        handle = self.handles.get(name)
        if handle is None or handle.deleted:
            return None
        node = newest(self.informer.lister.get(name), handle.node)
        fresh = False
        if node is None:
            node, fresh = await self._register(handle)
        if not handle.registered:
            await self._adopt(handle, node, fresh=fresh)
        mono = self.clock.monotonic()
        await self._heartbeat(handle, mono)
        await self._report(handle, newest(node, handle.node) or node, mono)
        self._record_schedulable(handle, newest(node, handle.node) or node)
        assert handle.lease_due is not None and handle.status_due is not None
        return Result(requeue_after=max(min(handle.lease_due, handle.status_due) - mono, 0.001))

    async def _heartbeat(self, handle: NodeHandle, mono: float) -> None:
        """Renew the Lease if it is due."""
        if handle.lease_due is not None and mono < handle.lease_due:
            return
        first = handle.lease_due is None
        await self._renew_lease(handle)
        handle.lease_due = mono + self._interval(self.config.heartbeat, first=first)

    async def _report(self, handle: NodeHandle, node: Obj, mono: float) -> None:
        """Patch the node's status if it differs from ours or a report is due."""
        first = handle.status_due is None
        due = handle.status_due is not None and mono >= handle.status_due
        patch = nodestatus.status_patch(node, self._static(handle), self.clock.now(), report_due=due)
        if patch is not None:
            handle.node = await self.client.patch(NODES, handle.name, patch, patch_type="strategic",
                                                  subresource="status", field_manager=FIELD_MANAGER)
            for reason in nodestatus.transitions((node.get("status") or {}).get("conditions")):
                self._event(handle, reason, f"Node {handle.name} status is now: {reason}")
        if patch is not None or first:
            handle.status_due = mono + self._interval(self.config.status_report_frequency, first=first)

    def _record_schedulable(self, handle: NodeHandle, node: Obj) -> None:
        """recordNodeSchedulableEvent: `kubectl cordon`/`uncordon` show up on the Node as
        NodeNotSchedulable / NodeSchedulable from the kubelet."""
        unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        if unschedulable != handle.last_unschedulable:
            reason = "NodeNotSchedulable" if unschedulable else "NodeSchedulable"
            self._event(handle, reason, f"Node {handle.name} status is now: {reason}")
            handle.last_unschedulable = unschedulable

    def _event(self, handle: NodeHandle, reason: str, message: str) -> None:
        """An Event about the Node, referenced as the kubelet does (uid = node name)."""
        if handle.recorder is not None:
            ref = {"kind": "Node", "name": handle.name, "uid": handle.name}
            handle.recorder.event(ref, NORMAL, reason, message)

    def _interval(self, period: float, *, first: bool) -> float:
        if first:  # spread the nodes of one process over the period
            return period * random.uniform(0.5, 1.0)
        return period * (1 + random.random() * JITTER)

    def _static(self, handle: NodeHandle) -> Obj:
        assert handle.internal_ip is not None
        return nodestatus.static_status(handle.name, handle.internal_ip, self.config, self.profile)

    # -- registration ---------------------------------------------------------------

    def _used_cidrs(self) -> list[str]:
        cidrs = [(n.get("spec") or {}).get("podCIDR") or "" for n in self.informer.lister.list()]
        return cidrs + [h.pool.cidr for h in self.handles.values() if h.pool.cidr]

    async def _register(self, handle: NodeHandle) -> tuple[Obj, bool]:
        """Create the Node; if someone created it meanwhile, read that one instead.
        Returns the Node and whether we created it."""
        # Choose and claim the CIDR before the first await: registrations run concurrently.
        index = ipam.free_index(self._used_cidrs())
        cidr = self.profile.pod_cidr or self.profile.cidr_for_index(index)
        handle.pool.set_cidr(cidr)
        internal_ip = self.profile.node_ip or ipam.node_ip_for_index(index)
        body = nodestatus.registration(handle.name, pod_cidr=cidr, internal_ip=internal_ip,
                                       config=self.config, now=self.clock.now(), profile=self.profile)
        try:
            handle.node = await self.client.create(NODES, body, field_manager=FIELD_MANAGER)
            log.info("registered node %s (pod CIDR %s)", handle.name, cidr)
            return handle.node, True
        except ApiError as exc:
            if not exc.is_already_exists():
                handle.pool.cidr = None  # not ours after all
                raise
        handle.node = await self.client.get(NODES, handle.name)
        return handle.node, False

    async def _adopt(self, handle: NodeHandle, node: Obj, *, fresh: bool) -> None:
        """Take over the Node (just registered, or there before): its pod CIDR and
        InternalIP, our default labels; the kubelet's start-up events."""
        handle.node = node
        spec = node.get("spec") or {}
        cidr = spec.get("podCIDR")
        if not cidr:
            cidr = self.profile.pod_cidr or self.profile.cidr_for_index(ipam.free_index(self._used_cidrs()))
            handle.node = await self.client.patch(NODES, handle.name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                                                  field_manager=FIELD_MANAGER)
        handle.pool.set_cidr(cidr)
        handle.internal_ip = self._internal_ip(node, cidr)
        labels = nodestatus.node_labels(handle.name, self.config.architecture, self.profile)
        current = (node.get("metadata") or {}).get("labels") or {}
        if any(current.get(k) != v for k, v in labels.items()):
            handle.node = await self.client.patch(NODES, handle.name, {"metadata": {"labels": labels}},
                                                  field_manager=FIELD_MANAGER)
        handle.registered = True
        self._event(handle, "Starting", "Starting kubelet.")
        self._event(handle, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
        for reason in nodestatus.transitions(None) if fresh else ():
            self._event(handle, reason, f"Node {handle.name} status is now: {reason}")
        self.on_ready(handle.name)
        if all(h.registered for h in self.handles.values()):
            self._all_ready.set()

    def _internal_ip(self, node: Obj, cidr: str) -> str:
        if self.profile.node_ip:
            return self.profile.node_ip
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and str(address.get("address", "")).startswith("127."):
                return str(address["address"])
        index = ipam.index_of_cidr(cidr)
        return ipam.node_ip_for_index(index if index is not None else ipam.free_index(self._used_cidrs()))

    # -- lease ----------------------------------------------------------------------

    async def _renew_lease(self, handle: NodeHandle) -> None:
        """Renew (or create) kube-node-lease/<name>: a PUT of the Lease as we last wrote
        it; on a conflict or a missing Lease, read it again and retry once."""
        for attempt in range(2):
            now = self.clock.now()
            try:
                if handle.lease is None:
                    handle.lease, created = await self._get_or_create_lease(handle)
                    if created:
                        return
                body = nodestatus.renewed(handle.lease, handle.name, handle.uid, now)
                handle.lease = await self.client.update(LEASES, body, field_manager=FIELD_MANAGER)
                return
            except ApiError as exc:
                if attempt or not (exc.is_conflict() or exc.is_not_found()):
                    raise
                handle.lease = None

    async def _get_or_create_lease(self, handle: NodeHandle) -> tuple[Obj, bool]:
        try:
            return await self.client.get(LEASES, handle.name, NODE_LEASE_NAMESPACE), False
        except ApiError as exc:
            if not exc.is_not_found():
                raise
        body = nodestatus.lease(handle.name, handle.uid, self.clock.now())
        return await self.client.create(LEASES, body, field_manager=FIELD_MANAGER), True
