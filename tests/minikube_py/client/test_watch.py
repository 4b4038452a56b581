"""Raw watch streams: event types, resume from a resourceVersion, large lines, 410 Gone."""

from __future__ import annotations

import asyncio

import pytest

from minikube_py.client import CONFIGMAPS, ApiClient, ApiError
from minikube_py.client.streaming import LineReader
from tests.minikube_py.client.support import configmap


class _Chunks:
    """Stands in for aiohttp's StreamReader: hands out given chunks, then b""."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def readany(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize(("chunks", "lines"), [
    pytest.param([b'{"a":1}\n{"b":2}\n'], [b'{"a":1}', b'{"b":2}'], id="two-in-one-chunk"),
    pytest.param([b'{"a"', b':1}\n{"b', b'":2}\n'], [b'{"a":1}', b'{"b":2}'], id="split-across-chunks"),
    pytest.param([b'{"a":1}'], [b'{"a":1}'], id="no-final-newline"),
    pytest.param([b"\n\n", b'{"a":1}\n\n'], [b'{"a":1}'], id="blank-lines-skipped"),
    pytest.param([b"x" * 300_000, b"y" * 300_000 + b"\n"], [b"x" * 300_000 + b"y" * 300_000], id="huge-line"),
])
async def test_line_reader_splits_lines_of_any_length(chunks: list[bytes], lines: list[bytes]) -> None:
    reader = LineReader(_Chunks(chunks))  # type: ignore[arg-type]
    got = []
    while (line := await reader.next_line()) is not None:
        got.append(line)
    assert got == lines


async def _collect(stream, count: int) -> list[tuple[str, dict]]:
    events = []
    async for event_type, obj in stream:
        events.append((event_type, obj))
        if len(events) == count:
            break
    return events


async def test_watch_from_a_revision_sees_added_modified_deleted(client: ApiClient) -> None:
    start = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    await client.create(CONFIGMAPS, configmap("w", data={"v": "1"}))
    await client.patch(CONFIGMAPS, "w", {"data": {"v": "2"}}, "default")
    await client.delete(CONFIGMAPS, "w", "default")
    async with client.watch(CONFIGMAPS, "default", resource_version=start, timeout_seconds=5) as stream:
        events = await asyncio.wait_for(_collect(stream, 3), 5)
    assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert events[1][1]["data"] == {"v": "2"}
    assert stream.resource_version == events[2][1]["metadata"]["resourceVersion"]
    assert stream.closed


async def test_watch_streams_live_changes_with_selector(client: ApiClient) -> None:
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    stream = client.watch(CONFIGMAPS, "default", resource_version=rv, label_selector={"app": "x"}, timeout_seconds=5)
    collector = asyncio.create_task(_collect(stream, 2))
    await client.create(CONFIGMAPS, configmap("ignored"))
    await client.create(CONFIGMAPS, configmap("one", labels={"app": "x"}))
    await client.patch(CONFIGMAPS, "one", {"metadata": {"labels": {"app": "y"}}}, "default")  # leaves the selection
    events = await asyncio.wait_for(collector, 5)
    stream.close()
    assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "one"), ("DELETED", "one")]


async def test_watch_carries_objects_larger_than_aiohttps_line_limit(client: ApiClient) -> None:
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    big = "z" * 400_000
    await client.create(CONFIGMAPS, configmap("big", data={"blob": big}))
    async with client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=5) as stream:
        [(event_type, obj)] = await asyncio.wait_for(_collect(stream, 1), 5)
    assert event_type == "ADDED" and obj["data"]["blob"] == big


async def test_watch_without_revision_starts_with_synthetic_adds(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, configmap("existing"))
    async with client.watch(CONFIGMAPS, "default", timeout_seconds=5) as stream:
        [(event_type, obj)] = await asyncio.wait_for(_collect(stream, 1), 5)
    assert (event_type, obj["metadata"]["name"]) == ("ADDED", "existing")


async def test_watch_ends_at_its_timeout(client: ApiClient) -> None:
    """The one test that waits a whole second: the smallest timeout a watch can ask for."""
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    events = []
    async with client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=1) as stream:
        async for event in stream:
            events.append(event)
    assert events == []


async def test_watch_from_a_compacted_revision_raises_gone(client: ApiClient, apiserver) -> None:
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    await client.create(CONFIGMAPS, configmap("a"))
    await client.create(CONFIGMAPS, configmap("b"))
    await apiserver.compact()
    with pytest.raises(ApiError) as gone:
        async with client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=5) as stream:
            await asyncio.wait_for(_collect(stream, 1), 5)
    assert gone.value.is_gone() and gone.value.code == 410 and gone.value.reason == "Expired"


async def test_bad_watch_request_raises_before_streaming(client: ApiClient) -> None:
    with pytest.raises(ApiError) as bad:
        async with client.watch(CONFIGMAPS, "default", label_selector="a in (", timeout_seconds=5) as stream:
            await _collect(stream, 1)
    assert bad.value.code == 400
