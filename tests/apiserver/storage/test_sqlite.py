"""SQLiteStorage: the storage contract (contract.py), plus what only a file-backed log
has: surviving kill -9, a single owner per file, compaction's effect on rows and file
size, resuming an interrupted compaction, and the periodic compactor."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver.storage.interface import CompactedError, StorageError
from apiserver.storage.sqlite import SQLiteStorage
from tests.apiserver.storage.contract import Reopen, StorageContract, fill, take

REPO_ROOT = Path(__file__).resolve().parents[3]
WATCH_BUFFER = 64


@pytest.fixture
def watch_buffer() -> int:
    return WATCH_BUFFER


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def opened(db_path: Path) -> AsyncIterator[list[SQLiteStorage]]:
    """The open store, as a one-element list so `reopen` can swap it."""
    holder = [SQLiteStorage(db_path, watch_buffer=WATCH_BUFFER)]
    yield holder
    await holder[0].close()


@pytest.fixture
def store(opened: list[SQLiteStorage]) -> SQLiteStorage:
    return opened[0]


@pytest.fixture
def reopen(opened: list[SQLiteStorage], db_path: Path) -> Reopen:
    async def _reopen() -> SQLiteStorage:
        await opened[0].close()
        opened[0] = SQLiteStorage(db_path, watch_buffer=WATCH_BUFFER)
        return opened[0]

    return _reopen


class TestSQLiteContract(StorageContract):
    pass


def log_rows(store: SQLiteStorage) -> list[tuple[int, str, int]]:
    return store._conn.execute("SELECT id, key, deleted FROM log ORDER BY id").fetchall()


# -- durability and ownership -------------------------------------------------------

_WRITER = """
import asyncio, sys
from apiserver.storage.sqlite import SQLiteStorage

async def main():
    store = SQLiteStorage(sys.argv[1])
    i = 0
    while True:
        kv = await store.create(f"/k/{i:06d}", b"value-%d" % i)
        if i % 3 == 2:  # some updates too, so the log holds more than creates
            kv = await store.update(kv.key, b"updated-%d" % i, expected_revision=kv.mod_revision)
        print(kv.key, kv.mod_revision, kv.value.decode(), flush=True)
        i += 1

asyncio.run(main())
"""


async def test_acknowledged_writes_survive_kill_9(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _WRITER, str(db_path), env=env,
                                                stdout=asyncio.subprocess.PIPE)
    acked: list[bytes] = []
    killed = False
    try:
        while len(acked) < 300:
            line = await asyncio.wait_for(proc.stdout.readline(), 10)
            assert line, "writer exited early"
            acked.append(line)
        proc.send_signal(signal.SIGKILL)  # mid-stream: it is writing as fast as it can
        killed = True
        rest = await asyncio.wait_for(proc.stdout.read(), 10)
    finally:
        # Not `if proc.returncode is None`: that lags the exit, and a second signal's
        # poll() would reap the child under asyncio's child watcher (returncode 255).
        if not killed:
            proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    acked += [line + b"\n" for line in rest.split(b"\n")[:-1]]  # a cut-off last line was not acked
    store = SQLiteStorage(db_path)
    try:
        for line in acked:
            key, rev, value = line.decode().split()
            kv = await store.get(key)
            assert kv is not None and (kv.mod_revision, kv.value) == (int(rev), value.encode()), key
        assert store.current_revision() >= int(acked[-1].split()[1])
    finally:
        await store.close()


async def test_second_open_of_the_same_file_is_refused(store: SQLiteStorage, db_path: Path) -> None:
    await store.create("/a", b"1")
    with pytest.raises(StorageError, match="in use"):
        SQLiteStorage(db_path)
    assert (await store.get("/a")).value == b"1"


async def test_driver_errors_surface_as_storage_error(store: SQLiteStorage) -> None:
    await store.close()
    with pytest.raises(StorageError):
        await store.get("/a")


# -- watch internals ----------------------------------------------------------------

async def test_dropped_and_closed_watchers_are_unsubscribed(store: SQLiteStorage) -> None:
    slow = store.watch("/x/", revision=store.current_revision())
    closed = store.watch("/x/", revision=store.current_revision())
    closed.close()
    for i in range(WATCH_BUFFER + 1):
        await store.create(f"/x/{i}", b"")
    assert len(store._broadcaster) == 0
    slow.close()


async def test_replay_overtaken_by_compaction_raises_compacted(store: SQLiteStorage) -> None:
    await fill(store, "/r/", 700)  # the replay reads 500 rows per page
    w = store.watch("/r/", revision=1)
    await take(w, 1)
    await store.compact(store.current_revision())
    with pytest.raises(CompactedError):
        await take(w, 699)


# -- compaction -----------------------------------------------------------------------

async def history(store: SQLiteStorage, keys: int, updates: int, size: int = 10) -> None:
    for i in range(keys):
        kv = await store.create(f"/h/{i:04d}", b"c" * size)
        for _ in range(updates):
            kv = await store.update(kv.key, b"u" * size, expected_revision=kv.mod_revision)


async def test_compaction_drops_superseded_rows_and_tombstones(store: SQLiteStorage) -> None:
    await history(store, 10, 3)
    await store.delete("/h/0000")
    kept = await store.update("/h/0001", b"after", expected_revision=(await store.get("/h/0001")).mod_revision)
    await store.compact(kept.mod_revision - 1)
    rows = log_rows(store)
    # one row per live key as of the compacted revision, plus the update after it
    assert [key for _, key, _ in rows] == [f"/h/{i:04d}" for i in range(1, 10)] + ["/h/0001"]
    assert not any(deleted for _, _, deleted in rows)


async def test_interrupted_compaction_resumes_after_reopen(db_path: Path) -> None:
    store = SQLiteStorage(db_path, compact_batch=10)
    await history(store, 50, 3)
    target = store.current_revision()
    task = asyncio.create_task(store.compact(target))
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.compacted_revision() == target and len(log_rows(store)) > 50
    await store.close()
    store = SQLiteStorage(db_path, compact_batch=10)
    try:
        assert store.compacted_revision() == target
        await store.compact(target)
        assert len(log_rows(store)) == 50
    finally:
        await store.close()


async def test_compaction_shrinks_the_files(store: SQLiteStorage, db_path: Path) -> None:
    await history(store, 200, 9, size=4000)
    before = db_path.stat().st_size
    await store.compact(store.current_revision())
    wal = Path(f"{db_path}-wal")
    assert db_path.stat().st_size < before / 3
    assert not wal.exists() or wal.stat().st_size == 0


async def test_compactor_compacts_what_is_older_than_retain(store: SQLiteStorage) -> None:
    await history(store, 5, 2)
    old = store.current_revision()
    task = asyncio.create_task(store.run_compactor(interval=0.01, retain=0.3))
    try:
        await asyncio.sleep(0.05)
        assert store.compacted_revision() == 0  # nothing is `retain` old yet
        await store.create("/new", b"")
        for _ in range(200):
            if store.compacted_revision() >= old:
                break
            await asyncio.sleep(0.01)
        assert store.compacted_revision() >= old
        assert len(log_rows(store)) <= 6  # 5 keys + /new, once compacted up to current
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
