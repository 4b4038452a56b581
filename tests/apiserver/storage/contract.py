"""The storage contract as tests: what every backend of interface.Storage must do.

A backend's test module subclasses `StorageContract` (pytest collects the subclass, named
Test...) and provides three fixtures:

    store          a fresh, empty backend (closed by the fixture afterwards)
    reopen         async () -> Storage: close `store` and open it again on the same data
    watch_buffer   the per-watcher buffer size `store` was made with (keep it small)

Watch tests consume events with a timeout so a missing event fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    Storage,
    WatchDroppedError,
    Watcher,
)

Reopen = Callable[[], Awaitable[Storage]]


async def take(w: Watcher, n: int, timeout: float = 5.0) -> list[Event]:
    """The next n events of `w` (fewer if the stream ends); fails after `timeout`."""
    async def collect() -> list[Event]:
        events: list[Event] = []
        async for event in w:
            events.append(event)
            if len(events) == n:
                break
        return events

    return await asyncio.wait_for(collect(), timeout)


async def fill(store: Storage, prefix: str, n: int) -> list[int]:
    return [(await store.create(f"{prefix}{i:04d}", b"v%d" % i)).mod_revision for i in range(n)]


class StorageContract:
    # -- get / list ------------------------------------------------------------------

    async def test_get_returns_value_and_revisions(self, store: Storage) -> None:
        kv = await store.create("/r/a", b"one")
        assert kv.value == b"one" and kv.create_revision == kv.mod_revision == store.current_revision()
        assert await store.get("/r/a") == kv

    async def test_get_missing_key_returns_none(self, store: Storage) -> None:
        assert await store.get("/r/nope") is None

    async def test_every_write_bumps_the_revision_by_one(self, store: Storage) -> None:
        start = store.current_revision()
        a = await store.create("/r/a", b"1")
        b = await store.update("/r/a", b"2", expected_revision=a.mod_revision)
        c = await store.delete("/r/a")
        assert [a.mod_revision, b.mod_revision, c.mod_revision] == [start + 1, start + 2, start + 3]
        assert store.current_revision() == start + 3

    async def test_get_at_past_revision_sees_value_of_then(self, store: Storage) -> None:
        a = await store.create("/r/a", b"1")
        b = await store.update("/r/a", b"2", expected_revision=a.mod_revision)
        d = await store.delete("/r/a")
        assert (await store.get("/r/a", revision=a.mod_revision)).value == b"1"
        assert (await store.get("/r/a", revision=b.mod_revision)).value == b"2"
        assert await store.get("/r/a", revision=d.mod_revision) is None

    async def test_list_returns_keys_under_prefix_in_key_order(self, store: Storage) -> None:
        for key in ["/r/b", "/r/a", "/rr/x", "/q/z", "/r/c/d"]:
            await store.create(key, key.encode())
        res = await store.list("/r/")
        assert [kv.key for kv in res.items] == ["/r/a", "/r/b", "/r/c/d"]
        assert res.revision == store.current_revision() and not res.more and res.remaining == 0
        assert [kv.key for kv in (await store.list("")).items] == ["/q/z", "/r/a", "/r/b", "/r/c/d", "/rr/x"]

    async def test_list_pages_with_limit_and_start_after_count_remaining(self, store: Storage) -> None:
        await fill(store, "/p/", 10)
        await store.create("/pz", b"outside")
        first = await store.list("/p/", limit=4)
        assert [kv.key for kv in first.items] == ["/p/0000", "/p/0001", "/p/0002", "/p/0003"]
        assert first.more and first.remaining == 6
        second = await store.list("/p/", limit=4, start_after=first.items[-1].key, revision=first.revision)
        assert [kv.key[3:] for kv in second.items] == ["0004", "0005", "0006", "0007"]
        assert second.more and second.remaining == 2
        last = await store.list("/p/", limit=4, start_after=second.items[-1].key)
        assert [kv.key[3:] for kv in last.items] == ["0008", "0009"]
        assert not last.more and last.remaining == 0

    async def test_list_at_past_revision_is_a_snapshot(self, store: Storage) -> None:
        revs = await fill(store, "/s/", 5)
        kv = await store.update("/s/0001", b"changed", expected_revision=revs[1])
        await store.delete("/s/0002")
        await store.create("/s/0009", b"later")
        old = await store.list("/s/", revision=kv.mod_revision - 1)
        assert [(x.key, x.value) for x in old.items] == [(f"/s/000{i}", b"v%d" % i) for i in range(5)]
        assert old.revision == kv.mod_revision - 1
        mid = await store.list("/s/", revision=kv.mod_revision + 1, limit=2)
        assert [x.key for x in mid.items] == ["/s/0000", "/s/0001"] and mid.remaining == 2

    async def test_list_skips_deleted_keys_when_paging(self, store: Storage) -> None:
        await fill(store, "/d/", 100)
        for i in range(100):
            if i % 10:
                await store.delete(f"/d/{i:04d}")
        res = await store.list("/d/", limit=3)
        assert [kv.key for kv in res.items] == ["/d/0000", "/d/0010", "/d/0020"]
        assert res.more and res.remaining == 7
        assert await store.count("/d/") == 10

    async def test_list_at_future_revision_raises(self, store: Storage) -> None:
        await store.create("/f/a", b"1")
        with pytest.raises(FutureRevisionError):
            await store.list("/f/", revision=store.current_revision() + 1)

    async def test_count_counts_live_keys_under_prefix(self, store: Storage) -> None:
        await fill(store, "/c/", 7)
        await store.create("/cc", b"x")
        await store.delete("/c/0003")
        assert await store.count("/c/") == 6
        assert await store.count("") == 7

    # -- writes ----------------------------------------------------------------------

    async def test_create_existing_key_raises_key_exists(self, store: Storage) -> None:
        await store.create("/w/a", b"1")
        rev = store.current_revision()
        with pytest.raises(KeyExistsError):
            await store.create("/w/a", b"2")
        assert store.current_revision() == rev and (await store.get("/w/a")).value == b"1"

    async def test_create_after_delete_starts_a_new_lifetime(self, store: Storage) -> None:
        a = await store.create("/w/a", b"1")
        await store.delete("/w/a")
        again = await store.create("/w/a", b"2")
        assert again.create_revision == again.mod_revision > a.create_revision

    async def test_update_with_stale_revision_conflicts_and_reports_current(self, store: Storage) -> None:
        a = await store.create("/w/a", b"1")
        b = await store.update("/w/a", b"2", expected_revision=a.mod_revision)
        with pytest.raises(ConflictError) as err:
            await store.update("/w/a", b"3", expected_revision=a.mod_revision)
        assert err.value.current == b
        assert (await store.get("/w/a")).value == b"2" and store.current_revision() == b.mod_revision

    async def test_update_with_revision_zero_is_unconditional(self, store: Storage) -> None:
        a = await store.create("/w/a", b"1")
        await store.update("/w/a", b"2", expected_revision=a.mod_revision)
        c = await store.update("/w/a", b"3", expected_revision=store.current_revision())
        assert c.value == b"3" and c.create_revision == a.create_revision

    async def test_update_or_delete_of_missing_key_raises_not_found(self, store: Storage) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.update("/w/missing", b"1", expected_revision=store.current_revision())
        await store.create("/w/gone", b"1")
        await store.delete("/w/gone")
        with pytest.raises(KeyNotFoundError):
            await store.update("/w/gone", b"1", expected_revision=store.current_revision())
        with pytest.raises(KeyNotFoundError):
            await store.delete("/w/gone")

    async def test_delete_with_stale_revision_conflicts(self, store: Storage) -> None:
        a = await store.create("/w/a", b"1")
        b = await store.update("/w/a", b"2", expected_revision=a.mod_revision)
        with pytest.raises(ConflictError) as err:
            await store.delete("/w/a", expected_revision=a.mod_revision)
        assert err.value.current == b and await store.get("/w/a") == b

    async def test_delete_returns_last_value_at_delete_revision(self, store: Storage) -> None:
        a = await store.create("/w/a", b"1")
        b = await store.update("/w/a", b"2", expected_revision=a.mod_revision)
        d = await store.delete("/w/a", expected_revision=b.mod_revision)
        assert (d.key, d.value, d.create_revision) == ("/w/a", b"2", a.create_revision)
        assert d.mod_revision == b.mod_revision + 1 == store.current_revision()
        assert await store.get("/w/a") is None

    async def test_value_fn_receives_the_revision_of_the_write(self, store: Storage) -> None:
        a = await store.create("/w/a", value_fn=lambda rev: b"rv=%d" % rev)
        assert a.value == b"rv=%d" % a.mod_revision
        b = await store.update("/w/a", value_fn=lambda rev: b"rv=%d" % rev, expected_revision=a.mod_revision)
        assert b.value == b"rv=%d" % b.mod_revision and (await store.get("/w/a")).value == b.value

    async def test_failing_value_fn_writes_nothing(self, store: Storage) -> None:
        rev = store.current_revision()

        def boom(_: int) -> bytes:
            raise RuntimeError("encode failed")

        with pytest.raises(RuntimeError):
            await store.create("/w/a", value_fn=boom)
        assert await store.get("/w/a") is None and store.current_revision() == rev

    async def test_value_and_value_fn_are_exclusive(self, store: Storage) -> None:
        with pytest.raises(TypeError):
            await store.create("/w/a", b"1", value_fn=lambda rev: b"2")
        with pytest.raises(TypeError):
            await store.create("/w/a")

    # -- watch -----------------------------------------------------------------------

    async def test_watch_replays_history_after_revision(self, store: Storage) -> None:
        start = store.current_revision()
        a = await store.create("/h/a", b"1")
        b = await store.update("/h/a", b"2", expected_revision=a.mod_revision)
        d = await store.delete("/h/a")
        w = store.watch("/h/", revision=start)
        try:
            put, upd, dele = await take(w, 3)
        finally:
            w.close()
        assert (put.type, put.kv, put.prev, put.created) == ("PUT", a, None, True)
        assert (upd.type, upd.kv, upd.prev, upd.created) == ("PUT", b, a, False)
        assert (dele.type, dele.kv, dele.prev) == ("DELETE", d, b)
        assert dele.kv.value == b"2"

    async def test_watch_from_now_streams_live_events(self, store: Storage) -> None:
        await store.create("/l/old", b"0")
        w = store.watch("/l/", revision=store.current_revision())
        try:
            a = await store.create("/l/a", b"1")
            d = await store.delete("/l/a")
            events = await take(w, 2)
        finally:
            w.close()
        assert [(e.type, e.kv) for e in events] == [("PUT", a), ("DELETE", d)]
        assert events[1].kv.value == b"1" and events[1].prev == a

    async def test_watch_only_sees_keys_under_its_prefix(self, store: Storage) -> None:
        w = store.watch("/pods/ns1/", revision=store.current_revision())
        try:
            for key in ["/pods/ns2/x", "/pods/ns1/a", "/pods/ns10/y", "/pods/ns1/b"]:
                await store.create(key, b"")
            events = await take(w, 2)
        finally:
            w.close()
        assert [e.kv.key for e in events] == ["/pods/ns1/a", "/pods/ns1/b"]

    async def test_watch_has_no_gap_or_duplicate_across_replay_and_live(self, store: Storage) -> None:
        """Watches start from past revisions while a writer keeps writing, and consume as
        they go: each must see every revision after its start exactly once, in order,
        whether it came from the replay or from the live stream."""
        base, total = store.current_revision(), 1200
        final = base + total
        consumers: list[asyncio.Task[tuple[int, list[int]]]] = []

        async def consume(start: int) -> tuple[int, list[int]]:
            w, got = store.watch("/g/", revision=start), []
            try:
                async for event in w:
                    got.append(event.revision)
                    if event.revision == final:
                        return start, got
            finally:
                w.close()
            return start, got

        for i in range(total):
            await store.create(f"/g/{i:05d}", b"x")
            if i in (60, 300, 700, 1150):  # the one at 700 replays two pages and more
                consumers.append(asyncio.create_task(consume(base + (i - 40 if i != 700 else 0))))
            if i % 5 == 0:
                await asyncio.sleep(0)
        for start, got in await asyncio.wait_for(asyncio.gather(*consumers), 10):
            assert got == list(range(start + 1, final + 1))

    async def test_every_write_reaches_every_watcher(self, store: Storage) -> None:
        watchers = [store.watch("/fan/", revision=store.current_revision()) for _ in range(150)]
        tasks = [asyncio.create_task(take(w, 20)) for w in watchers]
        written = [await store.create(f"/fan/{i}", b"x") for i in range(20)]
        try:
            for events in await asyncio.gather(*tasks):
                assert [e.kv for e in events] == written
        finally:
            for w in watchers:
                w.close()

    async def test_slow_watcher_is_dropped_while_fast_one_continues(
            self, store: Storage, watch_buffer: int) -> None:
        n = watch_buffer * 2
        slow = store.watch("/s/", revision=store.current_revision())
        fast = store.watch("/s/", revision=store.current_revision())
        fast_task = asyncio.create_task(take(fast, n))
        for i in range(n):
            await store.create(f"/s/{i:05d}", b"x")
            await asyncio.sleep(0)
        assert len(await fast_task) == n
        received = 0
        with pytest.raises(WatchDroppedError):
            async for _ in slow:
                received += 1
        assert 0 < received <= watch_buffer
        fast.close()

    async def test_close_ends_a_waiting_watch(self, store: Storage) -> None:
        w = store.watch("/c/", revision=store.current_revision())

        async def drain() -> list[Event]:
            return [e async for e in w]

        task = asyncio.create_task(drain())
        await asyncio.sleep(0.01)
        w.close()
        assert await asyncio.wait_for(task, 2) == []

    async def test_closing_the_store_ends_watches(self, store: Storage, reopen: Reopen) -> None:
        w = store.watch("/c/", revision=store.current_revision())

        async def drain() -> list[Event]:
            return [e async for e in w]

        task = asyncio.create_task(drain())
        await asyncio.sleep(0.01)
        await reopen()
        assert await asyncio.wait_for(task, 2) == []

    # -- compaction ------------------------------------------------------------------

    async def test_compaction_keeps_the_newest_values(self, store: Storage) -> None:
        revs = await fill(store, "/k/", 5)
        for i, rev in enumerate(revs):
            await store.update(f"/k/{i:04d}", b"new%d" % i, expected_revision=rev)
        await store.delete("/k/0004")
        before = await store.list("/k/")
        await store.compact(store.current_revision())
        after = await store.list("/k/")
        assert after.items == before.items and len(after.items) == 4
        assert store.compacted_revision() == store.current_revision()

    async def test_reads_below_compacted_revision_raise_compacted(self, store: Storage) -> None:
        revs = await fill(store, "/k/", 3)
        await store.update("/k/0000", b"x", expected_revision=revs[0])
        at = store.current_revision() - 1
        await store.compact(at)
        with pytest.raises(CompactedError) as err:
            await store.list("/k/", revision=at - 1)
        assert (err.value.requested, err.value.compacted) == (at - 1, at)
        with pytest.raises(CompactedError):
            await store.get("/k/0000", revision=at - 1)
        assert (await store.get("/k/0000", revision=at)).value == b"v0"
        assert len((await store.list("/k/", revision=at)).items) == 3

    async def test_watch_from_compacted_revision_raises_compacted(self, store: Storage) -> None:
        await fill(store, "/k/", 3)
        await store.compact(store.current_revision())
        with pytest.raises(CompactedError):
            w = store.watch("/k/", revision=1)  # raises here, or from the first iteration
            try:
                await take(w, 1)
            finally:
                w.close()

    async def test_watch_from_compacted_revision_replays_updates_with_prev(self, store: Storage) -> None:
        a = await store.create("/k/a", b"1")
        b = await store.update("/k/a", b"2", expected_revision=a.mod_revision)
        await store.create("/k/other", b"x")
        at = store.current_revision()
        await store.compact(at)
        c = await store.update("/k/a", b"3", expected_revision=b.mod_revision)
        w = store.watch("/k/", revision=at)
        try:
            [event] = await take(w, 1)
        finally:
            w.close()
        assert (event.kv, event.prev) == (c, b)

    async def test_compacted_revision_survives_reopen(self, store: Storage, reopen: Reopen) -> None:
        await fill(store, "/k/", 3)
        d = await store.delete("/k/0002")
        await store.compact(d.mod_revision)
        store = await reopen()
        assert store.compacted_revision() == d.mod_revision == store.current_revision()
        with pytest.raises(CompactedError):
            await store.list("/k/", revision=d.mod_revision - 1)
        assert [kv.key for kv in (await store.list("/k/")).items] == ["/k/0000", "/k/0001"]
        assert (await store.create("/k/new", b"n")).mod_revision == d.mod_revision + 1

    async def test_compact_past_current_revision_raises(self, store: Storage) -> None:
        await store.create("/k/a", b"1")
        with pytest.raises(FutureRevisionError):
            await store.compact(store.current_revision() + 1)
