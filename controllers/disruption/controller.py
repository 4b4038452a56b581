"""The disruption controller: keeps each PodDisruptionBudget's status current.

Enqueued by the PDB itself and by every pod change (the PDBs of the pod's namespace
whose selector matches its old or new labels); a sync lists the matching pods from the
cache, resolves their controllers' scale from the caches (Deployment, ReplicaSet,
ReplicationController, StatefulSet) and writes the status when it changed. Evictions
(pods/eviction) are the API server's part; this controller only computes the budget.
"""

from __future__ import annotations

from typing import Any

from controllers.common import objects, ownership
from controllers.disruption.budget import compute, status
from minikube_py.client import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    ApiClient,
    ApiError,
    Clock,
    Controller,
    EventHandler,
    EventRecorder,
    RealClock,
    Result,
    SharedInformerFactory,
    WorkQueue,
    enqueue_object,
    from_label_selector,
    key_of,
    split_key,
)
from minikube_py.client.resources import REPLICATIONCONTROLLERS

Obj = dict[str, Any]


class DisruptionController:
    """PodDisruptionBudget status from the pods it selects."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, clock: Clock | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock or RealClock()
        self.pdbs = informers.informer(PODDISRUPTIONBUDGETS)
        self.pods = informers.informer(PODS)
        self.owners = {kind: informers.informer(resource) for kind, resource in (
            ("Deployment", DEPLOYMENTS), ("ReplicaSet", REPLICASETS), ("StatefulSet", STATEFULSETS),
            ("ReplicationController", REPLICATIONCONTROLLERS))}
        self.queue: WorkQueue[str] = WorkQueue("disruption", clock=self.clock)
        self.pdbs.add_event_handler(enqueue_object(self.queue))
        self.pods.add_event_handler(EventHandler(on_add=self._pod_changed, on_update=self._pod_changed,
                                                 on_delete=self._pod_changed))
        self.controller = Controller("disruption", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.pdbs, self.pods, *self.owners.values()])

    async def run(self) -> None:
        await self.controller.run()

    def _pod_changed(self, *objs: Any) -> None:
        for obj in objs:
            pod = getattr(obj, "obj", obj)
            for pdb in self.pdbs.lister.list(objects.namespace(pod)):
                if self._selector(pdb).matches(objects.labels(pod)):
                    self.queue.add(key_of(pdb))

    @staticmethod
    def _selector(pdb: Obj) -> Any:
        try:
            return from_label_selector(objects.spec(pdb).get("selector"))
        except ValueError:
            return from_label_selector(None)

    def scale_of(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        """(uid, spec.replicas) of the object that scales a pod's controller."""
        informer = self.owners.get(kind)
        owner = informer.lister.get(name, namespace) if informer is not None else None
        if owner is None:
            return None
        if kind == "ReplicaSet":
            ref = ownership.controller_of(owner)
            if ref is not None and ref.get("kind") == "Deployment":
                deployment = self.owners["Deployment"].lister.get(str(ref.get("name")), namespace)
                if deployment is not None and objects.uid(deployment) == ref.get("uid"):
                    owner = deployment
        return objects.uid(owner), objects.spec_replicas(owner)

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        pdb = self.pdbs.lister.get(name, namespace)
        if pdb is None or objects.metadata(pdb).get("deletionTimestamp"):
            return None
        matching = self.pods.lister.list(namespace, self._selector(pdb))
        now = self.clock.now()
        budget = compute(pdb, matching, self.scale_of, now)
        for event_type, reason, message in budget.events:
            self.recorder.event(pdb, event_type, reason, message)
        new_status = status(pdb, budget, objects.format_time(now))
        if new_status != objects.status(pdb):
            try:
                await self.client.update_status(PODDISRUPTIONBUDGETS, {**pdb, "status": new_status}, namespace)
            except ApiError as exc:
                if not (exc.is_conflict() or exc.is_not_found()):
                    raise
                return Result(requeue=True)
        if budget.recheck_at is not None:  # an eviction that has not shown up as a deletion yet
            return Result(requeue_after=max((budget.recheck_at - now).total_seconds(), 0.0))
        return None
