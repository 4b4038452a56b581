"""Helpers for the kubelet tests: waiting for a condition, pod manifests, binding, and
fake nodes running in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from kubelet.fake import FakeNodeConfig, FakeNodes
from minikube_py.client import PODS, ApiClient, FakeClock


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Await `check()` until it returns something truthy (in real time), and return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        await asyncio.sleep(interval)


def pod_manifest(name: str, *, namespace: str = "default", containers: Sequence[dict[str, Any]] | None = None,
                 annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A Pod with one nginx container named web, unless told otherwise."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": list(containers or [{"name": "web", "image": "nginx"}]), **spec}}


@contextlib.asynccontextmanager
async def running_fake_nodes(api: ApiClient, names: Sequence[str], *, clock: FakeClock | None = None,
                             **config: Any) -> AsyncIterator[FakeNodes]:
    """FakeNodes serving `names` in a task of this loop; cancelled (as SIGTERM would) on exit."""
    fake = FakeNodes(api, list(names), config=FakeNodeConfig(**config), clock=clock)
    task = asyncio.create_task(fake.run())
    try:
        assert await fake.wait_ready(10), "fake nodes did not register"
        yield fake
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def create_bound_pod(api: ApiClient, manifest: dict[str, Any], node: str) -> dict[str, Any]:
    """Create a pod and bind it as the scheduler would (POST pods/<name>/binding)."""
    pod = await api.create(PODS, manifest)
    await api.bind(pod["metadata"]["namespace"], pod["metadata"]["name"], node, pod_uid=pod["metadata"]["uid"])
    return pod
