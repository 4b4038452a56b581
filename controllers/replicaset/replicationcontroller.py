"""The ReplicationController manager (pkg/controller/replication): the ReplicaSet
controller run over ReplicationControllers, as Kubernetes does it, through a conversion.

A ReplicationController is a ReplicaSet whose `spec.selector` is a plain label map
(defaulting to the template's labels). The pod handler and the sync see each one as a
ReplicaSet with that map as `matchLabels`; the pods it creates or adopts get a
controller reference `v1/ReplicationController`; status writes and Events go to the
ReplicationController itself (Event source `replication-controller`).
"""

from __future__ import annotations

from typing import Any

from controllers.common import objects
from controllers.replicaset.controller import ReplicaSetController
from controllers.replicaset.reconcile import reconcile_replicaset
from minikube_py.client import Result, split_key
from minikube_py.client.resources import REPLICATIONCONTROLLERS

Obj = dict[str, Any]
OWNER_KIND = ("v1", "ReplicationController")


def as_replica_set(rc: Obj) -> Obj:
    """The ReplicaSet view of a ReplicationController (its map selector as matchLabels)."""
    spec = objects.spec(rc)
    selector = spec.get("selector")
    if selector is None:
        selector = objects.labels(spec.get("template"))
    return {**rc, "spec": {**spec, "selector": {"matchLabels": dict(selector)}}}


class ConvertedLister:
    """A lister of ReplicationControllers that answers with their ReplicaSet views."""

    def __init__(self, lister: Any) -> None:
        self._lister = lister

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        rc = self._lister.get(name, namespace)
        return None if rc is None else as_replica_set(rc)

    def list(self, *args: Any, **kwargs: Any) -> list[Obj]:
        return [as_replica_set(rc) for rc in self._lister.list(*args, **kwargs)]

    def by_owner_uid(self, uid: str) -> list[Obj]:
        return [as_replica_set(rc) for rc in self._lister.by_owner_uid(uid)]


class ReplicationManager(ReplicaSetController):
    """Keeps each ReplicationController's pods at spec.replicas."""

    RESOURCE = REPLICATIONCONTROLLERS
    QUEUE = "replicationmanager"

    def owners(self) -> Any:
        return ConvertedLister(self.replica_sets.lister)

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        rc = self.replica_sets.lister.get(name, namespace)
        if rc is None:
            self.expectations.forget(key)
            return None
        view = as_replica_set(rc)
        candidates = self.claimable_pods(view)
        actions = reconcile_replicaset(view, candidates, now=self.clock.now(), expectations=self.expectations.get(key),
                                       related_pods=[], burst_replicas=self.burst_replicas, owner_kind=OWNER_KIND)
        return await self.executor.execute(rc, actions)
