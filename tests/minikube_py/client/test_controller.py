"""The controller loop: retries with backoff, terminal errors, requeues, workers, and a
small controller wired end to end through informers against the real API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from minikube_py.client import (
    CONFIGMAPS,
    REPLICASETS,
    ApiClient,
    ApiError,
    Controller,
    DeletedFinalStateUnknown,
    FakeClock,
    Result,
    SharedInformerFactory,
    TerminalError,
    WorkQueue,
    enqueue_mapped,
    enqueue_object,
    enqueue_owner,
    owner_keys,
    settle,
    split_key,
)
from tests.minikube_py.client.support import configmap, pod


@asynccontextmanager
async def running(controller: Controller) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(controller.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def scripted(outcomes: list[object], calls: list[str]) -> Callable:
    """A reconcile that returns or raises the next outcome in the list."""
    async def reconcile(key: str) -> Result | None:
        calls.append(key)
        outcome = outcomes.pop(0) if outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    return reconcile


async def test_errors_retry_with_growing_backoff_then_success_forgets() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("t", clock=clock)
    calls: list[str] = []
    failures = [RuntimeError("boom"), ApiError({"code": 409, "reason": "Conflict"}), RuntimeError("again")]
    controller = Controller("t", queue, scripted(failures, calls))
    async with running(controller):
        queue.add("ns/a")
        for expected_delay in (0.005, 0.01, 0.02):
            await clock.wait_for_sleepers(1)
            assert clock.next_wakeup() == pytest.approx(expected_delay)
            clock.advance(expected_delay)
        await asyncio.wait_for(queue.wait_idle(), 1)
    assert calls == ["ns/a"] * 4
    assert queue.num_requeues("ns/a") == 0 and controller.errors == 3 and controller.reconciles == 4


async def test_terminal_error_is_not_retried() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("t", clock=clock)
    calls: list[str] = []
    controller = Controller("t", queue, scripted([RuntimeError("x"), TerminalError("bad spec")], calls))
    async with running(controller):
        queue.add("k")
        await clock.wait_for_sleepers(1)
        clock.advance(0.005)
        await asyncio.wait_for(queue.wait_idle(), 1)
        assert queue.waiting == 0 and queue.num_requeues("k") == 0  # forgotten, nothing scheduled
        queue.add("k")  # a new event still reconciles it
        await asyncio.wait_for(queue.wait_idle(), 1)
    assert calls == ["k", "k", "k"] and controller.errors == 2


@pytest.mark.parametrize(("result", "delay", "requeues"), [
    pytest.param(Result(requeue_after=30), 30.0, 0, id="requeue-after-forgets-and-waits"),
    pytest.param(Result(requeue=True), 0.005, 1, id="requeue-uses-backoff"),
])
async def test_requeue_results(result: Result, delay: float, requeues: int) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("t", clock=clock)
    if result.requeue_after:
        queue.rate_limiter.when("k")  # an earlier failure, which requeue_after forgets
    calls: list[str] = []
    controller = Controller("t", queue, scripted([result], calls))
    async with running(controller):
        queue.add("k")
        await clock.wait_for_sleepers(1)
        assert clock.next_wakeup() == pytest.approx(delay)
        assert queue.num_requeues("k") == requeues
        clock.advance(delay)
        await asyncio.wait_for(queue.wait_idle(), 1)
    assert calls == ["k", "k"]


async def test_workers_run_different_keys_concurrently_and_one_key_serially() -> None:
    queue: WorkQueue[str] = WorkQueue("t")
    release = asyncio.Event()
    active: list[str] = []
    peak = 0

    async def reconcile(key: str) -> None:
        nonlocal peak
        assert key not in active
        active.append(key)
        peak = max(peak, len(active))
        await release.wait()
        active.remove(key)

    controller = Controller("t", queue, reconcile, workers=3)
    async with running(controller):
        for key in ("a", "b", "c", "d", "a"):
            queue.add(key)
        await settle()
        assert sorted(active) == ["a", "b", "c"] and len(queue) == 1  # d waits for a free worker
        queue.add("a")  # while "a" is being reconciled: queued again only when it is done
        release.set()
        await asyncio.wait_for(queue.wait_idle(), 1)
    assert peak == 3


async def test_run_waits_for_informers_and_shuts_the_queue_down(client: ApiClient) -> None:
    factory = SharedInformerFactory(client)
    informer = factory.informer(CONFIGMAPS)
    queue: WorkQueue[str] = WorkQueue("t")
    seen: list[bool] = []

    async def reconcile(key: str) -> None:
        seen.append(informer.has_synced())

    queue.add("default/x")
    controller = Controller("t", queue, reconcile, wait_for=[informer])
    async with running(controller):
        await settle()
        assert seen == []  # not before the cache synced
        factory.start()
        await asyncio.wait_for(queue.wait_idle(), 5)
    await factory.shutdown()
    assert seen == [True] and queue.shutting_down


OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}


@pytest.mark.parametrize(("refs", "controller_only", "keys"), [
    pytest.param([OWNER], True, ["ns/rs"], id="controller-owner"),
    pytest.param([{**OWNER, "controller": False}], True, [], id="non-controller-skipped"),
    pytest.param([{**OWNER, "controller": False}], False, ["ns/rs"], id="any-owner"),
    pytest.param([{**OWNER, "kind": "StatefulSet"}], True, [], id="other-kind"),
    pytest.param([{**OWNER, "apiVersion": "extensions/v1beta1"}], True, [], id="other-group"),
    pytest.param([], True, [], id="no-owner"),
])
def test_owner_keys(refs: list[dict], controller_only: bool, keys: list[str]) -> None:
    obj = pod("p", "ns")
    obj["metadata"]["ownerReferences"] = refs
    assert owner_keys(obj, REPLICASETS, controller_only=controller_only) == keys


def test_enqueue_helpers_map_events_to_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    old, new = pod("p", "ns", owner=OWNER), pod("p", "ns", owner={**OWNER, "name": "rs2"})
    enqueue_owner(queue, REPLICASETS).on_update(old, new)  # type: ignore[misc]
    enqueue_object(queue).on_delete(DeletedFinalStateUnknown("ns/gone", pod("gone", "ns")))  # type: ignore[misc]
    enqueue_mapped(queue, lambda o: [f"node/{o['metadata']['name']}"]).on_add(pod("q"))  # type: ignore[misc]
    assert list(queue._queue) == ["ns/rs", "ns/rs2", "ns/gone", "node/q"]


async def test_a_small_controller_end_to_end(client: ApiClient) -> None:
    """Every ConfigMap labelled copy=yes gets an owned `<name>-copy` with the same data;
    a deleted copy comes back, and a changed source updates its copy."""
    factory = SharedInformerFactory(client)
    configmaps = factory.informer(CONFIGMAPS)
    queue: WorkQueue[str] = WorkQueue("copier")
    source_kind = CONFIGMAPS  # owners here are ConfigMaps themselves

    def is_source(obj: dict) -> bool:
        return (obj["metadata"].get("labels") or {}).get("copy") == "yes"

    configmaps.add_event_handler(enqueue_mapped(queue, lambda o: [f"{o['metadata']['namespace']}/"
                                                                 f"{o['metadata']['name']}"] if is_source(o) else []))
    configmaps.add_event_handler(enqueue_owner(queue, source_kind))

    async def reconcile(key: str) -> Result | None:
        namespace, name = split_key(key)
        source = configmaps.lister.get(name, namespace)
        if source is None:
            return None  # the copy goes with it (garbage collection is not ours)
        copy = configmaps.lister.get(f"{name}-copy", namespace)
        if copy is None:
            owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": source["metadata"]["uid"],
                     "controller": True}
            body = configmap(f"{name}-copy", namespace, data=source.get("data"))
            body["metadata"]["ownerReferences"] = [owner]
            try:
                await client.create(CONFIGMAPS, body)
            except ApiError as exc:
                if not exc.is_already_exists():
                    raise
        elif copy.get("data") != source.get("data"):
            await client.patch(CONFIGMAPS, f"{name}-copy", {"data": source.get("data")}, namespace)
        return None

    async def copy_data(name: str) -> dict | None:
        for _ in range(200):
            try:
                return (await client.get(CONFIGMAPS, f"{name}-copy", "default")).get("data")
            except ApiError:
                await asyncio.sleep(0.005)
        return None

    await client.create(CONFIGMAPS, configmap("src", data={"v": "1"}, labels={"copy": "yes"}))
    factory.start()
    controller = Controller("copier", queue, reconcile, workers=2, wait_for=[configmaps])
    try:
        async with running(controller):
            assert await copy_data("src") == {"v": "1"}
            await client.delete(CONFIGMAPS, "src-copy", "default")
            assert await copy_data("src") == {"v": "1"}
            await client.patch(CONFIGMAPS, "src", {"data": {"v": "2"}}, "default")
            for _ in range(200):
                if await copy_data("src") == {"v": "2"}:
                    break
                await asyncio.sleep(0.005)
            assert await copy_data("src") == {"v": "2"}
    finally:
        await factory.shutdown()
