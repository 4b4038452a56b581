"""An in-process control plane for controller tests: the real API server, the
controller-manager, a fake kubelet, and helpers to wait and to run the real kubectl.

Everything runs on the test's event loop and talks HTTP on 127.0.0.1 (OS-chosen port),
exactly as separate processes would. There are no nodes or kubelets yet, so `FakeKubelet`
marks pods Running and Ready by writing `pods/status`, as a kubelet reports them.
Waiting is polling with short real sleeps (`wait_for`), never a fixed delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from controllers.common import objects, ownership, pods
from controllers.manager import LeaderElectionConfig, run_controller_manager
from minikube_py.client import (
    EVENTS,
    PODS,
    ApiClient,
    ApiError,
    DeletedFinalStateUnknown,
    EventHandler,
    Informer,
    key_of,
)

Obj = dict[str, Any]
NS = "default"
FAST_ELECTION = LeaderElectionConfig(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)


def deployment(name: str = "web", *, replicas: int = 3, image: str = "nginx:1.0", strategy: Obj | None = None,
               **spec: Any) -> Obj:
    """A Deployment selecting `app: <name>` (defaults left to the API server)."""
    body: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}, **spec}
    if strategy is not None:
        body["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS}, "spec": body}


def replica_set(name: str = "rs", *, replicas: int = 2, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A bare ReplicaSet (no Deployment) selecting `labels` (default `app: <name>`)."""
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.0"}]}}, **spec}}


def pod(name: str, *, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.0"}]}}


def ready_status(pod_obj: Obj, now: datetime | None = None) -> Obj:
    """What a kubelet reports for a started, ready pod (as a merge patch of pods/status)."""
    stamp = objects.format_time(now or datetime.now(UTC))
    conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "started": True,
                   "restartCount": 0, "state": {"running": {"startedAt": stamp}}}
                  for c in objects.spec(pod_obj).get("containers") or []]
    return {"status": {"phase": "Running", "startTime": stamp, "conditions": conditions,
                       "containerStatuses": containers}}


@contextlib.asynccontextmanager
async def api_server(tmp_path: Path) -> AsyncIterator[str]:
    """The project's API server on a fresh store; yields its URL."""
    from apiserver.app import build_app, open_storage, start_server, stop_tasks

    storage = open_storage(tmp_path / "store")
    server, tasks = await start_server(storage, address="127.0.0.1:0")
    runner = web.AppRunner(build_app(server), access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.address = f"127.0.0.1:{port}"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await stop_tasks(tasks)
        await storage.close()


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02,
                   message: str = "condition", guard: Callable[[], None] | None = None) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if guard is not None:
            guard()
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


@dataclass
class ControlPlane:
    """A running API server (+ controller-manager) and the test's own client."""

    url: str
    client: ApiClient
    tmp: Path
    managers: list[asyncio.Task[None]] = field(default_factory=list)

    def check_managers(self) -> None:
        """Fail at once if a controller-manager died."""
        for task in self.managers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"controller-manager {task.get_name()} failed") from task.exception()

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 10.0, message: str = "condition") -> Any:
        return await wait_for(predicate, timeout=timeout, message=message, guard=self.check_managers)

    def start_manager(self, *, name: str = "manager", **kwargs: Any) -> asyncio.Task[None]:
        """Run a controller-manager with its own client (kwargs: run_controller_manager's)."""
        kwargs.setdefault("leader_elect", False)
        if kwargs["leader_elect"]:
            kwargs.setdefault("leader_election", FAST_ELECTION)

        async def run() -> None:
            async with ApiClient(self.url, field_manager="kube-controller-manager") as client:
                await run_controller_manager(client, **kwargs)

        task = asyncio.create_task(run(), name=name)
        self.managers.append(task)
        return task

    async def stop_manager(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.managers.remove(task)

    async def events(self, reason: str | None = None, *, kind: str | None = None) -> list[Obj]:
        items = (await self.client.list(EVENTS, NS))["items"]
        return [e for e in items if (reason is None or e["reason"] == reason)
                and (kind is None or e["involvedObject"].get("kind") == kind)]

    def kubeconfig(self) -> Path:
        """A kubeconfig for the real kubectl (plain HTTP, no credentials)."""
        path = self.tmp / "kubeconfig"
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "mkp",
                  "clusters": [{"name": "mkp", "cluster": {"server": self.url}}],
                  "users": [{"name": "mkp", "user": {}}],
                  "contexts": [{"name": "mkp", "context": {"cluster": "mkp", "user": "mkp", "namespace": NS}}]}
        path.write_text(yaml.safe_dump(config))
        return path

    async def kubectl(self, kubectl: str, *args: str, check: bool = True, timeout: float = 30.0) -> tuple[int, str, str]:
        """Run the real kubectl as a child process while this loop keeps serving it."""
        argv = [kubectl, "--kubeconfig", str(self.kubeconfig()), "--cache-dir", str(self.tmp / "kube-cache"), *args]
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        code = process.returncode or 0
        if check and code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {code}\n{out.decode()}\n{err.decode()}")
        return code, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def control_plane(tmp_path: Path, *, manager: bool = True, **manager_kwargs: Any) -> AsyncIterator[ControlPlane]:
    """An API server, the test's client and (by default) one controller-manager without
    leader election; everything is torn down on exit."""
    async with api_server(tmp_path) as url, ApiClient(url, field_manager="tests") as client:
        plane = ControlPlane(url, client, tmp_path)
        if manager:
            plane.start_manager(**manager_kwargs)
        try:
            yield plane
        finally:
            for task in list(plane.managers):
                await plane.stop_manager(task)


