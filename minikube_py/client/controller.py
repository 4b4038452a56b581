"""The controller loop: N workers taking keys off a work queue and reconciling them.

Level-triggered, as controller-runtime: a request is only a key ("namespace/name"),
never the event that caused it; `reconcile(key)` reads the current state (from
informer caches) and writes the difference. What happens to the key afterwards:

    reconcile raised TerminalError  -> logged, not retried (forgotten)
    reconcile raised anything else  -> logged, re-added with per-key backoff
    Result(requeue_after=s)         -> forgotten, re-added after s seconds
    Result(requeue=True)            -> re-added with per-key backoff
    None / Result()                 -> forgotten (its backoff starts over next time)

The queue guarantees one worker per key, so reconcile never races itself on an object.
reconcile must not sleep: it asks to be called again instead.

`enqueue_object`, `enqueue_owner` and `enqueue_mapped` turn informer events into keys,
like controller-runtime's EnqueueRequestForObject / EnqueueRequestForOwner /
EnqueueRequestsFromMapFunc.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from minikube_py.client.errors import ApiError
from minikube_py.client.informer import EventHandler
from minikube_py.client.resources import Resource
from minikube_py.client.store import DeletedFinalStateUnknown, key_of
from minikube_py.client.workqueue import ShutDown, WorkQueue

log = logging.getLogger("minikube_py.client.controller")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for: nothing, a backoff requeue, or a requeue after a delay."""

    requeue: bool = False
    requeue_after: float | None = None


class TerminalError(Exception):
    """A failure retrying cannot fix (invalid spec, ...): logged, never requeued.
    A new event for the object still enqueues it as usual."""


Reconcile = Callable[[str], Awaitable[Result | None]]


class Synced(Protocol):
    async def wait_synced(self, timeout: float | None = None) -> bool: ...


class Controller:
    """Runs `reconcile` over the keys of `queue` with `workers` concurrent workers."""

    def __init__(self, name: str, queue: WorkQueue[str], reconcile: Reconcile, *, workers: int = 1,
                 wait_for: Sequence[Synced] = ()) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.queue = queue
        self.reconcile = reconcile
        self.workers = workers
        self.wait_for = list(wait_for)
        self.reconciles = 0  # calls made
        self.errors = 0  # calls that raised (terminal ones included)

    async def run(self) -> None:
        """Wait for the informers in `wait_for` to sync, then work until cancelled;
        on the way out the queue is shut down."""
        for informer in self.wait_for:
            await informer.wait_synced()
        log.info("starting controller %s with %d workers", self.name, self.workers)
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("stopped controller %s", self.name)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> None:
        """Reconcile one key and decide its future (the table in the module doc)."""
        self.reconciles += 1
        try:
            result = await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except TerminalError as exc:
            self.errors += 1
            log.error("%s: reconcile %s failed, not retrying: %s", self.name, key, exc)
            self.queue.forget(key)
            return
        except Exception as exc:  # noqa: BLE001 - any failure means: try again later
            self.errors += 1
            self._log_error(key, exc)
            self.queue.add_rate_limited(key)
            return
        if result is not None and result.requeue_after is not None and result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result is not None and result.requeue:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)

    def _log_error(self, key: str, exc: Exception) -> None:
        retries = self.queue.num_requeues(key)
        if isinstance(exc, ApiError) and exc.is_conflict():
            # Routine: someone wrote the object since our cache saw it; the retry reads anew.
            log.info("%s: reconcile %s: %s (retry %d)", self.name, key, exc, retries)
        elif isinstance(exc, ApiError):
            log.warning("%s: reconcile %s: %s (retry %d)", self.name, key, exc, retries)
        else:
            log.error("%s: reconcile %s failed (retry %d)", self.name, key, retries, exc_info=exc)


# -- from informer events to keys -------------------------------------------------------


def _unwrap(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def enqueue_object(queue: WorkQueue[str]) -> EventHandler:
    """Every add, update and delete enqueues the object's own key."""
    return EventHandler(
        on_add=lambda obj: queue.add(key_of(obj)),
        on_update=lambda old, new: queue.add(key_of(new)),
        on_delete=lambda obj: queue.add(key_of(obj)),
    )


def owner_keys(obj: Obj, owner: Resource, *, controller_only: bool = True) -> list[str]:
    """Keys of `obj`'s owners of `owner`'s group and kind (only its controller, by
    default). A namespaced owner lives in the object's namespace."""
    meta = obj.get("metadata") or {}
    keys = []
    for ref in meta.get("ownerReferences") or []:
        if controller_only and not ref.get("controller"):
            continue
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        if ref.get("kind") != owner.kind or group != owner.group:
            continue
        namespace = meta.get("namespace") if owner.namespaced else None
        keys.append(f"{namespace}/{ref['name']}" if namespace else ref["name"])
    return keys


def enqueue_owner(queue: WorkQueue[str], owner: Resource, *, controller_only: bool = True) -> EventHandler:
    """Enqueue the owner (e.g. the ReplicaSet of a Pod) instead of the object; on an
    update whose ownership changed, both the old and the new owner."""
    def add_owners(*objs: Obj | DeletedFinalStateUnknown) -> None:
        for obj in objs:
            for key in owner_keys(_unwrap(obj), owner, controller_only=controller_only):
                queue.add(key)

    return EventHandler(on_add=add_owners, on_update=add_owners, on_delete=add_owners)


def enqueue_mapped(queue: WorkQueue[str], map_fn: Callable[[Obj], Iterable[str]]) -> EventHandler:
    """Enqueue whatever keys `map_fn(object)` returns (on update: for old and new)."""
    def add_mapped(*objs: Obj | DeletedFinalStateUnknown) -> None:
        for obj in objs:
            for key in map_fn(_unwrap(obj)):
                queue.add(key)

    return EventHandler(on_add=add_mapped, on_update=add_mapped, on_delete=add_mapped)
