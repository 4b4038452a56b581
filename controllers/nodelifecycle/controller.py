"""The node lifecycle controller on the client runtime (pkg/controller/nodelifecycle).

Informers (shared): Nodes, Leases in kube-node-lease, Pods (indexed by spec.nodeName).
Keys: node names. A Node or its Lease changing enqueues the node; every sync asks to run
again when the node's grace period would run out (at most --node-monitor-period later),
which is Kubernetes' periodic monitorNodeHealth pass made per node.

One sync of a node (`reconcile`):
1. `health.observe`: did it show life since the last look (Ready heartbeat, Lease renewal)?
2. Past its grace period: Ready/MemoryPressure/DiskPressure/PIDPressure -> Unknown
   (PUT nodes/status). Ready going from True to not True here records NodeNotReady
   ("Node x status is now: NodeNotReady") and marks the node's pods Ready=False
   (MarkPodsNotReady; retried until it succeeds).
3. Taints: the NoSchedule taints its conditions imply, and the NoExecute
   not-ready/unreachable taint for Ready False/Unknown, removed when Ready is True again
   (one merge patch of spec.taints guarded by resourceVersion). The TaintEvictionController
   then deletes the pods that do not tolerate them.

Also as Kubernetes: RegisteredNode ("Node x event: Registered Node x in Controller") the
first time a node is seen, RemovingNode when it is gone.

New NoExecute taints go through the zones' rate limit and disruption states (zones.py):
with every zone fully disrupted nothing is tainted ("master disruption mode").
"""

from __future__ import annotations

import copy
import logging
from datetime import timedelta
from typing import Any

from controllers.common import objects, pods
from controllers.nodelifecycle import health, taints
from controllers.nodelifecycle.config import NodeLifecycleConfig
from controllers.nodelifecycle.zones import TaintRateLimiter, ZoneTracker, zone_of
from minikube_py.client import (
    LEASES,
    NODES,
    NORMAL,
    PODS,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    key_of,
)

log = logging.getLogger("controllers.nodelifecycle")

Obj = dict[str, Any]
NODE_LEASE_NAMESPACE = "kube-node-lease"
PODS_BY_NODE = "pods/by-node-name"
MIN_REQUEUE = 0.05


def pod_node_index(pod: Obj) -> list[str]:
    node = objects.spec(pod).get("nodeName")
    return [node] if node else []


def ensure_pod_node_index(informers: SharedInformerFactory) -> Any:
    informer = informers.informer(PODS)
    if not informer.store.has_indexer(PODS_BY_NODE):
        informer.add_indexer(PODS_BY_NODE, pod_node_index)
    return informer


