"""The pod garbage collector (pkg/controller/podgc, kube-controller-manager's
pod-garbage-collector-controller).

Every 20 s (gcCheckPeriod) one pass over the pod and node caches:

- terminated pods (Succeeded/Failed) beyond `--terminated-pod-gc-threshold` (12500;
  0 disables) are deleted, evicted ones first, then oldest first;
- orphaned pods, bound to a node that no informer knows: the node is quarantined
  for 40 s, then checked with a live GET; if it is really gone the pod is marked
  Failed with the condition DisruptionTarget=True (reason DeletionByPodGC, message
  "PodGC: node no longer exists") and force-deleted (grace period 0);
- terminating pods that were never scheduled are marked Failed and force-deleted;
- terminating pods on a node that is not Ready and carries the
  `node.kubernetes.io/out-of-service` taint are marked Failed and force-deleted.

The pass is the reconcile of one fixed key that asks to be requeued after 20 s, so the
period runs on the injected clock.
"""

from __future__ import annotations

import logging
from typing import Any

from controllers.common import objects
from minikube_py.client import (
    NODES,
    PODS,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
)

log = logging.getLogger("controllers.podgc")
Obj = dict[str, Any]
GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
TERMINATED_POD_GC_THRESHOLD = 12500
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
KEY = "podgc"


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def terminated_to_delete(pods: list[Obj], threshold: int) -> list[Obj]:
    """The terminated pods over the threshold: evicted first, then oldest first."""
    if threshold <= 0:
        return []
    terminated = [p for p in pods if is_terminated(p)]
    excess = len(terminated) - threshold
    if excess <= 0:
        return []

    def order(pod: Obj) -> tuple[bool, Any, str]:
        evicted = (pod.get("status") or {}).get("reason") == "Evicted"
        return (not evicted, objects.creation_time(pod), objects.name(pod))

    return sorted(terminated, key=order)[:excess]


def out_of_service(node: Obj) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    not_ready = ready is None or ready.get("status") != "True"
    return not_ready and any(t.get("key") == OUT_OF_SERVICE_TAINT and t.get("effect") in ("NoExecute", "NoSchedule")
                             for t in taints)


class PodGCController:
    """Deletes pods nobody else will clean up (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 1, clock: Clock | None = None,
                 terminated_pod_gc_threshold: int = TERMINATED_POD_GC_THRESHOLD) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.threshold = terminated_pod_gc_threshold
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.queue: WorkQueue[str] = WorkQueue("podgc", clock=self.clock)
        self.quarantine: dict[str, float] = {}  # missing node -> when first missed (monotonic)
        self.controller = Controller("podgc", self.queue, self.reconcile, workers=1,
                                     wait_for=[self.pods, self.nodes])

    async def run(self) -> None:
        self.queue.add(KEY)
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        await self.gc()
        return Result(requeue_after=GC_CHECK_PERIOD)

    async def gc(self) -> None:
        """One pass (gcc.gc)."""
        pods = self.pods.lister.list()
        for pod in terminated_to_delete(pods, self.threshold):
            await self._fail_and_delete(pod, None)
        await self._gc_terminating_out_of_service(pods)
        await self._gc_orphaned(pods)
        for pod in pods:
            if objects.being_deleted(pod) and not objects.spec(pod).get("nodeName"):
                await self._fail_and_delete(pod, None)

    async def _gc_terminating_out_of_service(self, pods: list[Obj]) -> None:
        for pod in pods:
            node_name = objects.spec(pod).get("nodeName")
            if not objects.being_deleted(pod) or is_terminated(pod) or not node_name:
                continue
            node = self.nodes.lister.get(node_name)
            if node is not None and out_of_service(node):
                await self._fail_and_delete(pod, None)

    async def _gc_orphaned(self, pods: list[Obj]) -> None:
        known = {objects.name(n) for n in self.nodes.lister.list()}
        now = self.clock.monotonic()
        missing = {objects.spec(p).get("nodeName") for p in pods} - known - {None, ""}
        self.quarantine = {n: t for n, t in self.quarantine.items() if n in missing}
        deleted: set[str] = set()
        for node_name in sorted(missing):
            first = self.quarantine.setdefault(str(node_name), now)
            if now - first < QUARANTINE_TIME:
                continue
            if not await self._node_exists(str(node_name)):
                deleted.add(str(node_name))
        for pod in pods:
            if objects.spec(pod).get("nodeName") in deleted:
                condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                             "message": "PodGC: node no longer exists",
                             "lastTransitionTime": objects.format_time(self.clock.now())}
                await self._fail_and_delete(pod, condition)

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(NODES, name)
        except ApiError as exc:
            if exc.is_not_found():
                return False
            raise
        return True

    async def _fail_and_delete(self, pod: Obj, condition: Obj | None) -> None:
        """markFailedAndDeletePodWithCondition: phase Failed (+ condition), then delete
        with grace period 0."""
        name, namespace = objects.name(pod), objects.namespace(pod)
        log.info("PodGC is force deleting Pod %s/%s", namespace, name)
        try:
            if not is_terminated(pod):
                status: Obj = {"phase": "Failed"}
                if condition is not None:
                    others = [c for c in objects.status(pod).get("conditions") or [] if c.get("type") != condition["type"]]
                    status["conditions"] = [*others, condition]
                await self.client.patch(PODS, name, {"metadata": {"uid": objects.uid(pod)}, "status": status},
                                        namespace, subresource="status")
            await self.client.delete(PODS, name, namespace, grace_period_seconds=0,
                                     preconditions={"uid": objects.uid(pod)})
        except ApiError as exc:
            if not (exc.is_not_found() or exc.is_conflict()):
                raise
