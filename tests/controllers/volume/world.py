"""A tiny in-memory API and recorder for the volume controllers' unit tests.

`FakeApi` keeps objects by (resource, namespace, name) with a resourceVersion counter:
update and update_status are compare-and-swap on it (409 on a stale copy), as the real
API server. Every write is logged as (verb, plural, name) so tests can check the order
of Kubernetes' bind. `World` mirrors the API into informer stores on demand, so the
syncs read "caches" exactly as in the controller.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from controllers.volume.sync_claims import CLAIMS_BY_POD_INDEX, ClaimSync, pod_claim_keys
from controllers.volume.sync_volumes import VolumeSync
from controllers.volume.writes import VolumeWriter
from minikube_py.client import (
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    STORAGECLASSES,
    ApiError,
    FakeClock,
    Lister,
    Resource,
    Store,
)

Obj = dict[str, Any]
NS = "default"


def _error(code: int, reason: str, message: str) -> ApiError:
    return ApiError({"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message})


class FakeApi:
    """Just enough of ApiClient for the volume controllers."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)

    def _key(self, resource: Resource, name: str, namespace: str | None) -> tuple[str, str, str]:
        return resource.plural, (namespace or "") if resource.namespaced else "", name

    def put(self, resource: Resource, obj: Obj) -> Obj:
        """Store `obj` as the API server would after a create (uid, resourceVersion)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        if resource.namespaced:
            meta.setdefault("namespace", NS)
        meta["resourceVersion"] = str(next(self._rv))
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        self.objects[self._key(resource, meta["name"], meta.get("namespace"))] = obj
        return copy.deepcopy(obj)

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        obj = self.objects.get(self._key(resource, name, namespace))
        if obj is None:
            raise _error(404, "NotFound", f'{resource.plural} "{name}" not found')
        return copy.deepcopy(obj)

    async def create(self, resource: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        meta = obj["metadata"]
        if self._key(resource, meta["name"], meta.get("namespace") or namespace) in self.objects:
            raise _error(409, "AlreadyExists", f'{resource.plural} "{meta["name"]}" already exists')
        self.writes.append(("create", resource.plural, meta["name"]))
        return self.put(resource, obj)

    async def _write(self, verb: str, resource: Resource, obj: Obj, *, status: bool) -> Obj:
        meta = obj["metadata"]
        key = self._key(resource, meta["name"], meta.get("namespace"))
        current = self.objects.get(key)
        if current is None:
            raise _error(404, "NotFound", f'{resource.plural} "{meta["name"]}" not found')
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict", "the object has been modified")
        new = copy.deepcopy(current)
        if status:
            new["status"] = copy.deepcopy(obj.get("status") or {})
        else:
            new = {**copy.deepcopy(obj), "status": new.get("status", {})}
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[key] = new
        self.writes.append((verb, resource.plural, meta["name"]))
        return copy.deepcopy(new)

    async def update(self, resource: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        return await self._write("update", resource, obj, status=False)

    async def update_status(self, resource: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        return await self._write("status", resource, obj, status=True)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        obj = self.objects.pop(self._key(resource, name, namespace), None)
        if obj is None:
            raise _error(404, "NotFound", f'{resource.plural} "{name}" not found')
        self.writes.append(("delete", resource.plural, name))
        return obj


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)

    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], event_type, reason, message))

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]


class World:
    """The fake API, caches synced from it, and the binder's two syncs."""

    def __init__(self) -> None:
        self.api = FakeApi()
        self.recorder = FakeRecorder()
        self.clock = FakeClock()
        self.stores = {r.plural: Store() for r in (PERSISTENTVOLUMES, PERSISTENTVOLUMECLAIMS, STORAGECLASSES, PODS)}
        self.stores["pods"].add_indexer(CLAIMS_BY_POD_INDEX, pod_claim_keys)
        self.enqueued: list[str] = []
        self.writer = VolumeWriter(self.api, self.recorder, self.clock)  # type: ignore[arg-type]
        self.claims = ClaimSync(self.writer, self.recorder, self.lister(PERSISTENTVOLUMES),  # type: ignore[arg-type]
                                self.lister(STORAGECLASSES), self.lister(PODS))
        self.volumes = VolumeSync(self.writer, self.recorder, self.lister(PERSISTENTVOLUMECLAIMS),  # type: ignore[arg-type]
                                  self.enqueued.append)

    def lister(self, resource: Resource) -> Lister:
        return Lister(self.stores[resource.plural])

    def refresh(self) -> None:
        """The informers catch up with the API."""
        for store in self.stores.values():
            store.replace([])
        for (plural, _, _), obj in self.api.objects.items():
            if plural in self.stores:
                self.stores[plural].upsert(copy.deepcopy(obj))

    def add(self, resource: Resource, obj: Obj) -> Obj:
        created = self.api.put(resource, obj)
        self.refresh()
        return created

    def pv(self, name: str) -> Obj | None:
        return self.api.objects.get(("persistentvolumes", "", name))

    def pvc(self, name: str) -> Obj | None:
        return self.api.objects.get(("persistentvolumeclaims", NS, name))

    async def sync_claim(self, name: str) -> None:
        claim = self.lister(PERSISTENTVOLUMECLAIMS).get(name, NS)
        assert claim is not None
        await self.claims.sync(claim)
        self.refresh()

    async def sync_volume(self, name: str) -> None:
        volume = self.lister(PERSISTENTVOLUMES).get(name)
        assert volume is not None
        await self.volumes.sync(volume)
        self.refresh()


def make_pv(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "",
            phase: str = "Available", policy: str = "Retain", labels: dict[str, str] | None = None,
            claim_ref: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "persistentVolumeReclaimPolicy": policy,
                 "volumeMode": "Filesystem", "hostPath": {"path": f"/data/{name}", "type": ""}, **spec}
    if cls:
        body["storageClassName"] = cls
    if claim_ref is not None:
        body["claimRef"] = claim_ref
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": body, "status": {"phase": phase}}


def make_pvc(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = "",
             selector: Obj | None = None, volume_name: str = "", annotations: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if volume_name:
        spec["volumeName"] = volume_name
    return {"metadata": {"name": name, "namespace": NS, "annotations": dict(annotations or {})}, "spec": spec,
            "status": {"phase": "Pending"}}


def make_class(name: str, *, provisioner: str = "rancher.io/local-path", mode: str = "WaitForFirstConsumer",
               default: bool = False, policy: str = "Delete", created: str = "2026-01-01T00:00:00Z") -> Obj:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
            "provisioner": provisioner, "reclaimPolicy": policy, "volumeBindingMode": mode}