def node_event_ref(node: Obj) -> Obj:
    """Kubernetes records node events with the node's name as the reference uid."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": objects.name(node),
                                                            "uid": objects.name(node)}}


class NodeLifecycleController:
    """Turns missing heartbeats into Unknown conditions and taints (module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 1, clock: Clock | None = None, config: NodeLifecycleConfig | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.config = config or NodeLifecycleConfig()
        self.nodes = informers.informer(NODES)
        self.leases = informers.informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods = ensure_pod_node_index(informers)
        self.health: dict[str, health.NodeHealth] = {}
        self.pods_to_mark: set[str] = set()  # nodes whose MarkPodsNotReady must be retried
        self.zones = ZoneTracker()
        self.limiter = TaintRateLimiter(self.clock)
        self.master_disruption = False
        self.queue: WorkQueue[str] = WorkQueue("node-lifecycle", clock=self.clock)
        self.nodes.add_event_handler(EventHandler(
            on_add=self._node_seen, on_update=lambda old, new: self._node_seen(new), on_delete=self._node_gone))
        self.leases.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new), on_delete=self._enqueue))
        self.controller = Controller("node-lifecycle", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.nodes, self.leases, self.pods])

    async def run(self) -> None:
        await self.controller.run()

    def _node_seen(self, node: Obj) -> None:
        self.zones.set(node)
        self._enqueue(node)

    def _node_gone(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.zones.remove(objects.name(obj))
        self._enqueue(obj)

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.queue.add(objects.name(obj))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, name: str) -> Result | None:
        node = self.nodes.lister.get(name)
        if node is None:
            if self.health.pop(name, None) is not None:
                self.recorder.event(node_event_ref({"metadata": {"name": name}}), NORMAL, "RemovingNode",
                                    f"Node {name} event: Removing Node {name} from Controller")
            self.pods_to_mark.discard(name)
            return None
        now = self.clock.now()
        saved = self.health.get(name)
        if saved is None:
            self.recorder.event(node_event_ref(node), NORMAL, "RegisteredNode",
                                f"Node {name} event: Registered Node {name} in Controller")
        record = health.observe(node, self.leases.lister.get(name, NODE_LEASE_NAMESPACE), saved, now)
        self.health[name] = record
        observed_ready = health.ready_status(node)
        cfg = self.config
        if health.expired(record, node, now, cfg.node_monitor_grace_period, cfg.node_startup_grace_period):
            status = health.unknown_status(node, now)
            if status != objects.status(node):
                body = copy.deepcopy(node)
                body["status"] = status
                node = await self.client.update_status(NODES, body)
                record.ready = copy.deepcopy(health.condition(node, "Ready"))
                self.zones.set(node)
        current_ready = health.ready_status(node)
        if current_ready != "True" and observed_ready == "True":
            self.recorder.event(node_event_ref(node), NORMAL, "NodeNotReady",
                                f"Node {name} status is now: NodeNotReady")
            self.pods_to_mark.add(name)
        if current_ready == "True":
            self.pods_to_mark.discard(name)
        if name in self.pods_to_mark:
            await self.mark_pods_not_ready(name)
            self.pods_to_mark.discard(name)
        delay = self._next_check(node, record)
        wait = await self.update_taints(node)
        delay = min(delay, wait)
        log.debug("node %s at %s: Ready %s -> %s, seen alive %s, next check in %.2fs", name,
                  objects.format_time(now), observed_ready, current_ready, objects.format_time(record.probe_time),
                  delay)
        return Result(requeue_after=delay)

    def _next_check(self, node: Obj, record: health.NodeHealth) -> float:
        cfg = self.config
        grace = health.grace_period(node, cfg.node_monitor_grace_period, cfg.node_startup_grace_period)
        deadline = record.probe_time + timedelta(seconds=grace)
        remaining = (deadline - self.clock.now()).total_seconds()
        if remaining < 0:
            return cfg.node_monitor_period  # already past: nothing changes until it shows life
        return min(cfg.node_monitor_period, remaining + MIN_REQUEUE)  # just after the deadline

    async def mark_pods_not_ready(self, node_name: str) -> None:
        """MarkPodsNotReady: every pod on the node gets Ready=False (a status update each) and
    a Warning NodeNotReady "Node is not ready" event."""
        errors: list[Exception] = []
        stamp = objects.format_time(self.clock.now())
        for pod in self.pods.lister.by_index(PODS_BY_NODE, node_name):
            condition = pods.ready_condition(pod)
            if condition is None or condition.get("status") == "False":
                continue
            body = copy.deepcopy(pod)
            for cond in body["status"]["conditions"]:
                if cond.get("type") == "Ready":
                    cond.update({"status": "False", "lastTransitionTime": stamp})
            try:
                await self.client.update_status(PODS, body, objects.namespace(pod))
            except ApiError as exc:
                if not exc.is_not_found():
                    errors.append(exc)
                continue
            # After the update, as Kubernetes: the pod still exists.
            self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready")
        if errors:
            raise errors[0]

    def _no_execute_mode(self, node: Obj) -> tuple[str, float]:
        """How NoExecute taints may change now ("allow" / "hold" / "lift") and, when
        held back by the zone's rate limit, how long until the next try."""
        zones = self.zones.zones(self.config.disruption.unhealthy_zone_threshold)
        master = zones.master_disruption()
        if master != self.master_disruption:
            self.master_disruption = master
            log.warning("Controller detected that all Nodes are not-Ready. Entering master disruption mode" if master
                        else "Controller detected that some Nodes are Ready. Exiting master disruption mode")
        if master:
            return "lift", self.config.node_monitor_period
        key = taints.no_execute_taint_key(node)
        if key is None or taints.has_taint(node, key, "NoExecute"):
            return "allow", self.config.node_monitor_period
        zone = zone_of(node)
        wait = self.limiter.try_accept(zone, zones.rate(zone, self.config.disruption))
        if wait:
            return "hold", min(wait, self.config.node_monitor_period)
        return "allow", self.config.node_monitor_period

    async def update_taints(self, node: Obj) -> float:
        """Patch spec.taints when they differ from what the node's state implies; returns
        how soon to look again for taints held back by the rate limit."""
        mode, wait = self._no_execute_mode(node)
        wanted = taints.desired_taints(node, self.clock.now(), mode)
        if taints.same_taints(wanted, objects.spec(node).get("taints") or []):
            return wait
        patch = {"metadata": {"resourceVersion": objects.metadata(node).get("resourceVersion")},
                 "spec": {"taints": wanted or None}}
        await self.client.patch(NODES, objects.name(node), patch)
        log.info("node %s: taints now %s", key_of(node),
                 ", ".join(f"{t['key']}:{t['effect']}" for t in wanted) or "(none)")
        return wait
