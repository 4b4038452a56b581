"""The ReplicaSet controller on the client runtime (pkg/controller/replicaset's wiring).

Informers (shared): ReplicaSets and Pods. Keys: `namespace/name` of ReplicaSets.

    ReplicaSet added / updated / deleted  -> its own key (deleted: expectations forgotten)
    Pod added                             -> its controlling ReplicaSet, creation observed;
                                             an orphan: every ReplicaSet selecting it
    Pod updated                           -> old and new controller; an orphan whose labels
                                             or controller changed: every ReplicaSet selecting it
    Pod deleted, or now being deleted     -> its controller, deletion observed

`reconcile(key)` reads only the caches: the ReplicaSet, the pods it could claim (those it
controls, by the owner index, and the namespace's orphans, by an index of pods without a
controller: the same set Kubernetes filters out of every pod in the namespace) and, only
when it has pods to delete, the pods of its sibling ReplicaSets (same controller) to rank
doubled-up nodes first. It runs `reconcile_replicaset` and hands the actions to the
`ActionExecutor`; a failed create or delete writes the ReplicaFailure condition first.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from controllers.common import conditions, objects, ownership
from controllers.common.actions import Action, CreatePods, DeletePods, UpdateStatus
from controllers.common.executor import ActionExecutor, OwnerEnqueuer, error_text, unwrap
from controllers.common.expectations import ExpectationsStore
from controllers.replicaset.reconcile import BURST_REPLICAS, reconcile_replicaset
from controllers.replicaset.status import REPLICA_FAILURE, needs_update, with_replica_failure
from minikube_py.client import (
    OWNER_UID_INDEX,
    PODS,
    REPLICASETS,
    ApiClient,
    Clock,
    Controller,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    Informer,
    RealClock,
    Resource,
    Result,
    SharedInformerFactory,
    WorkQueue,
    from_label_selector,
    key_of,
    owner_uid_index,
    split_key,
)

Obj = dict[str, Any]
COMPONENT = "replicaset-controller"
ORPHANS_INDEX = "controllers/orphans-by-namespace"


def orphan_index(obj: Obj) -> list[str]:
    """The namespace of an object without a controller reference (index ORPHANS_INDEX)."""
    if ownership.controller_of(obj) is not None:
        return []
    return [objects.namespace(obj)] if objects.namespace(obj) else []


def ensure_indexers(informer: Informer) -> None:
    """The owner and orphan indexes on a (shared) pod informer, added once."""
    for name, fn in ((OWNER_UID_INDEX, owner_uid_index), (ORPHANS_INDEX, orphan_index)):
        if not informer.store.has_indexer(name):
            informer.add_indexer(name, fn)


class ReplicaSetController:
    """Keeps each ReplicaSet's pods at spec.replicas (see the module docstring)."""

    RESOURCE: Resource = REPLICASETS  # the ReplicationController manager reuses all of this
    QUEUE = "replicaset"

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None, burst_replicas: int = BURST_REPLICAS) -> None:
        self.clock = clock or RealClock()
        self.burst_replicas = burst_replicas
        self.replica_sets = informers.informer(self.RESOURCE)
        self.pods = informers.informer(PODS)
        ensure_indexers(self.pods)
        if not self.replica_sets.store.has_indexer(OWNER_UID_INDEX):
            self.replica_sets.add_indexer(OWNER_UID_INDEX, owner_uid_index)
        self.queue: WorkQueue[str] = WorkQueue(self.QUEUE, clock=self.clock)
        self.expectations = ExpectationsStore()
        self.executor = ActionExecutor(client, recorder, self.RESOURCE, expectations=self.expectations,
                                       clock=self.clock, on_failure=self._on_failure)
        self.replica_sets.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=self._replica_set_updated, on_delete=self._replica_set_deleted))
        pods = OwnerEnqueuer(self.queue, self.owners(), self.RESOURCE.kind, on_created=self._creation_observed,
                             on_deleted=self._deletion_observed)
        self.pods.add_event_handler(pods.handler())
        self.controller = Controller(self.QUEUE, self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.replica_sets, self.pods])

    def owners(self) -> Any:
        """The lister the pod handler resolves owners and selectors with."""
        return self.replica_sets.lister

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await self.controller.run()

    # -- event handlers -----------------------------------------------------------------

    def _enqueue(self, rs: Obj) -> None:
        self.queue.add(key_of(rs))

    def _replica_set_updated(self, old: Obj, cur: Obj) -> None:
        if objects.uid(old) != objects.uid(cur):
            # Deleted and recreated under the same name between two events.
            self._replica_set_deleted(DeletedFinalStateUnknown(key_of(old), old))
        self._enqueue(cur)

    def _replica_set_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = key_of(unwrap(obj))
        self.expectations.forget(key)
        self.queue.add(key)

    def _creation_observed(self, rs_key: str, pod: Obj) -> None:
        self.expectations.creation_observed(rs_key)

    def _deletion_observed(self, rs_key: str, pod: Obj) -> None:
        self.expectations.deletion_observed(rs_key, key_of(pod))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """One sync of the ReplicaSet `key`, from the caches."""
        namespace, name = split_key(key)
        rs = self.replica_sets.lister.get(name, namespace)
        if rs is None:
            self.expectations.forget(key)
            return None
        candidates = self.claimable_pods(rs)
        actions = reconcile_replicaset(rs, candidates, now=self.clock.now(), expectations=self.expectations.get(key),
                                       related_pods=self.related_pods(rs, candidates),
                                       burst_replicas=self.burst_replicas)
        return await self.executor.execute(rs, actions)

    def claimable_pods(self, rs: Obj) -> list[Obj]:
        """Pods with an ownerReference to `rs`, then the namespace's orphans."""
        lister = self.pods.lister
        seen: set[str] = set()
        pods = []
        for pod in [*lister.by_owner_uid(objects.uid(rs)), *lister.by_index(ORPHANS_INDEX, objects.namespace(rs))]:
            if key_of(pod) not in seen:
                seen.add(key_of(pod))
                pods.append(pod)
        return pods

    def related_pods(self, rs: Obj, candidates: Sequence[Obj]) -> list[Obj]:
        """getIndirectlyRelatedPods: pods of every ReplicaSet sharing `rs`'s controller.

        Only ranking pods for deletion uses them, so they are gathered only when there
        may be pods to delete. A ReplicaSet without a controller has none (as Kubernetes).
        """
        ref = ownership.controller_of(rs)
        if ref is None or len(candidates) <= objects.spec_replicas(rs):
            return []
        siblings = [r for r in self.replica_sets.lister.by_owner_uid(str(ref.get("uid")))
                    if (ownership.controller_of(r) or {}).get("uid") == ref.get("uid")]
        seen: set[str] = set()
        related = []
        for sibling in siblings:
            try:
                selector = from_label_selector(objects.spec(sibling).get("selector"))
            except ValueError:
                continue
            for pod in self.pods.lister.list(objects.namespace(sibling), selector):
                if objects.uid(pod) not in seen:
                    seen.add(objects.uid(pod))
                    related.append(pod)
        return related

    def _on_failure(self, rs: Obj, action: Action, error: Exception, remaining: Sequence[Action]) -> list[Action]:
        """After a failed create or delete: the status with a ReplicaFailure condition."""
        if not isinstance(action, CreatePods | DeletePods):
            return []
        pending = next((a.status for a in remaining if isinstance(a, UpdateStatus)), None)
        status = pending if pending is not None else copy.deepcopy(objects.status(rs))
        if conditions.get_condition(objects.status(rs), REPLICA_FAILURE) is not None:
            # Kubernetes keeps the condition it already has (calculateStatus starts from
            # rs.Status); the pure calculate_status strips it, so put it back.
            status = {**status, "conditions": copy.deepcopy(objects.status(rs).get("conditions"))}
        status = with_replica_failure(rs, status, error_text(error), self.clock.now())
        return [UpdateStatus(status)] if needs_update(rs, status) else []
