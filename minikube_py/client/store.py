"""The informer cache: objects by "namespace/name", with secondary indexes, and listers.

This is client-go's `cache.Indexer` shape. The store keeps the newest object the
informer has seen for each key; indexers map an object to index values (its namespace,
the UIDs of its owners, anything a controller needs) so `by_index` answers "pods owned
by ReplicaSet uid X" without scanning every pod.

Concurrency: one event loop, no threads, and no `await` inside a mutation, so every
method is atomic with respect to other tasks ("thread-unsafe but async-safe").

Objects in the store are shared with every handler and lister caller: never mutate
them. `deep_copy()` first, as client-go asks you to `DeepCopy()` cache objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from minikube_py.client import labels

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "by_owner_uid"


def key_of(obj: Obj | DeletedFinalStateUnknown) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects (MetaNamespaceKeyFunc)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name", "")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name); namespace is "" for a cluster-scoped key."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def deep_copy(obj: Obj) -> Obj:
    """An independent copy of a JSON object (fast: an orjson round trip)."""
    return orjson.loads(orjson.dumps(obj))


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A delete the informer missed (it happened while the watch was down): the key
    and the last state the cache had. Delivered to on_delete in place of the object."""

    key: str
    obj: Obj


def namespace_index(obj: Obj) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def owner_uid_index(obj: Obj) -> list[str]:
    """The UIDs in metadata.ownerReferences (index OWNER_UID_INDEX)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [ref["uid"] for ref in refs if ref.get("uid")]


class Store:
    """Objects by key plus indexes; `namespace` is always indexed."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexer(NAMESPACE_INDEX, namespace_index)

    # -- indexes ----------------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add an index; existing objects are indexed at once."""
        if name in self._indexers:
            raise ValueError(f"indexer {name!r} already exists")
        self._indexers[name] = fn
        self._indices[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, key, obj)

    def has_indexer(self, name: str) -> bool:
        return name in self._indexers

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]

    def index_keys(self, name: str, value: str) -> list[str]:
        if name not in self._indices:
            raise KeyError(f"no indexer {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Objects whose indexer `name` yields `value`, in key order."""
        return [self._items[k] for k in self.index_keys(name, value)]

    def index_values(self, name: str) -> list[str]:
        return sorted(self._indices[name])

    # -- objects ----------------------------------------------------------------------

    def upsert(self, obj: Obj) -> Obj | None:
        """Add or replace an object; returns the previous one for its key."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            for name in self._indexers:
                self._unindex_one(name, key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index_one(name, key, obj)
        return old

    def delete(self, key: str) -> Obj | None:
        """Remove a key; returns the object it held."""
        old = self._items.pop(key, None)
        if old is not None:
            for name in self._indexers:
                self._unindex_one(name, key, old)
        return old

    def replace(self, objects: Iterable[Obj]) -> None:
        """Make the store hold exactly `objects` (indexes rebuilt)."""
        self._items = {key_of(o): o for o in objects}
        for name in self._indexers:
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def keys(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[Obj]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class Lister:
    """Read-only views of a store, the way controllers ask: by name, by namespace and
    selector, by owner."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._store.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None,
             selector: str | Mapping[str, str] | labels.Selector | None = None) -> list[Obj]:
        """Objects in `namespace` (None: all) whose labels match `selector`."""
        candidates = (self._store.by_index(NAMESPACE_INDEX, namespace) if namespace
                      else self._store.items())
        match = labels.as_selector(selector)
        if match.empty():
            return list(candidates)
        return [o for o in candidates if match.matches_object(o)]

    def by_index(self, name: str, value: str) -> list[Obj]:
        return self._store.by_index(name, value)

    def by_owner_uid(self, uid: str) -> list[Obj]:
        """Objects with an ownerReference to `uid` (the index is added on first use)."""
        if not self._store.has_indexer(OWNER_UID_INDEX):
            self._store.add_indexer(OWNER_UID_INDEX, owner_uid_index)
        return self._store.by_index(OWNER_UID_INDEX, uid)

    def __len__(self) -> int:
        return len(self._store)
