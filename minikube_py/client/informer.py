"""Informers: keep a local cache of one resource in step with the API server.

The reflector loop is client-go's:

1. List (paged, at one consistent revision) and make the cache exactly that list,
   delivering the *differences* to handlers as DeltaFIFO's Replace does: new keys as
   on_add, changed resourceVersions as on_update, keys that vanished as on_delete with
   a `DeletedFinalStateUnknown` (the delete happened while we were not watching).
2. Watch from the list's resourceVersion, with bookmarks, applying each event to the
   cache and then telling the handlers.
3. When the watch ends at its timeout, watch again from the newest resourceVersion
   seen (bookmarks keep it fresh on quiet resources). When the server says 410 Gone /
   Expired, go back to 1 at once. When it ends the stream early (it drops watchers
   that fall behind, expecting them to re-list), go back to 1 after a backoff. Other
   errors (connection refused or reset, 5xx) retry the watch from the newest
   resourceVersion after a backoff; if that is too old by then, the 410 re-lists.
   Backoff is exponential, 0.8 s doubling to 30 s, jittered, on the injectable clock,
   and starts over after a watch that lasted a minute.

Handlers are plain synchronous callables, as in client-go: they run on the informer's
task, must be quick (typically: put a key on a work queue) and must not mutate the
objects they get. A handler added after the first sync is first told about every
cached object as on_add.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from minikube_py.client.clock import Clock, RealClock
from minikube_py.client.errors import ApiError
from minikube_py.client.resources import Resource
from minikube_py.client.rest import ApiClient, Selector, selector_string
from minikube_py.client.store import DeletedFinalStateUnknown, IndexFunc, Lister, Store, key_of

log = logging.getLogger("minikube_py.client.informer")

Obj = dict[str, Any]
MIN_WATCH_TIMEOUT = 300  # seconds; each watch asks for MIN..2*MIN at random, as client-go
BACKOFF_RESET_AFTER = 60.0  # a watch that lasted this long resets the retry backoff


@dataclass
class EventHandler:
    """Callbacks for cache changes; any may be None."""

    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None


class Backoff:
    """Exponential backoff with jitter on a Clock (client-go's reflector defaults)."""

    def __init__(self, clock: Clock, initial: float = 0.8, cap: float = 30.0, factor: float = 2.0,
                 jitter: float = 1.0) -> None:
        self.clock, self.initial, self.cap, self.factor, self.jitter = clock, initial, cap, factor, jitter
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next * (1 + random.random() * self.jitter)
        self._next = min(self._next * self.factor, self.cap)
        return min(delay, self.cap)

    async def sleep(self) -> None:
        await self.clock.sleep(self.next_delay())

    def reset(self) -> None:
        self._next = self.initial


class Informer:
    """A cache of one resource (optionally one namespace / selection) kept by a
    list-then-watch loop, with indexers, a lister and event handlers."""

    def __init__(self, client: ApiClient, resource: Resource, *, namespace: str | None = None,
                 label_selector: Selector = None, field_selector: str | None = None,
                 clock: Clock | None = None, page_size: int = 500,
                 min_watch_timeout: int = MIN_WATCH_TIMEOUT) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.label_selector = selector_string(label_selector)
        self.field_selector = field_selector
        self.clock = clock or RealClock()
        self.page_size = page_size
        self.min_watch_timeout = min_watch_timeout
        self.store = Store()
        self.lister = Lister(self.store)
        self.resource_version = ""  # newest revision the cache reflects
        self.relists = 0  # lists after the first: how often the watch could not resume
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Informer({self.resource}, namespace={self.namespace!r}, selector={self.label_selector!r})"

    # -- configuration ----------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.store.add_indexer(name, fn)

    def add_event_handler(self, handler: EventHandler | None = None, *,
                          on_add: Callable[[Obj], None] | None = None,
                          on_update: Callable[[Obj, Obj], None] | None = None,
                          on_delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None) -> EventHandler:
        """Register callbacks; if the cache is already synced, replay it as on_add."""
        handler = handler or EventHandler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set() and handler.on_add is not None:
            for obj in self.store.items():
                self._call(handler.on_add, obj)
        return handler

    def remove_event_handler(self, handler: EventHandler) -> None:
        self._handlers.remove(handler)

    # -- state ------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """True once the first list is in the cache and handlers were told about it."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait for the first sync; False on timeout (in real seconds)."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the loop as a task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer {self.resource}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        """List, then watch, until cancelled. An informer that synced before (stopped,
        then started again) first tries to resume its watch where it left off."""
        backoff = Backoff(self.clock)
        must_list = not self._synced.is_set()
        while True:
            try:
                if must_list:
                    await self._list_and_replace()
                    must_list = False
                ran_to_timeout, lasted = await self._watch_once()
                if lasted >= BACKOFF_RESET_AFTER:
                    backoff.reset()
                if ran_to_timeout:
                    continue
                log.info("%s: the server ended the watch after %.1fs; re-listing", self, lasted)
                must_list = True
            except ApiError as exc:
                if exc.is_gone():
                    log.info("%s: %s; re-listing", self, exc.message)
                    must_list = True
                    continue
                log.warning("%s: %s; retrying", self, exc)
            except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError) as exc:
                log.warning("%s: %s: %s; retrying", self, type(exc).__name__, exc)
            await backoff.sleep()

    # -- list -------------------------------------------------------------------------

    async def _list_and_replace(self) -> None:
        items, revision = await self.client.list_all(
            self.resource, self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, page_size=self.page_size)
        if self._synced.is_set():
            self.relists += 1
        for obj in items:
            self._fill_type(obj)
        self._replace(items)
        self.resource_version = revision
        self._synced.set()

    def _replace(self, items: list[Obj]) -> None:
        """Make the cache `items` and tell handlers what changed (DeltaFIFO.Replace)."""
        before = {key_of(o): o for o in self.store.items()}
        self.store.replace(items)
        for obj in items:
            old = before.pop(key_of(obj), None)
            if old is None:
                self._notify_add(obj)
            elif _rv(old) != _rv(obj):
                self._notify_update(old, obj)
        for key, old in before.items():
            self._notify_delete(DeletedFinalStateUnknown(key, old))

    # -- watch ------------------------------------------------------------------------

    async def _watch_once(self) -> tuple[bool, float]:
        """One watch from `resource_version`: (ran to its timeout, seconds it lasted).
        A watch the server ended early was dropped (we fell behind): re-list."""
        timeout = int(self.min_watch_timeout * (1 + random.random()))
        started = time.monotonic()  # network time, not the injectable clock
        async with self.client.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                     label_selector=self.label_selector, field_selector=self.field_selector,
                                     allow_bookmarks=True, timeout_seconds=timeout) as stream:
            async for event_type, obj in stream:
                self._apply(event_type, obj)
        lasted = time.monotonic() - started
        return lasted >= timeout - 1, lasted

    def _apply(self, event_type: str, obj: Obj) -> None:
        rv = _rv(obj)
        if event_type == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        self._fill_type(obj)
        if event_type in ("ADDED", "MODIFIED"):
            old = self.store.upsert(obj)
            if old is None:
                self._notify_add(obj)
            else:
                self._notify_update(old, obj)
        elif event_type == "DELETED":
            self.store.delete(key_of(obj))
            self._notify_delete(obj)
        else:
            log.warning("%s: unknown watch event type %r", self, event_type)
        if rv:
            self.resource_version = rv

    def _fill_type(self, obj: Obj) -> None:
        # Lists may omit each item's kind and apiVersion; cache complete objects.
        if "kind" not in obj:
            obj["kind"] = self.resource.kind
        if "apiVersion" not in obj:
            obj["apiVersion"] = self.resource.api_version

    # -- handlers ---------------------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one broken handler must not stop the informer
            log.exception("%s: event handler %r failed", self, fn)

    def _notify_add(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for h in list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _notify_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for h in list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by every controller
    that asks: several controllers watching Pods cost one watch and one cache."""

    def __init__(self, client: ApiClient, *, namespace: str | None = None, clock: Clock | None = None,
                 min_watch_timeout: int = MIN_WATCH_TIMEOUT) -> None:
        self.client = client
        self.namespace = namespace
        self.clock = clock or RealClock()
        self.min_watch_timeout = min_watch_timeout
        self._informers: dict[tuple[Resource, str | None, str | None, str | None], Informer] = {}

    def informer(self, resource: Resource, *, namespace: str | None = None, label_selector: Selector = None,
                 field_selector: str | None = None) -> Informer:
        """The shared informer for this selection (created on first request)."""
        ns = namespace if namespace is not None else self.namespace
        key = (resource, ns if resource.namespaced else None, selector_string(label_selector), field_selector or None)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, resource, namespace=key[1], label_selector=key[2],
                                field_selector=key[3], clock=self.clock, min_watch_timeout=self.min_watch_timeout)
            self._informers[key] = informer
        return informer

    def lister(self, resource: Resource, **selection: Any) -> Lister:
        return self.informer(resource, **selection).lister

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not yet running (call again after adding more)."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once every informer has synced; False on timeout."""
        results = await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers.values()))
        return all(results)

    async def shutdown(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
