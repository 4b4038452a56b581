"""Serving custom resources: the API server's own CRD loop.

What apiextensions-apiserver's controllers do, in one level-triggered loop fed by a
watch on the store: a new or changed CustomResourceDefinition gets its status
(acceptedNames, NamesAccepted and Established conditions) and, once Established, its
resource is served (the registry gains a row, discovery and OpenAPI follow). A CRD
being deleted first has all its custom resources deleted (the
`customresourcecleanup.apiextensions.k8s.io` finalizer), then goes. Driving this from
the store, not from the request that wrote the CRD, keeps several API server processes
on one store consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from apiserver import errors
from apiserver.context import Server
from apiserver.registry import keys
from apiserver.registry.registry import resource_from_crd
from apiserver.storage.interface import CompactedError, WatchDroppedError

log = logging.getLogger("apiserver.crd")
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_SYNCED = "crd-synced"

Obj = dict[str, Any]


def _crd_info(server: Server) -> Any:
    info = server.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert info is not None
    return info


async def wait_synced(server: Server) -> None:
    event = server.caches.setdefault(_SYNCED, asyncio.Event())
    await event.wait()


async def run(server: Server) -> None:
    """List CRDs, reconcile each, then follow changes; relist after a lost watch."""
    synced: asyncio.Event = server.caches.setdefault(_SYNCED, asyncio.Event())
    prefix = keys.list_prefix(_crd_info(server).storage_resource, None)
    while True:
        try:
            page = await server.store.list(_crd_info(server), None)
            known = set()
            for crd in page.items:
                known.add(crd["metadata"]["name"])
                await reconcile(server, crd)
            for info in list(server.registry.resources()):
                if info.crd is not None and info.crd["metadata"]["name"] not in known:
                    server.registry.remove_crd(info.crd["metadata"]["name"])
            synced.set()
            watcher = server.storage.watch(prefix, revision=page.revision)
            try:
                async for event in watcher:
                    if event.type == "DELETE":
                        server.registry.remove_crd(orjson.loads(event.kv.value)["metadata"]["name"])
                    else:
                        await reconcile(server, orjson.loads(event.kv.value))
            finally:
                watcher.close()
        except (CompactedError, WatchDroppedError):
            continue
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep serving; retry after a pause
            log.exception("CRD loop failed; relisting")
            await asyncio.sleep(1)


async def reconcile(server: Server, crd: Obj) -> None:
    from apiserver.crd.definition import crd_status

    name = crd["metadata"]["name"]
    if crd["metadata"].get("deletionTimestamp"):
        server.registry.set_crd(crd)  # stops serving it
        await _cleanup(server, crd)
        return
    status = crd_status(crd)
    if status != crd.get("status"):
        await _write_status(server, name, status)
        return  # the write comes back as an event
    server.registry.set_crd(crd)


async def _write_status(server: Server, name: str, status: Obj) -> None:
    async def update(current: Obj | None) -> Obj | None:
        if current is None or current.get("status") == status:
            return None
        current["status"] = status
        return current

    with contextlib.suppress(errors.StatusError):
        await server.store.guaranteed_update(_crd_info(server), None, name, update)


async def _cleanup(server: Server, crd: Obj) -> None:
    """Delete every custom resource of a CRD being deleted, then drop its finalizer."""
    if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
        return
    info = resource_from_crd({**crd, "status": {"conditions": [{"type": "Established", "status": "True"}]}})
    page = await server.store.list(info, None)
    for obj in page.items:
        with contextlib.suppress(errors.StatusError):
            await server.store.delete_now(info, obj)

    async def drop(current: Obj | None) -> Obj | None:
        if current is None:
            return None
        current["metadata"]["finalizers"] = [f for f in current["metadata"].get("finalizers", []) if f != CLEANUP_FINALIZER]
        return current

    with contextlib.suppress(errors.StatusError):
        _, new = await server.store.guaranteed_update(_crd_info(server), None, crd["metadata"]["name"], drop)
        if new and new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            await server.store.delete_now(_crd_info(server), new)