class FakeKubelet:
    """Marks pods Running and Ready through `pods/status` (all of them with `auto`)."""

    def __init__(self, client: ApiClient, *, auto: bool = True) -> None:
        self.client = client
        self.auto = auto
        self.informer = Informer(client, PODS, namespace=NS)
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeKubelet:
        self.informer.add_event_handler(EventHandler(on_add=self._seen, on_update=lambda old, new: self._seen(new)))
        self.informer.start()
        await self.informer.wait_synced()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.informer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _seen(self, obj: Obj) -> None:
        if self.auto and not pods.is_ready(obj) and not objects.being_deleted(obj):
            task = asyncio.create_task(self._patch(obj))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def mark_ready(self, *names: str) -> None:
        for name in names:
            await self._patch(await self.client.get(PODS, name, NS))

    async def _patch(self, pod_obj: Obj) -> None:
        with contextlib.suppress(ApiError):  # deleted meanwhile
            await self.client.patch(PODS, objects.name(pod_obj), ready_status(pod_obj), NS, subresource="status")


@dataclass(frozen=True)
class PodState:
    """The pods matching a selector at one moment: how many, how many ready, which images."""

    total: int
    available: int
    images: frozenset[str]


class PodObserver:
    """Follows pods matching `selector` by watch and records a `PodState` after every
    event: each state the API server went through, in order."""

    def __init__(self, client: ApiClient, selector: str) -> None:
        self.informer = Informer(client, PODS, namespace=NS, label_selector=selector)
        self.states: list[PodState] = []

    def _record(self, *_: Obj | DeletedFinalStateUnknown) -> None:
        cached = [p for p in self.informer.store.items() if pods.is_active(p)]
        images = frozenset(c["image"] for p in cached for c in objects.spec(p).get("containers") or [])
        self.states.append(PodState(len(cached), sum(1 for p in cached if pods.is_ready(p)), images))

    async def __aenter__(self) -> PodObserver:
        self.informer.add_event_handler(EventHandler(self._record, self._record, self._record))
        self.informer.start()
        await self.informer.wait_synced()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.informer.stop()


async def controlled_by(client: ApiClient, resource: Any, owner: Obj) -> list[Obj]:
    """Objects of `resource` in the namespace whose controller is `owner`."""
    items = (await client.list(resource, NS))["items"]
    return sorted((o for o in items if ownership.is_controlled_by(o, owner)), key=key_of)


async def eventually(check: Callable[[], Awaitable[Any]], plane: ControlPlane, *, timeout: float = 10.0,
                     message: str = "condition") -> Any:
    """`plane.wait_for` for an async check that may raise AssertionError until it holds."""
    async def attempt() -> Any:
        try:
            return await check() or True
        except AssertionError:
            return False
    return await plane.wait_for(attempt, timeout=timeout, message=message)
