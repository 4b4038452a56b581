"""Watch semantics against the real app, in process: selector transitions, bookmarks
under filtered churn, sendInitialEvents, 410 after compaction."""

from __future__ import annotations

import asyncio

import orjson

from apiserver.app import SERVER_KEY
from apiserver.handlers import watch as watch_module
from tests.apiserver.conftest import CM
from tests.apiserver.conftest import create as _create


async def _events(resp, count: int, timeout: float = 5.0) -> list[dict]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            line = await resp.content.readline()
            assert line, "stream ended early"
            out.append(orjson.loads(line))
    return out


async def test_selector_transitions_become_added_and_deleted(client):
    await _create(client, "a", {"team": "x"})
    listed = await (await client.get(CM)).json()
    rv = listed["metadata"]["resourceVersion"]
    resp = await client.get(CM, params={"watch": "true", "resourceVersion": rv, "labelSelector": "team=y"})
    await client.patch(f"{CM}/a", data=b'{"metadata":{"labels":{"team":"y"}}}',
                       headers={"Content-Type": "application/merge-patch+json"})
    await client.patch(f"{CM}/a", data=b'{"data":{"k":"v"}}', headers={"Content-Type": "application/merge-patch+json"})
    await client.patch(f"{CM}/a", data=b'{"metadata":{"labels":{"team":"z"}}}',
                       headers={"Content-Type": "application/merge-patch+json"})
    events = await _events(resp, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    resp.close()


async def test_bookmarks_keep_up_with_filtered_churn(client, monkeypatch):
    monkeypatch.setattr(watch_module, "BOOKMARK_INTERVAL", 0.3)
    listed = await (await client.get(CM)).json()
    resp = await client.get(CM, params={"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"],
                                        "labelSelector": "app=nothing", "allowWatchBookmarks": "true"})
    async def churn() -> None:  # changes the selector never matches, faster than the interval
        for i in range(30):
            await _create(client, f"churn-{i}")
            await asyncio.sleep(0.1)

    churning = asyncio.create_task(churn())
    try:
        [event] = await _events(resp, 1, timeout=1.2)  # well before the churn stops (~3 s)
        assert not churning.done()
    finally:
        churning.cancel()
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "ConfigMap"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(listed["metadata"]["resourceVersion"])
    resp.close()


async def test_send_initial_events_ends_with_annotated_bookmark(client):
    await _create(client, "one")
    await _create(client, "two")
    resp = await client.get(CM, params={"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
                                        "resourceVersionMatch": "NotOlderThan", "resourceVersion": ""})
    events = await _events(resp, 3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    resp.close()


async def test_watch_from_compacted_revision_is_expired(client):
    first = await _create(client, "old")
    for i in range(3):
        await _create(client, f"n{i}")
    storage = client.server.app[SERVER_KEY].storage
    await storage.compact(storage.current_revision())
    resp = await client.get(CM, params={"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]})
    [event] = await _events(resp, 1)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    listed = await client.get(CM, params={"resourceVersion": first["metadata"]["resourceVersion"],
                                          "resourceVersionMatch": "Exact"})
    assert listed.status == 410



async def test_watchers_sharing_decoded_events_each_get_their_own_view(client):
    """Watchers of one event share its decoded object and, for plain streams, its frame:
    a selector view, a Table view, another API version and a deletion's resourceVersion
    must still come out as each watcher alone would see them."""
    await _create(client, "shared", {"team": "x"})
    rv = (await (await client.get(CM)).json())["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv}
    plain = [await client.get(CM, params=params) for _ in range(2)]
    selected = await client.get(CM, params={**params, "labelSelector": "team=y"})
    table = await client.get(CM, params=params, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    await client.patch(f"{CM}/shared", data=b'{"metadata":{"labels":{"team":"y"}}}',
                       headers={"Content-Type": "application/merge-patch+json"})
    deleted = await client.delete(f"{CM}/shared")
    assert deleted.status == 200
    first, second = [await _events(resp, 2) for resp in plain]
    assert first == second
    assert [e["type"] for e in first] == ["MODIFIED", "DELETED"]
    assert first[0]["object"]["metadata"]["labels"] == {"team": "y"}
    assert int(first[1]["object"]["metadata"]["resourceVersion"]) > int(first[0]["object"]["metadata"]["resourceVersion"])
    assert [e["type"] for e in await _events(selected, 2)] == ["ADDED", "DELETED"]
    tabled = await _events(table, 2)
    assert [e["object"]["kind"] for e in tabled] == ["Table", "Table"]
    assert tabled[1]["object"]["rows"][0]["object"]["metadata"]["resourceVersion"] == \
        first[1]["object"]["metadata"]["resourceVersion"]
    for resp in (*plain, selected, table):
        resp.close()


async def test_core_and_events_api_watchers_of_one_event_get_their_versions(client):
    ns = "/api/v1/namespaces/default/events"
    rv = (await (await client.get(ns)).json())["metadata"]["resourceVersion"]
    core = await client.get(ns, params={"watch": "true", "resourceVersion": rv})
    new = await client.get("/apis/events.k8s.io/v1/namespaces/default/events",
                           params={"watch": "true", "resourceVersion": rv})
    body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Started",
            "message": "m", "type": "Normal", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}}
    resp = await client.post(ns, data=orjson.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()
    [core_event], [new_event] = await _events(core, 1), await _events(new, 1)
    assert core_event["object"]["apiVersion"] == "v1" and core_event["object"]["message"] == "m"
    assert new_event["object"]["apiVersion"] == "events.k8s.io/v1" and new_event["object"]["note"] == "m"
    core.close()
    new.close()
