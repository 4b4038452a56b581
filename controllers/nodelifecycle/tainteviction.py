"""The taint-eviction controller (pkg/controller/tainteviction, 1.32's "taint manager").

Informers (shared): Pods (indexed by spec.nodeName) and Nodes. Keys: `namespace/name` of
pods. A pod added or updated enqueues itself; a Node whose NoExecute taints changed (or
that went away) enqueues every pod on it.

One sync of a pod: the NoExecute taints of its node against its tolerations.
- no NoExecute taint: a scheduled eviction is cancelled ("Cancelling deletion of Pod ns/name");
- a taint it does not tolerate: deleted now;
- all tolerated, some with tolerationSeconds: deleted once the shortest one has passed
  since the eviction was first scheduled (the sync asks to run again then);
- tolerated forever: nothing (a scheduled eviction is cancelled).
Deleting first sets the pod's DisruptionTarget condition (reason DeletionByTaintManager,
"Taint manager: deleting due to NoExecute taint") and records TaintManagerEviction
"Marking for deletion Pod ns/name". Pods already being deleted are left alone.
The schedule lives in memory (Kubernetes' TimedWorkerQueue): a restart starts it over.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from controllers.common import objects
from controllers.nodelifecycle.controller import PODS_BY_NODE, ensure_pod_node_index
from controllers.nodelifecycle.taints import matching_tolerations, min_toleration_seconds, no_execute_taints
from minikube_py.client import (
    NODES,
    NORMAL,
    PODS,
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
    split_key,
)

log = logging.getLogger("controllers.tainteviction")

Obj = dict[str, Any]
REASON = "TaintManagerEviction"
DISRUPTION_TARGET = "DisruptionTarget"


class TaintEvictionController:
    """Deletes pods from nodes with NoExecute taints they do not tolerate (module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.pods = ensure_pod_node_index(informers)
        self.nodes = informers.informer(NODES)
        self.scheduled: dict[str, datetime] = {}  # pod key -> when its eviction was scheduled
        self.queue: WorkQueue[str] = WorkQueue("taint-eviction", clock=self.clock)
        self.pods.add_event_handler(EventHandler(
            on_add=self._pod_changed, on_update=lambda old, new: self._pod_changed(new), on_delete=self._pod_deleted))
        self.nodes.add_event_handler(EventHandler(
            on_add=self._node_changed, on_update=self._node_updated, on_delete=self._node_changed))
        self.controller = Controller("taint-eviction", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.pods, self.nodes])

    async def run(self) -> None:
        await self.controller.run()

    # -- event handlers -----------------------------------------------------------------

    def _pod_changed(self, pod: Obj) -> None:
        if objects.spec(pod).get("nodeName") or key_of(pod) in self.scheduled:
            self.queue.add(key_of(pod))

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(obj))

    def _node_changed(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        node = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for pod in self.pods.lister.by_index(PODS_BY_NODE, objects.name(node)):
            self.queue.add(key_of(pod))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            self._node_changed(new)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        pod = self.pods.lister.get(name, namespace)
        if pod is None or objects.being_deleted(pod):
            self.scheduled.pop(key, None)
            return None
        node = self.nodes.lister.get(objects.spec(pod).get("nodeName") or "")
        taints = no_execute_taints(node)
        if not taints:
            self._cancel(pod)
            return None
        used = matching_tolerations(taints, objects.spec(pod).get("tolerations") or [])
        now = self.clock.now()
        if used is None:
            await self.evict(pod)
            return None
        seconds = min_toleration_seconds(used)
        if seconds is None:
            self._cancel(pod)
            return None
        started = self.scheduled.setdefault(key, now)
        fire_at = started + timedelta(seconds=seconds)
        if now >= fire_at:
            await self.evict(pod)
            return None
        return Result(requeue_after=(fire_at - now).total_seconds())

    def _cancel(self, pod: Obj) -> None:
        if self.scheduled.pop(key_of(pod), None) is not None:
            self.recorder.event(pod, NORMAL, REASON, f"Cancelling deletion of Pod {key_of(pod)}")

    async def evict(self, pod: Obj) -> None:
        """addConditionAndDeletePod, then the TaintManagerEviction event."""
        key = key_of(pod)
        condition = {"type": DISRUPTION_TARGET, "status": "True", "reason": "DeletionByTaintManager",
                     "message": "Taint manager: deleting due to NoExecute taint",
                     "lastTransitionTime": objects.format_time(self.clock.now())}
        try:
            await self.client.patch(PODS, objects.name(pod), {"status": {"conditions": [condition]}},
                                    objects.namespace(pod), subresource="status", patch_type="strategic")
            await self.client.delete(PODS, objects.name(pod), objects.namespace(pod))
        except ApiError as exc:
            if exc.is_not_found():
                self.scheduled.pop(key, None)
                return
            raise
        self.scheduled.pop(key, None)
        self.recorder.event(pod, NORMAL, REASON, f"Marking for deletion Pod {key}")
        log.info("evicted pod %s from tainted node %s", key, objects.spec(pod).get("nodeName"))
