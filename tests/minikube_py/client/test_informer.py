"""Informers against the real API server: list, watch, relist after 410 or a dropped
stream (delivering the differences), indexes, shared factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from minikube_py.client import (
    CONFIGMAPS,
    PODS,
    ApiClient,
    FakeClock,
    Informer,
    SharedInformerFactory,
)
from tests.minikube_py.client.support import Recorder, configmap, pod


@asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[Informer]:
    informer.start()
    try:
        assert await informer.wait_synced(5)
        yield informer
    finally:
        await informer.stop()


async def test_informer_lists_then_watches_add_update_delete(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, configmap("a"))
    informer = Informer(client, CONFIGMAPS, namespace="default")
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    assert not informer.has_synced()
    async with running(informer):
        assert informer.has_synced() and recorder.events == [("add", "a")]
        await client.create(CONFIGMAPS, configmap("b"))
        await client.patch(CONFIGMAPS, "a", {"data": {"x": "1"}}, "default")
        await client.delete(CONFIGMAPS, "b", "default")
        events = await recorder.wait_for(4)
        assert events == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")]
        assert informer.store.keys() == ["default/a"]
        cached = informer.lister.get("a", "default")
        assert cached["data"] == {"x": "1"} and cached["kind"] == "ConfigMap" and cached["apiVersion"] == "v1"
        assert int(informer.resource_version) > int(cached["metadata"]["resourceVersion"])  # b's delete
        assert informer.relists == 0


async def test_relist_after_410_delivers_the_differences(client: ApiClient, apiserver) -> None:
    for name in ("a", "b", "c"):
        await client.create(CONFIGMAPS, configmap(name))
    informer = Informer(client, CONFIGMAPS, namespace="default")
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    async with running(informer):
        await recorder.wait_for(3)
    # While the informer is down: a delete, an update and an add, then history is compacted,
    # so resuming the watch from the informer's resourceVersion answers 410 Gone.
    await client.delete(CONFIGMAPS, "b", "default")
    await client.patch(CONFIGMAPS, "c", {"data": {"v": "2"}}, "default")
    await client.create(CONFIGMAPS, configmap("d"))
    await apiserver.compact()
    async with running(informer):
        events = await recorder.wait_for(6)
        assert informer.relists == 1
        assert sorted(events[3:]) == [("add", "d"), ("delete-unknown", "b"), ("update", "c")]
        assert sorted(informer.store.keys()) == ["default/a", "default/c", "default/d"]
        await client.create(CONFIGMAPS, configmap("e"))  # and it watches on from the new list
        assert (await recorder.wait_for(7))[6] == ("add", "e")


async def test_dropped_watch_relists_after_backoff(client: ApiClient, apiserver) -> None:
    clock = FakeClock()
    informer = Informer(client, CONFIGMAPS, namespace="default", clock=clock)
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    async with running(informer):
        await client.create(CONFIGMAPS, configmap("a"))
        await recorder.wait_for(1)
        apiserver.drop_watchers()
        await clock.wait_for_sleepers(1)  # the informer backs off before re-listing
        assert 0.8 <= clock.next_wakeup() <= 1.6
        await client.create(CONFIGMAPS, configmap("missed"))
        clock.advance(2)
        assert (await recorder.wait_for(2))[1] == ("add", "missed")
        assert informer.relists == 1
        await client.create(CONFIGMAPS, configmap("live"))
        assert (await recorder.wait_for(3))[2] == ("add", "live")


async def test_unreachable_server_backs_off_exponentially() -> None:
    clock = FakeClock()
    async with ApiClient("http://127.0.0.1:9", request_timeout=2) as unreachable:
        informer = Informer(unreachable, CONFIGMAPS, clock=clock)
        informer.start()
        try:
            delays = []
            for _ in range(4):
                await clock.wait_for_sleepers(1)
                delays.append(clock.next_wakeup())
                clock.advance(delays[-1])
            assert 0.8 <= delays[0] <= 1.6 and 1.6 <= delays[1] <= 3.2 and 3.2 <= delays[2] <= 6.4
            assert not informer.has_synced()
        finally:
            await informer.stop()


async def test_paged_initial_list_and_label_selection(client: ApiClient) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, configmap(f"web-{i}", labels={"app": "web"}))
    await client.create(CONFIGMAPS, configmap("db", labels={"app": "db"}))
    informer = Informer(client, CONFIGMAPS, label_selector={"app": "web"}, page_size=2)
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    async with running(informer):
        assert len(informer.store) == 5
        await client.patch(CONFIGMAPS, "web-0", {"metadata": {"labels": {"app": "db"}}}, "default")
        assert (await recorder.wait_for(6))[5] == ("delete", "web-0")  # left the selection
        assert len(informer.lister.list(selector="app=web")) == 4


async def test_handler_added_after_sync_is_told_about_the_cache(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, configmap("a"))
    informer = Informer(client, CONFIGMAPS)
    async with running(informer):
        late = Recorder()
        informer.add_event_handler(late.handler())
        assert late.events == [("add", "a")]


async def test_a_failing_handler_does_not_stop_the_informer(client: ApiClient) -> None:
    informer = Informer(client, CONFIGMAPS)
    recorder = Recorder()

    def broken(obj: dict) -> None:
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=broken)
    informer.add_event_handler(recorder.handler())
    async with running(informer):
        await client.create(CONFIGMAPS, configmap("a"))
        await client.create(CONFIGMAPS, configmap("b"))
        assert await recorder.wait_for(2) == [("add", "a"), ("add", "b")]


async def test_owner_index_through_the_informer(client: ApiClient) -> None:
    def owner(uid: str) -> dict:
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"rs-{uid}", "uid": uid, "controller": True}

    await client.create(PODS, pod("p1", owner=owner("u1")))
    await client.create(PODS, pod("p2", owner=owner("u1")))
    await client.create(PODS, pod("p3", owner=owner("u2")))
    informer = Informer(client, PODS)
    recorder = Recorder()
    informer.add_event_handler(recorder.handler())
    async with running(informer):
        assert [p["metadata"]["name"] for p in informer.lister.by_owner_uid("u1")] == ["p1", "p2"]
        await client.delete(PODS, "p1", "default", grace_period_seconds=0)
        await client.create(PODS, pod("p4", owner=owner("u1")))
        await recorder.wait_for(5)
        assert [p["metadata"]["name"] for p in informer.lister.by_owner_uid("u1")] == ["p2", "p4"]


async def test_factory_shares_informers(client: ApiClient) -> None:
    factory = SharedInformerFactory(client)
    pods = factory.informer(PODS)
    assert factory.informer(PODS) is pods
    assert factory.informer(PODS, label_selector={"a": "b"}) is not pods
    assert factory.informer(PODS, label_selector="a=b") is factory.informer(PODS, label_selector={"a": "b"})
    assert factory.lister(CONFIGMAPS, namespace="default") is factory.informer(CONFIGMAPS, namespace="default").lister
    await client.create(PODS, pod("p"))
    factory.start()
    try:
        assert await factory.wait_for_cache_sync(5)
        assert [p["metadata"]["name"] for p in pods.lister.list()] == ["p"]
        assert all(i.has_synced() for i in factory.informers())
    finally:
        await factory.shutdown()
    assert all(i._task is None for i in factory.informers())


async def test_wait_synced_times_out(client: ApiClient) -> None:
    informer = Informer(client, CONFIGMAPS)
    assert not await informer.wait_synced(0.01)


@pytest.mark.parametrize("cluster_scoped_namespace", [None, "ignored"])
async def test_cluster_scoped_informer_ignores_namespace(client: ApiClient, cluster_scoped_namespace) -> None:
    from minikube_py.client import NAMESPACES

    informer = Informer(client, NAMESPACES, namespace=cluster_scoped_namespace)
    async with running(informer):
        assert "default" in informer.store and "kube-system" in informer.store
    await asyncio.sleep(0)
