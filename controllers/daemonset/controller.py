"""The DaemonSet controller on the client runtime (pkg/controller/daemon's wiring).

Informers (shared): DaemonSets, Pods, Nodes, ControllerRevisions. Keys: `namespace/name`.

    DaemonSet added / updated / deleted   -> its key (deleted: expectations forgotten)
    Pod events                            -> its controlling DaemonSet (creation/deletion
                                             observed), an orphan: every DaemonSet selecting it
    Node added                            -> the DaemonSets that should run a pod there
    Node labels or taints changed         -> the DaemonSets whose eligibility answer changed
    Node deleted                          -> every DaemonSet (Kubernetes waits for a resync)
    Pod turned ready, minReadySeconds > 0 -> its DaemonSet again after minReadySeconds + 1s
    ControllerRevision events             -> its controlling DaemonSet

`reconcile(key)` does what syncDaemonSet does in this order: constructHistory (the only
API calls made before the pure part: adopt orphaned revisions, create the revision of the
current template, bump status.collisionCount on a hash collision, renumber or dedupe the
current revision), then `reconcile_daemonset` from the caches, whose actions the shared
`ActionExecutor` runs, then cleanupHistory (old revisions beyond revisionHistoryLimit whose
hash no live pod carries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.common import objects, ownership, pods
from controllers.common.actions import Action, CreatePods, DeletePods
from controllers.common.executor import ActionExecutor, OwnerEnqueuer, resolve_controller_ref, unwrap
from controllers.common.expectations import ExpectationsStore, satisfied
from controllers.daemonset import revisions as dsrev
from controllers.daemonset.backoff import FailedPodsBackoff
from controllers.daemonset.eligibility import node_should_run
from controllers.daemonset.reconcile import BURST_REPLICAS, KIND, reconcile_daemonset
from controllers.daemonset.status import nodes_to_daemon_pods
from controllers.history import adopt_revision, delete_revision, list_revisions, update_revision_number
from controllers.replicaset.controller import ORPHANS_INDEX, ensure_indexers
from minikube_py.client import (
    CONTROLLERREVISIONS,
    DAEMONSETS,
    NODES,
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
    from_label_selector,
    key_of,
    split_key,
)

Obj = dict[str, Any]
COMPONENT = "daemonset-controller"


class StaleCollisionCount(RuntimeError):
    """The cached collisionCount was stale; retry once the cache has the new one."""


class DaemonSetController:
    """Runs one daemon pod on every eligible node (see the module docstring)."""

    def __init__(self, client: ApiClient, informers: SharedInformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, clock: Clock | None = None, burst_replicas: int = BURST_REPLICAS) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.burst_replicas = burst_replicas
        self.daemon_sets = informers.informer(DAEMONSETS)
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.revisions = informers.informer(CONTROLLERREVISIONS)
        ensure_indexers(self.pods)
        self.queue: WorkQueue[str] = WorkQueue("daemonset", clock=self.clock)
        self.expectations = ExpectationsStore()
        self.backoff = FailedPodsBackoff()
        self.executor = ActionExecutor(client, recorder, DAEMONSETS, expectations=self.expectations,
                                       clock=self.clock, on_failure=self._on_failure)
        self.daemon_sets.add_event_handler(EventHandler(
            on_add=self._enqueue, on_update=self._daemon_set_updated, on_delete=self._daemon_set_deleted))
        pods = OwnerEnqueuer(self.queue, self.daemon_sets.lister, KIND, on_created=self._creation_observed,
                             on_deleted=self._deletion_observed)
        self.pods.add_event_handler(pods.handler())
        self.revisions.add_event_handler(OwnerEnqueuer(self.queue, self.daemon_sets.lister, KIND).handler())
        self.pods.add_event_handler(EventHandler(on_update=self._pod_turned_ready))
        self.nodes.add_event_handler(EventHandler(
            on_add=self._node_added, on_update=self._node_updated, on_delete=self._enqueue_all))
        self.controller = Controller("daemonset", self.queue, self.reconcile, workers=workers,
                                     wait_for=[self.daemon_sets, self.pods, self.nodes, self.revisions])

    async def run(self) -> None:
        """Work until cancelled (after the caches have synced)."""
        await self.controller.run()

    # -- event handlers -----------------------------------------------------------------

    def _enqueue(self, ds: Obj) -> None:
        self.queue.add(key_of(ds))

    def _enqueue_all(self, _node: Any = None) -> None:
        for ds in self.daemon_sets.lister.list():
            self._enqueue(ds)

    def _node_added(self, node: Obj) -> None:
        """addNode: the DaemonSets that should run a pod on the new node."""
        for ds in self.daemon_sets.lister.list():
            if node_should_run(node, ds)[0]:
                self._enqueue(ds)

    def _node_updated(self, old: Obj, cur: Obj) -> None:
        """updateNode: only label or taint changes matter (shouldIgnoreNodeUpdate), and only
        to the DaemonSets whose answer of NodeShouldRunDaemonPod they change."""
        if objects.labels(old) == objects.labels(cur) and \
                (objects.spec(old).get("taints") or []) == (objects.spec(cur).get("taints") or []):
            return
        for ds in self.daemon_sets.lister.list():
            if node_should_run(old, ds) != node_should_run(cur, ds):
                self._enqueue(ds)

    def _pod_turned_ready(self, old: Obj, cur: Obj) -> None:
        """updatePod: a pod that just turned ready becomes available after minReadySeconds;
        sync its DaemonSet then (plus a second against clock skew)."""
        if pods.is_ready(old) or not pods.is_ready(cur) or objects.being_deleted(cur):
            return
        ds = resolve_controller_ref(objects.namespace(cur), ownership.controller_of(cur), KIND,
                                    self.daemon_sets.lister)
        min_ready = int(objects.spec(ds).get("minReadySeconds") or 0) if ds is not None else 0
        if ds is not None and min_ready > 0:
            self.queue.add_after(key_of(ds), float(min_ready + 1))

    def _daemon_set_updated(self, old: Obj, cur: Obj) -> None:
        if objects.uid(old) != objects.uid(cur):
            self._daemon_set_deleted(DeletedFinalStateUnknown(key_of(old), old))
        self._enqueue(cur)

    def _daemon_set_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = key_of(unwrap(obj))
        self.expectations.forget(key)
        self.queue.add(key)

    def _creation_observed(self, ds_key: str, pod: Obj) -> None:
        self.expectations.creation_observed(ds_key)

    def _deletion_observed(self, ds_key: str, pod: Obj) -> None:
        self.expectations.deletion_observed(ds_key, key_of(pod))

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """syncDaemonSet for `key`, from the caches."""
        namespace, name = split_key(key)
        ds = self.daemon_sets.lister.get(name, namespace)
        if ds is None:
            self.expectations.forget(key)
            return None
        now = self.clock.now()
        self.backoff.gc(now)
        candidates = self.claimable_pods(ds)
        try:
            selector = from_label_selector(objects.spec(ds).get("selector"))
        except ValueError:
            return None
        if selector.empty() or objects.being_deleted(ds):
            actions = reconcile_daemonset(ds, [], candidates, hash_value="", now=now, backoff=self.backoff)
            return await self.executor.execute(ds, actions)
        current, old = await self.construct_history(ds, selector)
        hash_value = dsrev.revision_hash_label(current) or objects.name(current)
        expected = self.expectations.get(key)
        acting = satisfied(expected, now)  # the sync may create and delete (else status only)
        actions = reconcile_daemonset(ds, self.nodes.lister.list(), candidates, hash_value=hash_value, now=now,
                                      backoff=self.backoff, expectations=expected,
                                      burst_replicas=self.burst_replicas)
        result = await self.executor.execute(ds, actions)
        if acting:
            await self.cleanup_history(ds, old, candidates)
        return result

    def claimable_pods(self, ds: Obj) -> list[Obj]:
        """Pods with an ownerReference to `ds`, then the namespace's orphans."""
        lister = self.pods.lister
        seen: dict[str, Obj] = {}
        for pod in [*lister.by_owner_uid(objects.uid(ds)), *lister.by_index(ORPHANS_INDEX, objects.namespace(ds))]:
            seen.setdefault(key_of(pod), pod)
        return list(seen.values())

    # -- ControllerRevisions ------------------------------------------------------------

    async def construct_history(self, ds: Obj, selector: Any) -> tuple[Obj, list[Obj]]:
        """constructHistory: (the current revision, the old ones), creating what is missing."""
        found = []
        for revision in list_revisions(self.revisions.lister, ds, selector):
            if ownership.controller_of(revision) is None and not objects.being_deleted(ds):
                revision = await adopt_revision(self.client, ds, revision, api_version=dsrev.API_VERSION, kind=KIND)
            found.append(revision)
        for index, revision in enumerate(found):
            if dsrev.HASH_LABEL not in objects.labels(revision):
                body = {**revision, "metadata": {**objects.metadata(revision),
                                                 "labels": {**objects.labels(revision),
                                                            dsrev.HASH_LABEL: objects.name(revision)}}}
                found[index] = await self.client.update(CONTROLLERREVISIONS, body, objects.namespace(ds))
        plan = dsrev.plan_history(ds, found)
        if plan.current is None:
            return await self.snapshot(ds, plan.next_number), plan.old
        current = plan.current
        if plan.duplicates:
            await self._relabel_pods(ds, dsrev.revision_hash_label(current))
        for duplicate in plan.duplicates:
            await delete_revision(self.client, duplicate)
        if plan.renumber:
            current = await update_revision_number(self.client, current, plan.next_number)
        return current, plan.old

    async def snapshot(self, ds: Obj, number: int) -> Obj:
        """dsc.snapshot: create the revision; on a name clash that is not ours, bump collisionCount."""
        body = dsrev.snapshot(ds, number)
        namespace = objects.namespace(ds)
        try:
            return await self.client.create(CONTROLLERREVISIONS, body, namespace)
        except ApiError as exc:
            if not exc.is_already_exists():
                raise
            clash = exc
        existing = await self.client.get(CONTROLLERREVISIONS, objects.name(body), namespace)
        if dsrev.matches(ds, existing):
            return existing
        fresh = await self.client.get(DAEMONSETS, objects.name(ds), namespace)
        if dsrev.collision_count(fresh) != dsrev.collision_count(ds):
            raise StaleCollisionCount(
                f"found a stale collision count ({dsrev.collision_count(ds)}, expected "
                f"{dsrev.collision_count(fresh)}) of DaemonSet {objects.name(ds)!r} while processing; "
                "will retry until it is updated")
        fresh.setdefault("status", {})["collisionCount"] = (dsrev.collision_count(fresh) or 0) + 1
        await self.client.update_status(DAEMONSETS, fresh, namespace)
        raise clash

    async def _relabel_pods(self, ds: Obj, to_hash: str) -> None:
        """dedupCurHistories: before a duplicate goes, every pod of the DaemonSet whose hash
        differs from the kept revision's gets that hash (as Kubernetes does it: all of them,
        not only the duplicate's), by a merge patch of the label."""
        for pod in self.claimable_pods(ds):
            if ownership.is_controlled_by(pod, ds) and objects.labels(pod).get(dsrev.HASH_LABEL) != to_hash:
                patch = {"metadata": {"labels": {dsrev.HASH_LABEL: to_hash}}}
                await self.client.patch(PODS, objects.name(pod), patch, objects.namespace(pod), patch_type="merge")

    async def cleanup_history(self, ds: Obj, old: Sequence[Obj], candidates: Sequence[Obj]) -> None:
        """cleanupHistory: keep revisionHistoryLimit old revisions and any a live pod uses."""
        owned = [p for p in candidates if ownership.is_controlled_by(p, ds)]
        by_node = nodes_to_daemon_pods(owned, include_deleted_terminal=True)
        live = {objects.labels(p).get(dsrev.HASH_LABEL) or "" for node_pods in by_node.values() for p in node_pods}
        for revision in dsrev.revisions_to_delete(ds, old, live - {""}):
            await delete_revision(self.client, revision)

    # -- failures -----------------------------------------------------------------------

    def _on_failure(self, ds: Obj, action: Action, error: Exception, remaining: Sequence[Action]) -> list[Action]:
        """Creates and deletes that never ran will not be observed: lower the expectations."""
        key = key_of(ds)
        for pending in remaining:
            if isinstance(pending, CreatePods):
                for _ in range(pending.count):
                    self.expectations.creation_observed(key)
            elif isinstance(pending, DeletePods):
                for pod_key in pending.keys:
                    self.expectations.deletion_observed(key, pod_key)
        return []
