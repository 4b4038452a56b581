"""A dict-backed object source (what the kubelet's informers serve the volume manager
and the environment builder) and small manifest helpers for the volume tests."""

from __future__ import annotations

import base64
import copy
from typing import Any

Obj = dict[str, Any]


class FakeSource:
    """`await get(kind, namespace, name)` over objects put in by the test; counts calls."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.calls = 0

    def put(self, kind: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        namespace = None if kind == "persistentvolumes" else meta.setdefault("namespace", "default")
        self.objects[(kind, namespace, meta["name"])] = obj
        return obj

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        del self.objects[(kind, namespace, name)]

    async def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        self.calls += 1
        obj = self.objects.get((kind, None if kind == "persistentvolumes" else namespace, name))
        return copy.deepcopy(obj)

    def configmap(self, name: str, data: dict[str, str], *, namespace: str = "default",
                  binary: dict[str, bytes] | None = None) -> Obj:
        obj: Obj = {"metadata": {"name": name, "namespace": namespace}, "data": data}
        if binary:
            obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
        return self.put("configmaps", obj)

    def secret(self, name: str, data: dict[str, bytes], *, namespace: str = "default") -> Obj:
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        return self.put("secrets", {"metadata": {"name": name, "namespace": namespace}, "data": encoded})


def pod(volumes: list[Obj] | None = None, containers: list[Obj] | None = None, *, name: str = "web",
        namespace: str = "default", uid: str = "0b5c6f0e-1111-4222-8333-444455556666", **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, **meta},
            "spec": {"nodeName": "node-1", "serviceAccountName": "default", "enableServiceLinks": True,
                     "containers": containers or [{"name": "app", "image": "busybox"}],
                     "volumes": volumes or []}}


def copy_pod(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
