"""The Deployment controller on the client runtime (pkg/controller/deployment's wiring).

Informers (shared): Deployments, ReplicaSets and Pods. Keys: `namespace/name` of
Deployments.

    Deployment added / updated / deleted  -> its own key
    ReplicaSet added / updated / deleted  -> its controlling Deployment (an orphan: every
                                             Deployment whose selector matches its labels)
    Pod deleted                           -> for a Recreate Deployment owning it through a
                                             ReplicaSet: the Deployment, once none of its
                                             pods is left (Recreate waits for that)

`reconcile(key)` reads only the caches: the Deployment, the ReplicaSets of its namespace
(orphans can be adopted and names collide), and the pods of the ReplicaSets it owns or
could adopt (by the owner index). It runs `reconcile_deployment` and hands the actions to
the `ActionExecutor`; progress-deadline checks come back as `requeue_after`. When creating
the new ReplicaSet fails, `replica_set_create_failed` writes ReplicaSetCreateError first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.common import objects, ownership
from controllers.common.actions import Action, CreateReplicaSet
from controllers.common.executor import (
    ActionExecutor,
    OwnerEnqueuer,
    error_text,
    resolve_controller_ref,
    unwrap,
)
from controllers.deployment import replicas as rep
from controllers.deployment.reconcile import pod_map, reconcile_deployment, replica_set_create_failed
from controllers.deployment.replicasets import KIND
from minikube_py.client import (
    DEPLOYMENTS,
    OWNER_UID_INDEX,
    PODS,
    REPLICASETS,
    ApiClient,
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
    owner_uid_index,
    split_key,
)

Obj = dict[str, Any]
COMPONENT = "deployment-controller"
REPLICA_SET_KIND = "ReplicaSet"


class DeploymentController:
    """Rolls Deployments out through ReplicaSets (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Clock | None = None) -> None:
        self.clock = clock or RealClock()
        self.deployments = informers.informer(DEPLOYMENTS)
        self.replica_sets = informers.informer(REPLICASETS)
        self.pods = informers.informer(PODS)
        for informer in (self.replica_sets, self.pods):
            if not informer.store.has_indexer(OWNER_UID_INDEX):
                informer.add_indexer(OWNER_UID_INDEX, owner_uid_index)
        self.queue: WorkQueue[str] = WorkQueue("deployment", clock=self.clock)
        self.executor = ActionExecutor(client, recorder, DEPLOYMENTS, listers={REPLICASETS: self.replica_sets.lister},
                                       clock=self.clock, on_failure=self._on_failure)
        self.deployments.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=lambda old, cur: self._enqueue(cur), on_delete=self._enqueue))
        self.replica_sets.add_event_handler(OwnerEnqueuer(self.queue, self.deployments.lister, KIND).handler())
        self.pods.add_event_handler(EventHandler(on_delete=self._pod_deleted))
        self.controller = Controller("deployment", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.deployments, self.replica_sets, self.pods])

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await self.controller.run()

    # -- event handlers -----------------------------------------------------------------

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(key_of(obj))

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """deletePod: a Recreate rollout waits for the last old pod to go."""
        pod = unwrap(obj)
        namespace = objects.namespace(pod)
        rs = resolve_controller_ref(namespace, ownership.controller_of(pod), REPLICA_SET_KIND,
                                    self.replica_sets.lister)
        if rs is None:
            return
        d = resolve_controller_ref(namespace, ownership.controller_of(rs), KIND, self.deployments.lister)
        if d is None or rep.strategy_type(d) != rep.RECREATE:
            return
        owned = [r for r in self.replica_sets.lister.list(namespace) if ownership.is_controlled_by(r, d)]
        if not any(pod_map(d, owned, self.pods_of(owned)).values()):
            self.queue.add(key_of(d))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """One sync of the Deployment `key`, from the caches."""
        namespace, name = split_key(key)
        d = self.deployments.lister.get(name, namespace)
        if d is None:
            return None  # deleted: the garbage collector removes what it owned
        replica_sets = self.replica_sets.lister.list(namespace)
        claimable = [rs for rs in replica_sets if _ours_or_orphan(rs, d)]
        actions = reconcile_deployment(d, replica_sets, self.pods_of(claimable), now=self.clock.now())
        return await self.executor.execute(d, actions)

    def pods_of(self, replica_sets: Sequence[Obj]) -> list[Obj]:
        """Pods with an ownerReference to any of `replica_sets` (each once)."""
        seen: set[str] = set()
        pods = []
        for rs in replica_sets:
            for pod in self.pods.lister.by_owner_uid(objects.uid(rs)):
                if objects.uid(pod) not in seen:
                    seen.add(objects.uid(pod))
                    pods.append(pod)
        return pods

    def _on_failure(self, d: Obj, action: Action, error: Exception, remaining: Sequence[Action]) -> list[Action]:
        """Creating the new ReplicaSet failed: Progressing False / ReplicaSetCreateError."""
        if not isinstance(action, CreateReplicaSet):
            return []
        return replica_set_create_failed(d, objects.name(action.obj), error_text(error), now=self.clock.now())


def _ours_or_orphan(rs: Obj, d: Obj) -> bool:
    """A ReplicaSet the Deployment controls or could adopt (only their pods matter)."""
    ref = ownership.controller_of(rs)
    return ref is None or ref.get("uid") == objects.uid(d)
