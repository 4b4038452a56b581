"""The pod half of fake nodes: drive the pods bound to them, by status writes alone.

One informer watches every bound pod (field selector `spec.nodeName!=`), and handlers
keep only those on this process's nodes; a work queue of pod keys feeds `reconcile`:

    pod gone                      -> forget it, give its IP back
    node not registered yet       -> wait (node_ready() enqueues the node's pods)
    deletionTimestamp set         -> Killing events; a pod that has finalizers first gets
                                     a terminal status (containers exit 143); then
                                     DELETE with gracePeriodSeconds 0 and the uid as
                                     precondition, as the kubelet does once containers
                                     stopped
    Succeeded / Failed            -> nothing (the pod GC removes such pods)
    otherwise                     -> write the status podstatus.desired_status() says it
                                     should have now (started, ready, finished), and
                                     requeue_after the next planned change

Level-triggered: each pass compares the status it wants with the cached one, by
`state_key`, and writes only on a difference. The cache may lag behind our own write;
a record of the last write (per pod uid) keeps us from writing the same again before
the watch brings it. Nothing else is remembered that the pod's status does not carry,
so a restarted process re-adopts running pods from their status: same IP (reserved
before any new pod gets one), same start time, no second round of events.

Writes go to pods/<name>/status as strategic merge patches, field manager "kubelet";
events are the kubelet's: Pulled, Created, Started, Killing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubelet.fake import blocked, containers, podstatus
from kubelet.fake.config import FIELD_MANAGER, FakeNodeConfig, parse_time
from kubelet.fake.ipam import AddressesExhausted
from kubelet.fake.nodes import NodeHandle, revision
from minikube_py.client import (
    NORMAL,
    PODS,
    WARNING,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    Informer,
    ItemExponentialFailureRateLimiter,
    Result,
    WorkQueue,
    key_of,
    split_key,
)

log = logging.getLogger("kubelet.fake.pods")

Obj = dict[str, Any]
NODE_NAME_INDEX = "spec.nodeName"


def node_name_index(pod: Obj) -> list[str]:
    name = (pod.get("spec") or {}).get("nodeName")
    return [name] if name else []


def _host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


@dataclass
class PodRecord:
    """What the driver remembers of one pod (by key), beyond what its status says."""

    uid: str
    node: str
    started: datetime | None = None  # precise start time, if this process started it
    ip: str | None = None
    written_rv: int = 0  # resourceVersion our last status write produced
    deleted: bool = False
    warned_at: float | None = None  # clock.monotonic() of the last "cannot start" Warning


class PodDriver:
    """Moves the pods of a set of fake nodes through their lives."""

    def __init__(self, client: ApiClient, handles: Mapping[str, NodeHandle], *, config: FakeNodeConfig,
                 clock: Clock, informer: Informer) -> None:
        self.client = client
        self.handles = handles
        self.config = config
        self.clock = clock
        self.informer = informer
        # Failed writes retry with backoff capped at 10 s (the kubelet's pod sync period),
        # not client-go's 1000 s: after an API server outage pods must catch up quickly.
        self.queue: WorkQueue[str] = WorkQueue("fake-pods", clock=clock,
                                               rate_limiter=ItemExponentialFailureRateLimiter(0.005, 10.0))
        self.records: dict[str, PodRecord] = {}
        informer.add_indexer(NODE_NAME_INDEX, node_name_index)
        informer.add_event_handler(EventHandler(self._on_pod, lambda old, new: self._on_pod(new), self._on_gone))

    def controller(self) -> Controller:
        return Controller("fake-pods", self.queue, self.reconcile, workers=self.config.pod_workers,
                          wait_for=[self.informer])

    def node_ready(self, node: str) -> None:
        """A node became ready: look at its pods."""
        for pod in self.informer.store.by_index(NODE_NAME_INDEX, node):
            self.queue.add(key_of(pod))

    # -- events -> keys -----------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        handle = self.handles.get((pod.get("spec") or {}).get("nodeName") or "")
        if handle is None:
            return
        key = key_of(pod)
        if key not in self.records:
            # Re-adoption: an address a live pod has is taken before any is handed out.
            ip = (pod.get("status") or {}).get("podIP")
            uid = (pod.get("metadata") or {}).get("uid")
            if ip and uid and not _host_network(pod) and not podstatus.is_terminal(pod) \
                    and handle.pool.holder(ip) is None:
                handle.pool.reserve(ip, uid)
        self.queue.add(key)

    def _on_gone(self, pod: Obj | DeletedFinalStateUnknown) -> None:
        obj = pod.obj if isinstance(pod, DeletedFinalStateUnknown) else pod
        if (obj.get("spec") or {}).get("nodeName") in self.handles:
            self.queue.add(key_of(pod))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        pod = self.informer.lister.get(name, namespace)
        if pod is None:
            self._forget(key)
            return None
        handle = self.handles.get((pod.get("spec") or {}).get("nodeName") or "")
        if handle is None or not handle.ready:
            return None
        record = self._record(key, pod, handle)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._terminate(pod, record, handle)
            return None
        if podstatus.is_terminal(pod):
            self._release(record)
            return None
        return await self._sync(pod, record, handle)

    def _record(self, key: str, pod: Obj, handle: NodeHandle) -> PodRecord:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        record = self.records.get(key)
        if record is None or record.uid != uid:
            if record is not None:
                self._release(record)
            ip = (pod.get("status") or {}).get("podIP")
            record = self.records[key] = PodRecord(uid, handle.name, ip=ip)
        return record

    def _forget(self, key: str) -> None:
        record = self.records.pop(key, None)
        if record is not None:
            self._release(record)

    def _release(self, record: PodRecord) -> None:
        handle = self.handles.get(record.node)
        if handle is not None:
            handle.pool.release(record.ip, record.uid)

    # -- running ------------------------------------------------------------------------

    def _addresses(self, pod: Obj, record: PodRecord, handle: NodeHandle) -> tuple[str, str]:
        """(hostIP, podIP): the pod's own if it has them, else newly allocated."""
        assert handle.internal_ip is not None
        if _host_network(pod):
            return handle.internal_ip, handle.internal_ip
        ip = (pod.get("status") or {}).get("podIP") or record.ip or handle.pool.allocate(record.uid)
        return handle.internal_ip, ip

    async def _sync(self, pod: Obj, record: PodRecord, handle: NodeHandle) -> Result | None:
        if revision(pod) < record.written_rv:
            return None  # the cache has not seen our last write yet; its watch event brings the key back
        status = pod.get("status") or {}
        first = not podstatus.is_started(pod) or blocked.is_blocked(pod)
        if first:
            stuck = await blocked.find(self.client, pod)
            if stuck is not None:
                return await self._hold(pod, record, handle, stuck)
        started = record.started or (None if first else parse_time(status.get("startTime"))) or self.clock.now()
        try:
            host_ip, pod_ip = self._addresses(pod, record, handle)
        except AddressesExhausted as exc:
            self._event(handle, pod, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            raise
        record.ip = pod_ip
        plan = podstatus.plan(pod, started, default_run_seconds=self.config.run_seconds)
        now = self.clock.now()
        desired = podstatus.desired_status(pod, plan, now, host_ip=host_ip, pod_ip=pod_ip, allow_finish=not first)
        if podstatus.state_key(desired) == podstatus.state_key(status):
            return self._after(plan, now)
        await self._write(pod, record, desired)
        record.started = started
        if first:
            self._start_events(pod, handle)
        else:
            self._restart_events(pod, handle, status, desired)
        if desired["phase"] in podstatus.TERMINAL:
            self._release(record)
            return None
        return self._after(plan, now)

    async def _hold(self, pod: Obj, record: PodRecord, handle: NodeHandle, stuck: blocked.Blocked) -> Result:
        """A ConfigMap or Secret the pod needs is missing: show it Pending, say why (again
        every RETRY_SECONDS, as the kubelet's retries do), and look again then."""
        assert handle.internal_ip is not None
        pod_ip = None
        if stuck.reason == blocked.CONFIG_ERROR:  # the sandbox (and its IP) exists
            pod_ip = self._addresses(pod, record, handle)[1]
            record.ip = pod_ip
        desired = blocked.pending_status(pod, stuck, self.clock.now(), host_ip=handle.internal_ip, pod_ip=pod_ip)
        if podstatus.state_key(desired) != podstatus.state_key(pod.get("status")):
            await self._write(pod, record, desired)
        mono = self.clock.monotonic()
        if record.warned_at is None or mono - record.warned_at >= blocked.RETRY_SECONDS * 0.99:
            path = f"spec.containers{{{stuck.container}}}" if stuck.container else None
            if stuck.container and any(c.get("name") == stuck.container
                                       for c in (pod.get("spec") or {}).get("initContainers") or []):
                path = f"spec.initContainers{{{stuck.container}}}"
            if stuck.reason == blocked.CONFIG_ERROR:  # the image is pulled before the config is made
                spec = pod.get("spec") or {}
                container = next(c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                                 if c.get("name") == stuck.container)
                for reason, message in containers.pull_events(container):
                    self._event(handle, pod, NORMAL, reason, message, field_path=path)
            self._event(handle, pod, WARNING, stuck.event_reason, stuck.event_message, field_path=path)
            record.warned_at = mono
        return Result(requeue_after=blocked.RETRY_SECONDS)

    @staticmethod
    def _after(plan: podstatus.PodPlan, now: datetime) -> Result | None:
        due = plan.next_due(now)
        return Result(requeue_after=due) if due else None

    async def _write(self, pod: Obj, record: PodRecord, desired: Obj) -> None:
        meta = pod.get("metadata") or {}
        written = await self.client.patch(PODS, meta["name"], podstatus.status_patch(pod, desired), meta["namespace"],
                                          patch_type="strategic", subresource="status", field_manager=FIELD_MANAGER)
        record.written_rv = revision(written)
        if podstatus.state_key(written.get("status")) != podstatus.state_key(desired):
            log.warning("pod %s/%s: the server stored another status than written", meta["namespace"], meta["name"])

    # -- deletion -----------------------------------------------------------------------

    async def _terminate(self, pod: Obj, record: PodRecord, handle: NodeHandle) -> None:
        """Stop the (imaginary) containers, then remove the pod."""
        if record.deleted:
            return
        meta = pod.get("metadata") or {}
        running = podstatus.is_started(pod) and not podstatus.is_terminal(pod) and not blocked.is_blocked(pod)
        if running:
            for container in (pod.get("spec") or {}).get("containers") or []:
                self._event(handle, pod, NORMAL, "Killing", f"Stopping container {container['name']}",
                            field_path=f"spec.containers{{{container['name']}}}")
        if running and meta.get("finalizers"):
            # Whoever holds a finalizer (the Job controller) learns how the pod ended.
            started = record.started or parse_time((pod.get("status") or {}).get("startTime")) or self.clock.now()
            host_ip, pod_ip = self._addresses(pod, record, handle)
            plan = podstatus.plan(pod, started, default_run_seconds=self.config.run_seconds)
            await self._write(pod, record, podstatus.desired_status(pod, plan, self.clock.now(), host_ip=host_ip,
                                                            pod_ip=pod_ip, killed=True))
        try:
            await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": record.uid})
        except ApiError as exc:
            if not (exc.is_not_found() or exc.is_conflict()):
                raise
        record.deleted = True
        self._release(record)

    # -- events -------------------------------------------------------------------------

    def _event(self, handle: NodeHandle, pod: Obj, event_type: str, reason: str, message: str, *,
               field_path: str | None = None) -> None:
        if handle.recorder is not None:
            handle.recorder.event(pod, event_type, reason, message, field_path=field_path)

    def _restart_events(self, pod: Obj, handle: NodeHandle, before: Obj, after: Obj) -> None:
        """What the kubelet says when a failed container waits in back-off (BackOff) and
        when it is restarted (Pulled, Created, Started again)."""
        meta = pod.get("metadata") or {}
        old = {s.get("name"): s for s in before.get("containerStatuses") or []}
        for status in after.get("containerStatuses") or []:
            name, path = status["name"], f"spec.containers{{{status['name']}}}"
            prior = old.get(name) or {}
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" and "waiting" not in (prior.get("state") or {}):
                self._event(handle, pod, WARNING, "BackOff",
                            f"Back-off restarting failed container {name} in pod "
                            f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})", field_path=path)
            elif status.get("restartCount", 0) > prior.get("restartCount", 0) and "running" in status["state"]:
                container = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c["name"] == name), {})
                self._container_started(pod, handle, {"name": name, **container}, path)

    def _start_events(self, pod: Obj, handle: NodeHandle) -> None:
        """Pulled, Created, Started per container, init containers first (1.32 wording)."""
        spec = pod.get("spec") or {}
        for field, items in (("initContainers", spec.get("initContainers")), ("containers", spec.get("containers"))):
            for container in items or []:
                self._container_started(pod, handle, container, f"spec.{field}{{{container['name']}}}")

    def _container_started(self, pod: Obj, handle: NodeHandle, container: Obj, path: str) -> None:
        name = container["name"]
        for reason, message in containers.pull_events(container):
            self._event(handle, pod, NORMAL, reason, message, field_path=path)
        # kubelet 1.32 says "Created container: x" but still "Started container x".
        self._event(handle, pod, NORMAL, "Created", f"Created container: {name}", field_path=path)
        self._event(handle, pod, NORMAL, "Started", f"Started container {name}", field_path=path)
