"""The scheduling loop: pending pods in, bindings and events out (schedule_one.go).

One `Scheduler` owns a SchedulingQueue, a SchedulerCache and the framework:

- Informers feed both. Unassigned, unfinished pods whose spec.schedulerName is ours go
  into the queue (other schedulers' pods are ignored entirely, pods with
  spec.schedulingGates wait outside it until the gates are gone); a pod that gets bound
  (by us or by anyone else) or deleted leaves it. Every change the cache absorbs
  (node added or updated, assigned pod deleted, PVC added ...) is a ClusterEvent that
  moves the unschedulable pods it may help back to the queue, per the plugins'
  EventsToRegister; nothing waits for the 5-minute flush unless nothing happened.
- Each cycle pops one pod and runs the framework on the cache's snapshot, synchronously.
  On success the pod is assumed on the chosen node (so the next cycle already counts
  it) and bound in a background task through `pods/<name>/binding`; when that returns,
  the Normal `Scheduled` event "Successfully assigned <ns>/<pod> to <node>" is recorded.
  A failed binding forgets the assumed pod and is handled like a failed cycle.
  A pod with unbound WaitForFirstConsumer claims first has them bound (VolumeBinding's
  Reserve and PreBind, see volumes.py): selected-node set or a PV chosen, then the
  binding task waits, through the cache, until the claims are bound.
- On failure (handleSchedulingFailure): if the pod still exists and is still unbound,
  it goes back to the queue (unschedulablePods when plugins rejected it, else backoffQ),
  a Warning `FailedScheduling` event carries the FitError message cut to 1024 bytes,
  and the pod's PodScheduled condition becomes False with reason Unschedulable (or
  SchedulerError for errors) and the whole message, patched through `pods/status`.
  A pod already bound or gone gets neither: there is nothing left to report on.
- The loop never sleeps inside a cycle. When no pod is ready it waits for a queue
  change or for the queue's next backoff/flush wakeup, on the injectable clock.
  Between cycles it yields one event-loop turn, so informers, bindings and Event
  writes (spread over several writers, see `EventRecorders`) keep pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Set
from dataclasses import dataclass
from typing import Any

import aiohttp

from controllers.scheduler.cache import SchedulerCache, is_terminal, node_name_of, unwrap
from controllers.scheduler.fit_error import truncate_message
from controllers.scheduler.framework import ClusterEvent, Framework, ScheduleResult
from controllers.scheduler.nodeinfo import NodeInfo
from controllers.scheduler.plugins import VolumeBinding, default_framework
from controllers.scheduler.plugins.volumebinding import pv_node_affinity_matches
from controllers.scheduler.queue import QueuedPodInfo, SchedulingQueue
from controllers.scheduler.volumes import DEFAULT_BIND_TIMEOUT, PodVolumes, VolumeBinder, VolumeBindingError
from minikube_py.client import (
    NORMAL,
    PODS,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    DeletedFinalStateUnknown,
    EventRecorder,
    RealClock,
    SharedInformerFactory,
    split_key,
)

log = logging.getLogger("controllers.scheduler.loop")

Obj = Mapping[str, Any]
DEFAULT_SCHEDULER_NAME = "default-scheduler"
SCHEDULED = "Scheduled"
FAILED_SCHEDULING = "FailedScheduling"
REASON_UNSCHEDULABLE = "Unschedulable"  # v1.PodReasonUnschedulable
REASON_SCHEDULER_ERROR = "SchedulerError"  # v1.PodReasonSchedulerError
ASSIGNED_POD_DELETE = ClusterEvent("Pod", "Delete")
VOLUME_RESOURCES = frozenset({"PersistentVolumeClaim", "PersistentVolume", "Node"})
EVENT_WRITERS = 8


def scheduler_name_of(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME


def pod_scheduled_false_patch(pod: Obj, reason: str, message: str, now: str) -> dict[str, Any] | None:
    """The pods/status strategic merge patch setting PodScheduled=False, or None when the
    condition already says exactly that (podutil.UpdatePodCondition). The transition
    time moves only when the status changes."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    existing = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    if existing is not None and existing.get("status") == "False":
        if existing.get("reason") == reason and existing.get("message") == message:
            return None
        now = existing.get("lastTransitionTime") or now
    condition = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                 "lastProbeTime": None, "lastTransitionTime": now}
    return {"status": {"conditions": [condition]}}


