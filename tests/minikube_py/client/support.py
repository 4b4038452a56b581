"""Object builders shared by the client tests."""

from __future__ import annotations

from typing import Any


def pod(name: str, namespace: str = "default", *, labels: dict[str, str] | None = None,
        owner: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A minimal valid Pod."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def configmap(name: str, namespace: str = "default", data: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


class Recorder:
    """An informer event handler that remembers what it was told, and lets a test
    wait (without sleeping) until it has been told enough."""

    def __init__(self) -> None:
        import asyncio

        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def _record(self, kind: str, payload: Any) -> None:
        self.events.append((kind, payload))
        self._changed.set()

    def on_add(self, obj: dict[str, Any]) -> None:
        self._record("add", obj["metadata"]["name"])

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._record("update", new["metadata"]["name"])

    def on_delete(self, obj: Any) -> None:
        from minikube_py.client import DeletedFinalStateUnknown

        if isinstance(obj, DeletedFinalStateUnknown):
            self._record("delete-unknown", obj.obj["metadata"]["name"])
        else:
            self._record("delete", obj["metadata"]["name"])

    def handler(self) -> Any:
        from minikube_py.client import EventHandler

        return EventHandler(self.on_add, self.on_update, self.on_delete)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, Any]]:
        """Wait until at least `count` events arrived; returns all of them."""
        import asyncio

        async def enough() -> None:
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return list(self.events)
