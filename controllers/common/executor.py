"""The runtime half of the pure reconcilers: execute their actions, and route informer events.

The reconcile functions (controllers/deployment, controllers/replicaset) return ordered
`actions.py` dataclasses and never call the API. `ActionExecutor.execute` makes those
calls through `ApiClient`, as Kubernetes' controllers make them inside one sync:

- In order; the first failure stops the sync and is raised, so the `Controller` requeues
  the key with backoff. A failure may have follow-up actions first (`on_failure`): the
  ReplicaSet's ReplicaFailure condition, the Deployment's ReplicaSetCreateError.
- A 409 Conflict (our cache was stale), or AlreadyExists for a ReplicaSet the cache does
  not show yet, also stops the sync, but returns `Result(requeue=True)` without an error:
  it is routine, and the next sync reads the newer cache (client-go's "requeue on conflict").
- `RequeueAfter` actions become `Result(requeue_after=...)` (the earliest wins; 0 means
  "again, rate limited").
- Pods are created in slow-start batches (1, 2, 4, ...: controller.slowStartBatch) so a
  failing template costs one failed call, not five hundred; creates that failed or never
  ran lower the expectations, deletes that failed mark the deletion observed. Pod events
  (SuccessfulCreate, FailedCreate, SuccessfulDelete, FailedDelete) use the action helpers.
- Adoption first re-reads the owner from the API (RecheckDeletionTimestamp): an owner that
  is being deleted, or was deleted and recreated, must not adopt anything.
- Patches are sent exactly as the actions carry them (adopt/release: strategic merge with
  the child's uid). `ScaleReplicaSet` is a merge patch of spec.replicas and the full
  annotations (removed keys as null), with metadata.resourceVersion as the precondition
  when the action gives one (Kubernetes sends an Update of its cached copy).

`OwnerEnqueuer` is the informer side every workload controller shares: it turns events of
children (ReplicaSets of Deployments, Pods of ReplicaSets) into the owner's key, resolving
controller references against the owner cache and offering orphans to every owner whose
selector matches, as Kubernetes' add/update/delete handlers do.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controllers.common import objects, ownership
from controllers.common.actions import (
    Action,
    AdoptPod,
    AdoptReplicaSet,
    CreatePods,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Event,
    ReleasePod,
    ReleaseReplicaSet,
    RequeueAfter,
    ScaleReplicaSet,
    SetExpectations,
    UpdateReplicaSet,
    UpdateStatus,
)
from controllers.common.expectations import ExpectationsStore
from minikube_py.client import (
    PODS,
    REPLICASETS,
    ApiClient,
    ApiError,
    Clock,
    DeletedFinalStateUnknown,
    EventHandler,
    EventRecorder,
    Lister,
    RealClock,
    Resource,
    Result,
    WorkQueue,
    deep_copy,
    from_label_selector,
    is_conflict,
    is_not_found,
    key_of,
)

log = logging.getLogger("controllers.executor")

Obj = dict[str, Any]
# (reconciled object as last written, failed action, error, actions that did not run) -> follow-ups
FailureHook = Callable[[Obj, Action, Exception, Sequence[Action]], Sequence[Action]]
SLOW_START_INITIAL_BATCH = 1
NAMESPACE_TERMINATING = "NamespaceTerminating"


class _Requeue(Exception):
    """Stop this sync and requeue (rate limited) without reporting an error."""


def error_text(exc: BaseException) -> str:
    """What Kubernetes prints for an error (`err.Error()`): the Status message."""
    if isinstance(exc, ApiError):
        return exc.message or str(exc)
    return str(exc) or type(exc).__name__


def _has_cause(exc: BaseException, cause: str) -> bool:
    """apierrors.HasStatusCause (a StatusCause's `type` is `reason` on the wire)."""
    if not isinstance(exc, ApiError):
        return False
    return any(c.get("reason") == cause for c in exc.details.get("causes") or [])


def _result(delays: Sequence[float]) -> Result:
    if not delays:
        return Result()
    soonest = min(delays)
    return Result(requeue=True) if soonest <= 0 else Result(requeue_after=soonest)


@dataclass
class _Run:
    """One execution: the reconciled object as last written and the children written."""

    obj: Obj
    written: dict[str, Obj] = field(default_factory=dict)
    owner_checked: bool = False

    @property
    def namespace(self) -> str:
        return objects.namespace(self.obj)


class ActionExecutor:
    """Executes action lists for objects of `resource` (the reconciled kind)."""

    def __init__(self, client: ApiClient, recorder: EventRecorder, resource: Resource, *,
                 expectations: ExpectationsStore | None = None, listers: Mapping[Resource, Lister] | None = None,
                 clock: Clock | None = None, on_failure: FailureHook | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.resource = resource
        self.expectations = expectations
        self.listers = dict(listers or {})
        self.clock = clock or RealClock()
        self.on_failure = on_failure

    async def execute(self, obj: Obj, actions: Sequence[Action]) -> Result:
        """Run `actions` for `obj` (its cached copy, never mutated); see the module docstring."""
        run = _Run(obj)
        delays: list[float] = []
        for index, action in enumerate(actions):
            if isinstance(action, RequeueAfter):
                delays.append(action.seconds)
                continue
            try:
                await self._execute(run, action)
            except _Requeue as stop:
                log.debug("%s %s: %s; requeueing", self.resource.kind, key_of(obj), stop)
                return Result(requeue=True)
            except Exception as exc:
                if is_conflict(exc):
                    log.debug("%s %s: %s; requeueing", self.resource.kind, key_of(obj), exc)
                    return Result(requeue=True)
                await self._follow_up(run, action, exc, actions[index + 1:])
                raise
        return _result(delays)

    async def _execute(self, run: _Run, action: Action) -> None:
        match action:
            case Event():
                self.recorder.event(run.obj, action.type, action.reason, action.message)
            case UpdateStatus():
                await self._update_status(run, action)
            case SetExpectations():
                self._store().apply(key_of(run.obj), action, self.clock.now())
            case CreatePods():
                await self._create_pods(run, action)
            case DeletePods():
                await self._delete_pods(run, action)
            case AdoptPod() | AdoptReplicaSet():
                await self._adopt(run, PODS if isinstance(action, AdoptPod) else REPLICASETS, action.name, action.patch)
            case ReleasePod() | ReleaseReplicaSet():
                resource = PODS if isinstance(action, ReleasePod) else REPLICASETS
                await self._release(run, resource, action.name, action.patch)
            case _:
                await self._execute_replica_set(run, action)

    async def _execute_replica_set(self, run: _Run, action: Action) -> None:
        match action:
            case CreateReplicaSet():
                await self._create_replica_set(run, action.obj)
            case ScaleReplicaSet():
                await self._scale_replica_set(run, action)
            case UpdateReplicaSet():
                updated = await self.client.update(REPLICASETS, action.obj, run.namespace)
                run.written[objects.name(updated)] = updated
            case DeleteReplicaSet():
                try:
                    await self.client.delete(REPLICASETS, action.name, run.namespace)
                except ApiError as exc:
                    if not exc.is_not_found():
                        raise
            case _:
                raise TypeError(f"no way to execute {action!r}")

    async def _follow_up(self, run: _Run, action: Action, exc: Exception, remaining: Sequence[Action]) -> None:
        """Best effort: record a failure as the controller's own follow-up actions say."""
        if self.on_failure is None:
            return
        try:
            for follow_up in self.on_failure(run.obj, action, exc, remaining):
                await self._execute(run, follow_up)
        except Exception as follow_up_exc:  # noqa: BLE001 - the original error is what counts
            level = logging.DEBUG if is_conflict(follow_up_exc) else logging.WARNING
            log.log(level, "%s %s: recording the failure (%s) failed too: %s", self.resource.kind,
                    key_of(run.obj), error_text(exc), error_text(follow_up_exc))

    def _store(self) -> ExpectationsStore:
        if self.expectations is None:
            raise TypeError(f"{self.resource.kind} actions need an ExpectationsStore")
        return self.expectations

    # -- the reconciled object --------------------------------------------------------

    async def _update_status(self, run: _Run, action: UpdateStatus) -> None:
        """PUT the status subresource of our cached copy (its resourceVersion guards it)."""
        body = deep_copy(run.obj)
        body["status"] = copy.deepcopy(action.status)
        if action.annotations is not None:
            body.setdefault("metadata", {})["annotations"] = dict(action.annotations)
        run.obj = await self.client.update_status(self.resource, body, run.namespace)

    async def _recheck_owner(self, run: _Run) -> None:
        """RecheckDeletionTimestamp: a live read of the owner before its first adoption."""
        fresh = await self.client.get(self.resource, objects.name(run.obj), run.namespace or None)
        if objects.uid(fresh) != objects.uid(run.obj):
            raise RuntimeError(f"original {self.resource.kind} {key_of(run.obj)} is gone: got uid "
                               f"{objects.uid(fresh)}, wanted {objects.uid(run.obj)}")
        if objects.being_deleted(fresh):
            raise RuntimeError(f"{key_of(run.obj)} has just been deleted at "
                               f"{objects.metadata(fresh).get('deletionTimestamp')}")
        run.owner_checked = True

    # -- children: adopt and release ----------------------------------------------------

    async def _adopt(self, run: _Run, resource: Resource, name: str, patch: Obj) -> None:
        if not run.owner_checked:
            await self._recheck_owner(run)
        try:
            await self.client.patch(resource, name, patch, run.namespace, patch_type="strategic")
        except ApiError as exc:
            if exc.is_not_found():
                # The reconcile counted it as ours: sync again rather than act on that count.
                raise _Requeue(f"{resource.kind} {name} was gone before it could be adopted") from exc
            raise

    async def _release(self, run: _Run, resource: Resource, name: str, patch: Obj) -> None:
        try:
            await self.client.patch(resource, name, patch, run.namespace, patch_type="strategic")
        except ApiError as exc:
            # Gone, or no longer ours (422 for a uid that changed): nothing to release.
            if not (exc.is_not_found() or exc.is_invalid()):
                raise

    # -- ReplicaSets --------------------------------------------------------------------

    async def _create_replica_set(self, run: _Run, rs: Obj) -> None:
        try:
            created = await self.client.create(REPLICASETS, rs, run.namespace)
        except ApiError as exc:
            if exc.is_already_exists():
                # The reconcile checks name collisions in the cache; AlreadyExists means the
                # cache has not caught up with a ReplicaSet yet. The next sync will see it.
                raise _Requeue(f"ReplicaSet {objects.name(rs)} exists but is not cached yet") from exc
            raise
        run.written[objects.name(created)] = created

    async def _scale_replica_set(self, run: _Run, action: ScaleReplicaSet) -> None:
        base = run.written.get(action.name)
        if base is None and REPLICASETS in self.listers:
            base = self.listers[REPLICASETS].get(action.name, run.namespace or None)
        annotations: dict[str, Any] = {k: None for k in objects.annotations(base) if k not in action.annotations}
        annotations.update(action.annotations)
        metadata: Obj = {"annotations": annotations}
        if action.resource_version is not None:
            metadata["resourceVersion"] = action.resource_version
        patch = {"metadata": metadata, "spec": {"replicas": action.replicas}}
        run.written[action.name] = await self.client.patch(REPLICASETS, action.name, patch, run.namespace)

    # -- pods ---------------------------------------------------------------------------

    async def _create_pods(self, run: _Run, action: CreatePods) -> None:
        """slowStartBatch: batches of 1, 2, 4, ...; the first batch with an error is the last."""
        namespace = action.namespace or run.namespace
        remaining, successes, batch = action.count, 0, min(action.count, SLOW_START_INITIAL_BATCH)
        first_error: BaseException | None = None
        while batch > 0:
            results = await asyncio.gather(*(self._create_pod(run, action, namespace) for _ in range(batch)),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            successes += batch - len(errors)
            if errors:
                first_error = errors[0]
                break
            remaining -= batch
            batch = min(2 * batch, remaining)
        if self.expectations is not None:
            # The informer will never report creates that failed or never ran.
            for _ in range(action.count - successes):
                self.expectations.creation_observed(key_of(run.obj))
        if first_error is not None:
            raise first_error

    async def _create_pod(self, run: _Run, action: CreatePods, namespace: str) -> None:
        try:
            pod = await self.client.create(PODS, action.pod(), namespace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _has_cause(exc, NAMESPACE_TERMINATING):
                return  # every create will fail until the namespace is gone: not an error
            self._event(run, action.failure_event(error_text(exc)))
            raise
        self._event(run, action.success_event(objects.name(pod)))

    async def _delete_pods(self, run: _Run, action: DeletePods) -> None:
        """All at once, as Kubernetes; the first error (other than 404) is raised after."""
        namespace = action.namespace or run.namespace
        keys = action.keys or tuple(f"{namespace}/{name}" for name in action.names)
        results = await asyncio.gather(*(self._delete_pod(run, action, namespace, name, key)
                                         for name, key in zip(action.names, keys, strict=True)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _delete_pod(self, run: _Run, action: DeletePods, namespace: str, name: str, pod_key: str) -> None:
        try:
            await self.client.delete(PODS, name, namespace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.expectations is not None:
                # The informer will not observe this deletion.
                self.expectations.deletion_observed(key_of(run.obj), pod_key)
            if is_not_found(exc):
                return
            self._event(run, action.failure_event(error_text(exc)))
            raise
        self._event(run, action.success_event(name))

    def _event(self, run: _Run, event: Event) -> None:
        self.recorder.event(run.obj, event.type, event.reason, event.message)


# -- informer side: from a child's events to its owner's key ------------------------------


def unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object of a delete event, also when the informer missed the delete."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def resolve_controller_ref(namespace: str, ref: Mapping[str, Any] | None, kind: str, owners: Lister) -> Obj | None:
    """resolveControllerRef: the cached owner `ref` names, if its kind and uid match."""
    if ref is None or ref.get("kind") != kind:
        return None
    owner = owners.get(str(ref.get("name", "")), namespace or None)
    if owner is None or objects.uid(owner) != ref.get("uid"):
        return None
    return owner


def selecting_owners(obj: Obj, owners: Lister) -> list[Obj]:
    """Owners in `obj`'s namespace whose valid, non-empty spec.selector matches its labels."""
    found = []
    for owner in owners.list(objects.namespace(obj) or None):
        try:
            selector = from_label_selector(objects.spec(owner).get("selector"))
        except ValueError:
            continue
        if not selector.empty() and selector.matches(objects.labels(obj)):
            found.append(owner)
    return found


ChildHook = Callable[[str, Obj], None]  # (owner key, child)


class OwnerEnqueuer:
    """Child events -> owner keys, as Kubernetes' workload controllers route them.

    A child with a controller reference enqueues that owner (if cached with the same uid);
    an orphan enqueues every owner whose selector matches it (on update: only if its labels
    or controller reference changed), so one of them may adopt it. `on_created` and
    `on_deleted` see (owner key, child) for controlled children, for expectations; a child
    that shows up or turns up being deleted counts as deleted, never as created.
    """

    def __init__(self, queue: WorkQueue[str], owners: Lister, kind: str, *,
                 on_created: ChildHook | None = None, on_deleted: ChildHook | None = None) -> None:
        self.queue = queue
        self.owners = owners
        self.kind = kind
        self.on_created = on_created
        self.on_deleted = on_deleted

    def handler(self) -> EventHandler:
        return EventHandler(on_add=self.added, on_update=self.updated, on_delete=self.deleted)

    def _owner(self, child: Obj, ref: Mapping[str, Any] | None) -> Obj | None:
        return resolve_controller_ref(objects.namespace(child), ref, self.kind, self.owners)

    def _enqueue_selecting(self, child: Obj) -> None:
        for owner in selecting_owners(child, self.owners):
            self.queue.add(key_of(owner))

    def added(self, child: Obj) -> None:
        if objects.being_deleted(child):
            self.deleted(child)  # e.g. after a restart: not a creation to observe
            return
        ref = ownership.controller_of(child)
        if ref is None:
            self._enqueue_selecting(child)
            return
        owner = self._owner(child, ref)
        if owner is not None:
            if self.on_created is not None:
                self.on_created(key_of(owner), child)
            self.queue.add(key_of(owner))

    def updated(self, old: Obj, cur: Obj) -> None:
        if objects.metadata(old).get("resourceVersion") == objects.metadata(cur).get("resourceVersion"):
            return
        labels_changed = objects.labels(old) != objects.labels(cur)
        if objects.being_deleted(cur):
            self.deleted(cur)
            if labels_changed:
                self.deleted(old)
            return
        old_ref, cur_ref = ownership.controller_of(old), ownership.controller_of(cur)
        if old_ref != cur_ref and old_ref is not None:
            previous = self._owner(old, old_ref)
            if previous is not None:
                self.queue.add(key_of(previous))
        if cur_ref is not None:
            owner = self._owner(cur, cur_ref)
            if owner is not None:
                self.queue.add(key_of(owner))
            return
        if labels_changed or old_ref != cur_ref:
            self._enqueue_selecting(cur)

    def deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        child = unwrap(obj)
        owner = self._owner(child, ownership.controller_of(child))
        if owner is None:
            return
        if self.on_deleted is not None:
            self.on_deleted(key_of(owner), child)
        self.queue.add(key_of(owner))