class EventRecorders:
    """EventRecorders sharing the writing of one component's Events, each pod always
    on the same one (so count aggregation still sees all of a pod's Events).

    One EventRecorder writes one Event at a time, and every write needs several turns
    of the event loop; between two CPU-bound cycles the loop turns once, so with
    hundreds of nodes a single writer falls behind one Event per pod and its queue
    overflows (Scheduled events get dropped). Several writers keep pace."""

    def __init__(self, client: ApiClient, component: str, *, clock: Clock, writers: int = EVENT_WRITERS) -> None:
        self.recorders = [EventRecorder(client, component, clock=clock) for _ in range(writers)]

    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        shard = hash((meta.get("namespace"), meta.get("name"))) % len(self.recorders)
        self.recorders[shard].event(dict(obj), event_type, reason, message)

    @property
    def dropped(self) -> int:
        return sum(r.dropped for r in self.recorders)

    async def flush(self) -> None:
        await asyncio.gather(*(r.flush() for r in self.recorders))

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.recorders))


@dataclass
class LoopStats:
    """Counters of what the loop did (for logs, benchmarks and tests)."""

    cycles: int = 0
    bound: int = 0
    unschedulable: int = 0
    errors: int = 0


class Scheduler:
    """One scheduler profile (`scheduler_name`) on a shared informer factory."""

    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 scheduler_name: str = DEFAULT_SCHEDULER_NAME, clock: Clock | None = None,
                 framework: Framework | None = None, event_writers: int = EVENT_WRITERS,
                 bind_timeout: float = DEFAULT_BIND_TIMEOUT) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.clock = clock or RealClock()
        self.framework = framework or default_framework()
        self.recorder = EventRecorders(client, scheduler_name, clock=self.clock, writers=event_writers)
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(self.clock, cluster_event_map=self.framework.cluster_event_map())
        self.stats = LoopStats()
        self.pods = factory.informer(PODS)
        self.cache.connect(factory, self.on_cluster_event)
        self.pods.add_event_handler(on_add=self.pod_added, on_update=self.pod_updated,
                                    on_delete=self.pod_deleted)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.volume_binding = next((p for p in self.framework.plugins if isinstance(p, VolumeBinding)), None)
        self.binder = VolumeBinder(
            client, self.clock, pvcs=lambda key: self.cache.get_object("pvcs", key),
            pvs=lambda name: self.cache.get_object("pvs", name), nodes=self.cache.get_node,
            pod_exists=self._pod_exists, node_affinity_matches=pv_node_affinity_matches, bind_timeout=bind_timeout)

    def _pod_exists(self, key: str) -> bool:
        namespace, name = split_key(key)
        return self.pods.lister.get(name, namespace) is not None

    # -- informer side --------------------------------------------------------------------------
    def responsible_for(self, pod: Obj) -> bool:
        return scheduler_name_of(pod) == self.scheduler_name

    def _wanted(self, pod: Obj) -> bool:
        """Should this unassigned pod be in our queue? Not when finished, another
        scheduler's, or gated: spec.schedulingGates keep it out until they are all
        removed (the SchedulingGates PreEnqueue plugin)."""
        spec = pod.get("spec") or {}
        return not is_terminal(pod) and self.responsible_for(pod) and not spec.get("schedulingGates")

    def pod_added(self, pod: Obj) -> None:
        if node_name_of(pod) or not self._wanted(pod):
            return
        self.queue.add(pod)
        self._wake.set()

    def pod_updated(self, old: Obj, new: Obj) -> None:
        if node_name_of(new):
            if not node_name_of(old):
                self.queue.delete(new)  # bound, by us or by someone else
            return
        if not self._wanted(new):
            self.queue.delete(new)
            return
        self.queue.update(old, new)
        self._wake.set()

    def pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = unwrap(obj)
        if not node_name_of(pod):
            self.queue.delete(pod)
            self.binder.notify()  # a binding waiting for its volumes stops for a deleted pod

    def on_cluster_event(self, event: ClusterEvent) -> None:
        """Move the unschedulable pods `event` may help (MoveAllToActiveOrBackoffQueue);
        wake bindings waiting for their claims when claims or volumes change."""
        if event.resource in VOLUME_RESOURCES:
            self.binder.notify()
        if self.queue.move_all_to_active_or_backoff(event):
            self._wake.set()

    # -- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Schedule pods until cancelled (call once the informers have synced)."""
        log.info("%s: scheduling loop started", self.scheduler_name)
        try:
            while True:
                info = self.queue.pop()
                if info is None:
                    await self._wait_for_work()
                    continue
                self.schedule_one(info)
                await asyncio.sleep(0)  # let informers, bindings and events run between cycles
        finally:
            await self._cancel_background()

    async def _wait_for_work(self) -> None:
        """Until the queue changes or its next backoff/flush time comes (clock time)."""
        self._wake.clear()  # nothing ran since pop() found no pod, so no wakeup is lost
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
        delay = self.queue.next_wakeup()
        if delay is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def schedule_one(self, info: QueuedPodInfo) -> None:
        """One scheduling cycle for a popped pod (ScheduleOne)."""
        pod, key = info.pod, info.key
        self.stats.cycles += 1
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.recorder.event(pod, WARNING, FAILED_SCHEDULING, f"skip schedule deleting pod: {key}")
            self.queue.done(key)
            return
        if self.cache.node_of(key) is not None:
            self.queue.done(key)  # already assumed: an update re-queued it meanwhile
            return
        cycle = self.queue.scheduling_cycle
        snapshot = self.cache.snapshot()
        result = self.framework.schedule(pod, snapshot)
        if result.scheduled:
            node = result.suggested_host or ""
            self._assume_and_bind(info, node, self._reserve_volumes(result, snapshot.get(node)))
        else:
            self._cycle_failed(info, cycle, result)

    # -- success: assume, then bind in the background -------------------------------------------
    def _reserve_volumes(self, result: ScheduleResult, node: NodeInfo | None) -> PodVolumes | None:
        """VolumeBinding's Reserve: decide and assume the pod's claim bindings on `node`."""
        if self.volume_binding is None or result.state is None or node is None:
            return None
        volumes = self.volume_binding.find_pod_volumes(result.state, node)
        if volumes:
            self.cache.assume_pod_volumes(volumes)
        return volumes or None

    def _assume_and_bind(self, info: QueuedPodInfo, node: str, volumes: PodVolumes | None = None) -> None:
        self.cache.assume_pod(info.pod, node)
        self.queue.done(info.key)
        self._spawn(self._bind(info, node, volumes), f"bind {info.key}")

    async def _bind(self, info: QueuedPodInfo, node: str, volumes: PodVolumes | None = None) -> None:
        """The binding cycle: PreBind (volumes), then Bind (pods/binding)."""
        namespace, name = split_key(info.key)
        uid = (info.pod.get("metadata") or {}).get("uid")
        try:
            if volumes:
                await self.binder.bind_pod_volumes(info.key, volumes)
            await self.client.bind(namespace, name, node, pod_uid=uid)
        except (ApiError, VolumeBindingError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            if volumes:
                self.cache.revert_pod_volumes(volumes)
            self._binding_failed(info, node, exc)
            return
        self.cache.finish_binding(info.key)
        self.stats.bound += 1
        log.debug("bound %s to %s", info.key, node)
        self.recorder.event(info.pod, NORMAL, SCHEDULED, f"Successfully assigned {info.key} to {node}")

    def _binding_failed(self, info: QueuedPodInfo, node: str, exc: BaseException) -> None:
        log.info("binding %s to %s failed: %s", info.key, node, exc)
        if self.cache.forget_pod(info.key):
            # Its requests were counted on the node: other pods may fit now.
            self.on_cluster_event(ASSIGNED_POD_DELETE)
        message = exc.message if isinstance(exc, ApiError | VolumeBindingError) else f"{type(exc).__name__}: {exc}"
        self._record_failure(info, self.queue.scheduling_cycle, message, REASON_SCHEDULER_ERROR, frozenset())

    # -- failure ------------------------------------------------------------------------------
    def _cycle_failed(self, info: QueuedPodInfo, cycle: int, result: ScheduleResult) -> None:
        error = result.error
        reason = REASON_UNSCHEDULABLE if error is None or error.is_rejected() else REASON_SCHEDULER_ERROR
        plugins = frozenset(p for p in result.diagnosis.unschedulable_plugins if p) if error is None else frozenset()
        self._record_failure(info, cycle, result.message(), reason, plugins)

    def _record_failure(self, info: QueuedPodInfo, cycle: int, message: str, reason: str,
                        plugins: Set[str]) -> None:
        """handleSchedulingFailure: requeue, FailedScheduling event, PodScheduled=False."""
        namespace, name = split_key(info.key)
        current = self.pods.lister.get(name, namespace)
        if current is None or node_name_of(current):
            log.info("pod %s is gone or bound already; not requeued", info.key)
            self.queue.done(info.key)
            return
        info.pod = current
        self.queue.add_unschedulable_if_not_present(info, cycle, unschedulable_plugins=plugins)
        if reason == REASON_UNSCHEDULABLE:
            self.stats.unschedulable += 1
        else:
            self.stats.errors += 1
        log.info("unable to schedule %s: %s", info.key, message)
        self.recorder.event(current, WARNING, FAILED_SCHEDULING, truncate_message(message))
        patch = pod_scheduled_false_patch(current, reason, message, _rfc3339(self.clock))
        if patch is not None:
            self._spawn(self._patch_status(namespace, name, patch), f"condition {info.key}")

    async def _patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        try:
            await self.client.patch(PODS, name, patch, namespace, patch_type="strategic", subresource="status")
        except ApiError as exc:
            if not exc.is_not_found():
                log.warning("updating the PodScheduled condition of %s/%s: %s", namespace, name, exc)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("updating the PodScheduled condition of %s/%s: %s", namespace, name, exc)

    # -- background tasks -----------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def wait_for_bindings(self) -> None:
        """Wait until every binding and condition update started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _cancel_background(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop background work and flush recorded events."""
        await self._cancel_background()
        await self.recorder.close()


def _rfc3339(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
