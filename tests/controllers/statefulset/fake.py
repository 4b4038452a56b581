"""An in-memory API for StatefulSet sync tests: the verbs the controller uses, over Stores.

Writes land in the stores at once (the "caches" are always fresh), names are unique per
resource, pods are created Pending, deletes remove at once unless `graceful_pods` is set
(then the pod gets a deletionTimestamp and stays until `finish_deletion`). Every write is
logged in `calls` as (verb, resource plural, name) so tests can assert the order.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from controllers.common import objects
from controllers.statefulset.controller import StatefulSetReconciler
from minikube_py.client import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
    ApiError,
    FakeClock,
    Lister,
    Resource,
    Store,
    key_of,
)

Obj = dict[str, Any]
NS = "default"


def _error(code: int, reason: str, message: str) -> ApiError:
    return ApiError({"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message})


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))


class FakeApi:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.stores = {r.plural: Store() for r in (PODS, PERSISTENTVOLUMECLAIMS, CONTROLLERREVISIONS, STATEFULSETS)}
        self.calls: list[tuple[str, str, str]] = []
        self.graceful_pods = False
        self.fail_creates: dict[str, ApiError] = {}
        self._ids = itertools.count(1)

    def lister(self, resource: Resource) -> Lister:
        return Lister(self.stores[resource.plural])

    def items(self, resource: Resource) -> list[Obj]:
        return sorted(self.stores[resource.plural].items(), key=objects.name)

    def get_obj(self, resource: Resource, name: str) -> Obj | None:
        return self.stores[resource.plural].get(f"{NS}/{name}")

    def _stamp(self, obj: Obj) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._ids))

    async def create(self, resource: Resource, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        obj = copy.deepcopy(obj)
        name = objects.name(obj)
        if name in self.fail_creates:
            raise self.fail_creates[name]
        obj["metadata"]["namespace"] = namespace or NS
        store = self.stores[resource.plural]
        if key_of(obj) in store:
            raise _error(409, "AlreadyExists", f'{resource.plural} "{name}" already exists')
        obj["metadata"]["uid"] = f"uid-{name}-{next(self._ids)}"
        obj["metadata"]["creationTimestamp"] = objects.format_time(self.clock.now())
        if resource is STATEFULSETS:
            obj["metadata"]["generation"] = 1
        if resource is PODS:
            obj["status"] = {"phase": "Pending"}
        self._stamp(obj)
        store.upsert(obj)
        self.calls.append(("create", resource.plural, name))
        return copy.deepcopy(obj)

    async def get(self, resource: Resource, name: str, namespace: str | None = None, **_: Any) -> Obj:
        found = self.stores[resource.plural].get(f"{namespace or NS}/{name}")
        if found is None:
            raise _error(404, "NotFound", f'{resource.plural} "{name}" not found')
        return copy.deepcopy(found)

    async def update(self, resource: Resource, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        current = await self.get(resource, objects.name(obj), namespace)
        rv = objects.metadata(obj).get("resourceVersion")
        if rv and rv != objects.metadata(current).get("resourceVersion"):
            raise _error(409, "Conflict", "the object has been modified")
        obj = copy.deepcopy(obj)
        if resource is PODS:
            obj["status"] = current.get("status")
        self._stamp(obj)
        self.stores[resource.plural].upsert(obj)
        self.calls.append(("update", resource.plural, objects.name(obj)))
        return copy.deepcopy(obj)

    async def update_status(self, resource: Resource, obj: Obj, namespace: str | None = None, **_: Any) -> Obj:
        current = await self.get(resource, objects.name(obj), namespace)
        rv = objects.metadata(obj).get("resourceVersion")
        if rv and rv != objects.metadata(current).get("resourceVersion"):
            raise _error(409, "Conflict", "the object has been modified")
        current["status"] = copy.deepcopy(obj.get("status"))
        self._stamp(current)
        self.stores[resource.plural].upsert(current)
        self.calls.append(("status", resource.plural, objects.name(obj)))
        return copy.deepcopy(current)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, **_: Any) -> Obj:
        current = await self.get(resource, name, namespace)
        self.calls.append(("delete", resource.plural, name))
        if resource is PODS and self.graceful_pods:
            current["metadata"]["deletionTimestamp"] = objects.format_time(self.clock.now())
            self._stamp(current)
            self.stores[resource.plural].upsert(current)
            return current
        self.stores[resource.plural].delete(key_of(current))
        return current

    async def patch(self, resource: Resource, name: str, patch: Obj, namespace: str | None = None, **_: Any) -> Obj:
        """Only the ownerReference patches of adoption and release (strategic merge by uid)."""
        current = await self.get(resource, name, namespace)
        refs = list(objects.metadata(current).get("ownerReferences") or [])
        for ref in patch["metadata"].get("ownerReferences") or []:
            refs = [r for r in refs if r.get("uid") != ref.get("uid")]
            if ref.get("$patch") != "delete":
                refs.append(ref)
        current["metadata"]["ownerReferences"] = refs
        self._stamp(current)
        self.stores[resource.plural].upsert(current)
        self.calls.append(("patch", resource.plural, name))
        return current

    # -- what kubelets and users do -------------------------------------------------------

    def set_pod_state(self, name: str, *, phase: str = "Running", ready: bool = True) -> None:
        pod = self.get_obj(PODS, name)
        assert pod is not None, name
        stamp = objects.format_time(self.clock.now())
        pod["status"] = {"phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}]}
        self._stamp(pod)

    def finish_deletion(self, name: str) -> None:
        self.stores["pods"].delete(f"{NS}/{name}")

    def edit_set(self, name: str, fn: Any) -> Obj:
        sts = self.get_obj(STATEFULSETS, name)
        assert sts is not None
        fn(sts)
        sts["metadata"]["generation"] = objects.generation(sts) + 1
        self._stamp(sts)
        return sts


class Cluster:
    """A FakeApi, a recorder and a reconciler over the fake stores."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.api = FakeApi(self.clock)
        self.recorder = FakeRecorder()
        self.reconciler = StatefulSetReconciler(
            self.api, self.api.lister(STATEFULSETS), self.api.lister(PODS),  # type: ignore[arg-type]
            self.api.lister(CONTROLLERREVISIONS), self.api.lister(PERSISTENTVOLUMECLAIMS), self.recorder, self.clock)

    async def sync(self, name: str = "web") -> Any:
        return await self.reconciler.reconcile(f"{NS}/{name}")

    def pod_names(self) -> list[str]:
        return [objects.name(p) for p in self.api.items(PODS)]

    def created_pods(self) -> list[str]:
        return [name for verb, plural, name in self.api.calls if verb == "create" and plural == "pods"]

    def deleted_pods(self) -> list[str]:
        return [name for verb, plural, name in self.api.calls if verb == "delete" and plural == "pods"]

    def status(self, name: str = "web") -> Obj:
        return objects.status(self.api.get_obj(STATEFULSETS, name))

    def ready_all(self) -> None:
        for name in self.pod_names():
            pod = self.api.get_obj(PODS, name)
            if pod is not None and not objects.being_deleted(pod):
                self.api.set_pod_state(name)

    async def converge(self, name: str = "web", rounds: int = 20) -> None:
        """Sync, make every pod Running and Ready, repeat until nothing is written."""
        for _ in range(rounds):
            before = len(self.api.calls)
            await self.sync(name)
            self.ready_all()
            if len(self.api.calls) == before:
                return
        raise AssertionError("did not converge")


def stateful_set(name: str = "web", *, replicas: int = 3, image: str = "nginx:1.0", claims: bool = True,
                 **spec: Any) -> Obj:
    body: Obj = {"replicas": replicas, "serviceName": "nginx", "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "nginx", "image": image}]}},
                 "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, **spec}
    if claims:
        body["volumeClaimTemplates"] = [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS}, "spec": body}
