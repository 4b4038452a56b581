"""The API half of pkg/controller/history: create, renumber, adopt, release, delete, list.

`create_revision` is realHistory.CreateControllerRevision: POST the revision named by its
hash; on AlreadyExists, GET the existing one: if its data is the same, it *is* our
revision (a previous sync created it and the cache had not caught up) and is returned;
otherwise it is a hash collision, so the collision count goes up by one and the name is
recomputed. The caller stores the new count in its status.collisionCount, which is how a
later sync reproduces the same name. As in Kubernetes, only the name changes between
attempts (the hash label keeps the first hash).

`list_revisions` is ListControllerRevisions over an informer's lister: the revisions in
the parent's namespace matching its selector, controlled by the parent or by nobody.
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.common import objects
from controllers.history.revisions import (
    adopt_patch,
    owned_or_orphaned,
    release_patch,
    revision_hash,
    revision_name,
)
from minikube_py.client import CONTROLLERREVISIONS, ApiClient, ApiError, Lister, Selector

Obj = dict[str, Any]
# A guard against an endless loop if the server kept answering AlreadyExists with other data.
MAX_CREATE_ATTEMPTS = 64


async def create_revision(client: ApiClient, parent: Obj, revision_body: Obj,
                          collision_count: int | None) -> tuple[Obj, int]:
    """Create `revision_body` for `parent`; returns (the revision, the collision count)."""
    count = int(collision_count or 0)
    clone = copy.deepcopy(revision_body)
    namespace = objects.namespace(parent)
    data = revision_body.get("data")
    for _ in range(MAX_CREATE_ATTEMPTS):
        clone["metadata"]["name"] = revision_name(objects.name(parent), revision_hash(data, count))
        try:
            return await client.create(CONTROLLERREVISIONS, clone, namespace), count
        except ApiError as exc:
            if not exc.is_already_exists():
                raise
        existing = await client.get(CONTROLLERREVISIONS, clone["metadata"]["name"], namespace)
        if objects.drop_empty(existing.get("data")) == objects.drop_empty(data):
            return existing, count
        count += 1
    raise RuntimeError(f"no free ControllerRevision name for {objects.key(parent)} after "
                       f"{MAX_CREATE_ATTEMPTS} collisions")


async def update_revision_number(client: ApiClient, revision: Obj, number: int) -> Obj:
    """UpdateControllerRevision: set `revision` (the number) to `number`.

    Kubernetes retries on conflict with a fresh copy; here a conflict re-reads the
    revision once per attempt (up to five attempts, client-go's DefaultBackoff steps).
    """
    current = copy.deepcopy(revision)
    for attempt in range(5):
        if int(current.get("revision") or 0) == number:
            return current
        current["revision"] = number
        try:
            return await client.update(CONTROLLERREVISIONS, current, objects.namespace(current))
        except ApiError as exc:
            if not exc.is_conflict() or attempt == 4:
                raise
        current = await client.get(CONTROLLERREVISIONS, objects.name(revision), objects.namespace(revision))
    return current


async def delete_revision(client: ApiClient, revision: Obj) -> None:
    """DeleteControllerRevision (a revision already gone counts as deleted)."""
    try:
        await client.delete(CONTROLLERREVISIONS, objects.name(revision), objects.namespace(revision))
    except ApiError as exc:
        if not exc.is_not_found():
            raise


async def adopt_revision(client: ApiClient, parent: Obj, revision: Obj, *, api_version: str, kind: str) -> Obj:
    """AdoptControllerRevision: make `parent` the controller of an orphaned revision."""
    return await client.patch(CONTROLLERREVISIONS, objects.name(revision),
                              adopt_patch(parent, revision, api_version=api_version, kind=kind),
                              objects.namespace(parent), patch_type="strategic")


async def release_revision(client: ApiClient, parent: Obj, revision: Obj) -> Obj | None:
    """ReleaseControllerRevision; a revision gone or no longer ours is ignored (None)."""
    try:
        return await client.patch(CONTROLLERREVISIONS, objects.name(revision), release_patch(parent, revision),
                                  objects.namespace(revision), patch_type="strategic")
    except ApiError as exc:
        if exc.is_not_found() or exc.is_invalid():
            return None
        raise


def list_revisions(lister: Lister, parent: Obj, selector: Selector) -> list[Obj]:
    """ListControllerRevisions from a ControllerRevision informer's lister."""
    return owned_or_orphaned(parent, lister.list(objects.namespace(parent), selector))
