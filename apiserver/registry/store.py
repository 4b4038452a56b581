"""Objects on top of the key-value store: what genericregistry.Store is in Kubernetes.

It turns the byte-level storage contract into object semantics: keys from resource,
namespace and name; `metadata.resourceVersion` = the revision of the write (stored inside
the value, so a GET serves the stored bytes without re-encoding); optimistic concurrency
(`guaranteed_update` re-reads and re-applies a change on conflict unless the caller gave a
resourceVersion precondition); consistent paged lists; and storage failures translated
into Kubernetes errors. Kind-specific rules (defaults, validation, status handling) are
not here: the handlers run them inside the update function they pass in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from apiserver import errors
from apiserver.registry import keys
from apiserver.registry.resource import ResourceInfo
from apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Storage,
)

Obj = dict[str, Any]
UpdateFn = Callable[[Obj | None], Awaitable[Obj | None]]

_MAX_UPDATE_ATTEMPTS = 20


@dataclass
class ListPage:
    items: list[Obj]
    revision: int
    continue_token: str
    remaining: int | None


def decode(kv: KeyValue) -> Obj:
    return orjson.loads(kv.value)


def _encoder(obj: Obj) -> Callable[[int], bytes]:
    def encode(revision: int) -> bytes:
        obj["metadata"]["resourceVersion"] = str(revision)
        return orjson.dumps(obj)

    return encode


def name_of(info: ResourceInfo, obj: Obj) -> str:
    return obj.get("metadata", {}).get("name", "")


class ObjectStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def key(self, info: ResourceInfo, namespace: str | None, name: str) -> str:
        return keys.object_key(info.storage_resource, namespace if info.namespaced else None, name)

    async def get_raw(self, info: ResourceInfo, namespace: str | None, name: str) -> KeyValue:
        kv = await self.storage.get(self.key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, name, info.group)
        return kv

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        return decode(await self.get_raw(info, namespace, name))

    async def try_get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj | None:
        kv = await self.storage.get(self.key(info, namespace, name))
        return None if kv is None else decode(kv)

    async def create(self, info: ResourceInfo, obj: Obj, *, dry_run: bool = False) -> Obj:
        meta = obj["metadata"]
        key = self.key(info, meta.get("namespace"), meta["name"])
        if dry_run:
            if await self.storage.get(key) is not None:
                raise errors.already_exists(info.plural, meta["name"], info.group)
            meta.pop("resourceVersion", None)
            return obj
        try:
            await self.storage.create(key, value_fn=_encoder(obj))
        except KeyExistsError:
            raise errors.already_exists(info.plural, meta["name"], info.group) from None
        return obj

    async def guaranteed_update(
        self, info: ResourceInfo, namespace: str | None, name: str, update: UpdateFn, *,
        precondition_rv: str = "", dry_run: bool = False, allow_create: bool = False,
    ) -> tuple[Obj | None, Obj]:
        """Read-modify-write with compare-and-swap, retried on conflict.

        `update(current)` returns the new object, or None to leave the stored one as it
        is (a no-op). current is None only when `allow_create` (e.g. server-side apply of
        a missing object). With `precondition_rv`, a stale object is a 409 Conflict and
        nothing is retried. Returns (old, new).
        """
        key = self.key(info, namespace, name)
        for _ in range(_MAX_UPDATE_ATTEMPTS):
            kv = await self.storage.get(key)
            if kv is None and not allow_create:
                raise errors.not_found(info.plural, name, info.group)
            current = decode(kv) if kv is not None else None
            if current is not None and precondition_rv and precondition_rv != current["metadata"].get("resourceVersion"):
                raise errors.conflict(info.plural, name, info.group)
            new = await update(None if current is None else decode(kv))
            if new is None:
                return current, current  # type: ignore[return-value]
            if dry_run:
                return current, new
            try:
                if kv is None:
                    await self.storage.create(key, value_fn=_encoder(new))
                else:
                    await self.storage.update(key, value_fn=_encoder(new), expected_revision=kv.mod_revision)
            except (ConflictError, KeyExistsError, KeyNotFoundError):
                if precondition_rv:
                    raise errors.conflict(info.plural, name, info.group) from None
                continue
            return current, new
        raise errors.conflict(info.plural, name, info.group, "too many concurrent updates, please retry")

    async def delete_now(self, info: ResourceInfo, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Remove the object from storage at its current revision (CAS); returns the
        deleted object carrying the delete's revision as resourceVersion."""
        meta = obj["metadata"]
        if dry_run:
            return obj
        key = self.key(info, meta.get("namespace"), meta["name"])
        try:
            kv = await self.storage.delete(key, expected_revision=int(meta["resourceVersion"]))
        except KeyNotFoundError:
            raise errors.not_found(info.plural, meta["name"], info.group) from None
        except ConflictError:
            raise errors.conflict(info.plural, meta["name"], info.group) from None
        deleted = decode(kv)
        deleted["metadata"]["resourceVersion"] = str(kv.mod_revision)
        return deleted

    async def list(
        self, info: ResourceInfo, namespace: str | None, *, match: Callable[[Obj], bool] | None = None,
        limit: int = 0, continue_token: str = "", revision: int = 0,
    ) -> ListPage:
        """A page of objects matching `match`, in key order, consistent at one revision."""
        prefix = keys.list_prefix(info.storage_resource, namespace if info.namespaced else None)
        start_after = ""
        if continue_token:
            revision, start_after = keys.decode_continue(continue_token, prefix)
        items: list[Obj] = []
        try:
            while True:
                want = 0 if not limit else max(limit - len(items), 1) if match is None else max(limit, 100)
                page = await self.storage.list(prefix, revision=revision, limit=want, start_after=start_after)
                revision = page.revision
                for kv in page.items:
                    obj = decode(kv)
                    if match is None or match(obj):
                        items.append(obj)
                        if limit and len(items) == limit:
                            more = kv is not page.items[-1] or page.more
                            return self._page(items, revision, kv.key if more else "", prefix, match, page, kv)
                if not page.more:
                    return ListPage(items, revision, "", None)
                start_after = page.items[-1].key
        except CompactedError:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter."
                if continue_token else f"too old resource version: {revision}"
            ) from None
        except FutureRevisionError:
            raise errors.StatusError(
                504, "Timeout", f"Too large resource version: {revision}, current: {self.storage.current_revision()}",
                details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                         "retryAfterSeconds": 1},
            ) from None

    @staticmethod
    def _page(items: list[Obj], revision: int, last_key: str, prefix: str, match: Any, page: Any, kv: KeyValue) -> ListPage:
        if not last_key:
            return ListPage(items, revision, "", None)
        token = keys.encode_continue(revision, last_key, prefix)
        remaining: int | None = None
        if match is None:
            after = len(page.items) - page.items.index(kv) - 1
            remaining = after + page.remaining if page.more else after
        return ListPage(items, revision, token, remaining)
