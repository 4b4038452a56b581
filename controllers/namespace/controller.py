"""The namespace controller (pkg/controller/namespace): empties Terminating namespaces.

For a namespace with a deletionTimestamp whose spec.finalizers still holds `kubernetes`:

1. discover every namespaced resource that supports delete (CRDs included); a group
   that fails discovery is reported and the rest is still deleted;
2. per resource: DELETE the collection (propagationPolicy Background) where the server
   offers deletecollection, else each object; then list what is left, counting objects
   and the finalizers they carry;
3. write the five status conditions (conditions.py) when they change;
4. anything left: requeue after estimate/2 + 1 seconds, through the injected clock. As
   in Kubernetes the estimate is the longest terminationGracePeriodSeconds of the pods
   that were running, or 15 s for objects held by finalizers; objects left with neither
   are an error ("unexpected items still remain in namespace: ..."), retried with
   backoff. Nothing left: PUT /api/v1/namespaces/<name>/finalize without `kubernetes`,
   and the API server removes the namespace. An update of the namespace (our own
   condition writes included) also enqueues it, as in Kubernetes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from controllers.garbagecollector.discovery import APIResource, discover
from controllers.namespace import conditions
from minikube_py.client import (
    NAMESPACES,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_object,
)

log = logging.getLogger("controllers.namespace")
Obj = dict[str, Any]
FINALIZER = "kubernetes"
FINALIZER_ESTIMATE_SECONDS = 15  # finalizerEstimateSeconds
COMPONENT = "namespace-controller"


@dataclass
class Sweep:
    """What one pass over a namespace's content found."""

    remaining: dict[tuple[str, str], int] = field(default_factory=dict)
    finalizers: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    estimate: int = 0


def graceful_estimate(pods: list[Obj]) -> int:
    """The longest grace period a pod still terminating may need (podsGracefulTerminationEstimate)."""
    estimate = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = 30 if grace is None else int(grace)
        estimate = max(estimate, grace)
    return estimate


class NamespaceController:
    """Deletes the content of Terminating namespaces, then finalizes them."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 10, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.namespaces = informers.informer(NAMESPACES)
        self.queue: WorkQueue[str] = WorkQueue("namespace", clock=self.clock)
        self.namespaces.add_event_handler(enqueue_object(self.queue))
        self.controller = Controller("namespace", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.namespaces])

    async def run(self) -> None:
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.lister.get(key)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        try:  # the cache may lag: act on the live object
            ns = await self.client.get(NAMESPACES, key)
        except ApiError as exc:
            if exc.is_not_found():
                return None
            raise
        if not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        discovery = await discover(self.client)
        resources = [r for r in discovery.preferred if r.resource.namespaced and r.supports("delete")]
        sweep = Sweep()
        for api_resource in resources:
            await self._delete_content(key, api_resource, sweep)
        bad = {
            conditions.DISCOVERY_FAILURE: conditions.discovery_failed(discovery.failed),
            conditions.CONTENT_FAILURE: conditions.content_failed(sweep.errors),
            conditions.CONTENT_REMAINING: conditions.content_remaining(sweep.remaining),
            conditions.FINALIZERS_REMAINING: conditions.finalizers_remaining(sweep.finalizers),
        }
        ns = await self._update_conditions(ns, bad)
        if sweep.errors or discovery.failed:
            raise RuntimeError(f"namespace {key}: content deletion incomplete: {sweep.errors or discovery.failed}")
        if sweep.remaining:
            return Result(requeue_after=sweep.estimate / 2 + 1)
        await self._finalize(ns)
        return None

    async def _delete_content(self, namespace: str, api_resource: APIResource, sweep: Sweep) -> None:
        """deleteAllContentForGroupVersionResource: delete, then count what is left."""
        resource = api_resource.resource
        estimate = 0
        try:
            if resource.plural == "pods" and not resource.group:
                pods, _ = await self.client.list_all(resource, namespace)
                estimate = graceful_estimate(pods)
            if api_resource.supports("deletecollection"):
                await self.client.delete_collection(resource, namespace, propagation_policy="Background")
            elif api_resource.supports("list"):
                items, _ = await self.client.list_all(resource, namespace)
                for item in items:
                    await self._delete_one(resource, namespace, item)
            else:
                return
            items, _ = await self.client.list_all(resource, namespace)
        except ApiError as exc:
            if exc.code in (404, 405):  # gone meanwhile, or not really deletable
                return
            sweep.errors.append(exc.message or str(exc))
            return
        if not items:
            return
        sweep.remaining[(resource.group, resource.plural)] = len(items)
        finalizers = Counter(f for item in items for f in (item.get("metadata") or {}).get("finalizers") or [])
        sweep.finalizers.update(finalizers)
        if estimate == 0:
            if not finalizers:
                gvr = f"{resource.group}/{resource.version}, Resource={resource.plural}"
                sweep.errors.append(f"unexpected items still remain in namespace: {namespace} for gvr: {gvr}")
                return
            estimate = FINALIZER_ESTIMATE_SECONDS  # time for the finalizers' owners to act
        sweep.estimate = max(sweep.estimate, estimate)

    async def _delete_one(self, resource: Any, namespace: str, item: Obj) -> None:
        meta = item.get("metadata") or {}
        try:
            await self.client.delete(resource, meta.get("name", ""), namespace, propagation_policy="Background")
        except ApiError as exc:
            if not exc.is_not_found():
                raise

    async def _update_conditions(self, ns: Obj, bad: dict[str, tuple[str, str] | None]) -> Obj:
        status = ns.get("status") or {}
        existing = status.get("conditions") or []
        wanted = conditions.updated_conditions(existing, bad, self.clock.now())
        if wanted == existing:
            return ns
        body = {**ns, "status": {**status, "conditions": wanted}}
        return await self.client.update_status(NAMESPACES, body)

    async def _finalize(self, ns: Obj) -> None:
        spec = ns.get("spec") or {}
        body = {**ns, "spec": {**spec, "finalizers": [f for f in spec.get("finalizers") or [] if f != FINALIZER]}}
        name = (ns.get("metadata") or {}).get("name", "")
        log.info("namespace %s is empty: finalizing", name)
        await self.client.request("PUT", NAMESPACES.path(None, name, "finalize"), body=body)
