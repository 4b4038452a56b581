"""The storage contract every backend implements (SQLite today, etcd later).

The model is etcd's, as kine shapes it: a flat keyspace of byte values, one global
revision counter bumped by every write, each key remembering the revision that created
it and the one that last modified it. Optimistic concurrency is compare-and-swap on a
key's mod_revision; watch streams every change after a revision, in revision order.
The API server stores objects under keys like `/registry/deployments.apps/ns/name`
and uses a key's mod_revision as the object's resourceVersion.

Backends translate their own failures into the few exceptions below, once, at the
boundary, so the API server above never sees a driver error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Base class of storage failures."""


class KeyExistsError(StorageError):
    """create() of a key that already exists."""


class KeyNotFoundError(StorageError):
    """update()/delete() of a key that does not exist."""


class ConflictError(StorageError):
    """The key's mod_revision is not the expected one (compare-and-swap failed).
    `current` holds the key's current value, or None if it was deleted."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(key)
        self.current = current


class CompactedError(StorageError):
    """The requested revision was compacted away: list/watch must restart from now
    (the API server answers 410 Gone, reason Expired)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (oldest kept: {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    """The requested revision is newer than the store's current revision."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change. type is 'PUT' (create or update) or 'DELETE'. For PUT, `kv` is the new
    value and `prev` the previous one (None on create). For DELETE, `kv.value` is the last
    value before deletion, `kv.mod_revision` the revision of the delete, and `prev` the
    deleted value as it was stored."""

    type: str
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def created(self) -> bool:
        return self.type == "PUT" and self.prev is None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when `limit` cut the list; continue from items[-1].key
    remaining: int  # how many more keys match after the last returned one (0 if not more)


class Watcher(Protocol):
    """A stream of events after a revision. Iterate it; close() when done. If the
    consumer falls too far behind, the backend ends the iteration by raising
    `WatchDroppedError` (the consumer relists), rather than buffering without bound."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def close(self) -> None: ...


class WatchDroppedError(StorageError):
    """The watcher's buffer overflowed; it must re-list and watch again."""


class Storage(Protocol):
    """The backend interface. All keys are str, all values bytes."""

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The value of `key` now (revision 0) or as of `revision`; None if absent."""

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str = "") -> ListResult:
        """Keys starting with `prefix`, in key order, as of `revision` (0 = now),
        beginning after key `start_after`, at most `limit` (0 = no limit).
        Raises CompactedError / FutureRevisionError for revisions out of range."""

    async def count(self, prefix: str) -> int:
        """How many live keys start with `prefix`."""

    async def create(self, key: str, value: bytes | None = None, *,
                     value_fn: Callable[[int], bytes] | None = None) -> KeyValue:
        """Create; raises KeyExistsError. Returns the stored KeyValue.
        Pass either `value` or `value_fn`: the backend calls value_fn(revision) with the
        revision this write will get, inside the write, and stores the bytes it returns
        (so the API server can put resourceVersion inside the value). If value_fn raises,
        nothing is written."""

    async def update(self, key: str, value: bytes | None = None, *, expected_revision: int,
                     value_fn: Callable[[int], bytes] | None = None) -> KeyValue:
        """Replace if the key's mod_revision == expected_revision (0 = unconditional);
        raises KeyNotFoundError, ConflictError. `value` or `value_fn` as for create()."""

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete (CAS as for update); returns the deleted KeyValue with the delete's
        revision as mod_revision. Raises KeyNotFoundError, ConflictError."""

    def watch(self, prefix: str, *, revision: int) -> Watcher:
        """Events for keys under `prefix` with revision > `revision`. Raises
        CompactedError (at once, or from the iterator) if `revision` is compacted."""

    def current_revision(self) -> int: ...

    def compacted_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget history at or before `revision` (keeping each key's newest value)."""

    async def close(self) -> None: ...
