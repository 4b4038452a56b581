"""The default storage backend: an append-only revision log in one SQLite file.

See sqlschema.py for the table layout, broadcast.py and watcher.py for watch, and
compact.py for compaction. This module is the `Storage` contract on top of them.

Shape, and why:
- All database work runs synchronously on the event-loop thread, on one connection, in
  short transactions. A point read or a one-row append takes microseconds, far less than
  a hop to a thread pool would; and one connection means compaction and writes never
  fight over SQLite's lock.
- This process is the file's only writer (the file is opened with an exclusive lock), so
  the next revision is always current + 1: `value_fn` gets it before the row is written,
  and the compare-and-swap check and the append need no transaction around them, since
  nothing can run between them (no await).
- Every committed write is published to watchers from memory (broadcast.py); only a
  watch that starts in the past reads the log.
- sqlite3 errors are translated into StorageError here, once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from functools import partial
from types import TracebackType

from apiserver.storage import compact as compaction
from apiserver.storage import sqlschema as sql
from apiserver.storage.broadcast import Broadcaster
from apiserver.storage.interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
)
from apiserver.storage.watcher import LogWatcher

log = logging.getLogger(__name__)

ValueFn = Callable[[int], bytes]
_REPLAY_PAGE = 500


class _DriverErrors:
    """`with _DRIVER_ERRORS:` turns a sqlite3 error into StorageError (cheaper than a
    generator-based context manager on the hot path)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"sqlite: {exc}") from exc


_DRIVER_ERRORS = _DriverErrors()


def _bytes_of(value: bytes | None, value_fn: ValueFn | None, revision: int) -> bytes:
    """The value to store: `value`, or `value_fn(revision)`; exactly one must be given."""
    if (value is None) == (value_fn is None):
        raise TypeError("pass exactly one of value and value_fn")
    data = value if value_fn is None else value_fn(revision)
    if not isinstance(data, bytes):
        raise TypeError(f"values are bytes, not {type(data).__name__}")
    return data


class SQLiteStorage:
    """`Storage` (interface.py) on a SQLite revision log at `path`.

    create() and update() take the value either positionally or as `value_fn`, a
    function called with the revision the write will get (inside the write, after the
    existence/compare-and-swap checks pass) that returns the bytes to store; this lets the
    API server put resourceVersion inside the stored object. If value_fn raises, nothing
    is written and the exception propagates.

    watch() raises CompactedError at once if `revision` is already compacted; its
    iterator raises CompactedError too if a compaction overtakes a replay in progress.
    """

    def __init__(self, path: str | os.PathLike[str], *, watch_buffer: int = 1000,
                 compact_batch: int = 500) -> None:
        try:
            self._conn = sql.connect(path)
            self._compact_rev, self._compact_cursor = compaction.read_meta(self._conn)
            newest = self._conn.execute("SELECT max(id) FROM log").fetchone()[0] or 0
        except sqlite3.Error as e:
            raise StorageError(f"sqlite: cannot open {os.fspath(path)}: {e}") from e
        # Compaction may have dropped the newest rows (tombstones), never a revision
        # above compact_rev, so the larger of the two is the current revision.
        self._rev = max(newest, self._compact_rev)
        self._watch_buffer = watch_buffer
        self._compact_batch = compact_batch
        self._broadcaster = Broadcaster()
        self._compact_lock = asyncio.Lock()
        self._closed = False

    # -- reads ---------------------------------------------------------------------

    def current_revision(self) -> int:
        return self._rev

    def compacted_revision(self) -> int:
        return self._compact_rev

    def _read_revision(self, revision: int) -> int:
        """The revision a read at `revision` (0 = now) sees; raises if out of range."""
        if revision <= 0:
            return self._rev
        if revision > self._rev:
            raise FutureRevisionError(f"revision {revision} is newer than current {self._rev}")
        if revision < self._compact_rev:
            raise CompactedError(revision, self._compact_rev)
        return revision

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        with _DRIVER_ERRORS:
            if revision:
                row = self._conn.execute(sql.GET_AT, (key, self._read_revision(revision))).fetchone()
            else:
                row = self._conn.execute(sql.GET_NOW, (key,)).fetchone()
        if row is None or row[2]:
            return None
        return KeyValue(key, row[3], row[1], row[0])

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str = "") -> ListResult:
        at = self._read_revision(revision)
        lo = start_after + "\0" if start_after and start_after >= prefix else prefix
        hi = sql.key_range_end(prefix)
        with _DRIVER_ERRORS:
            items = self._scan_live(lo, hi, at, limit + 1 if limit > 0 else -1)
            more = 0 < limit < len(items)
            remaining = 0
            if more:
                remaining = self._query_newest(sql.COUNT, sql.COUNT_UNBOUNDED, items[limit].key, hi, at, -1)[0][0]
                del items[limit:]
        return ListResult(items=items, revision=at, more=more, remaining=remaining)

    async def count(self, prefix: str) -> int:
        with _DRIVER_ERRORS:
            return self._query_newest(sql.COUNT, sql.COUNT_UNBOUNDED, prefix, sql.key_range_end(prefix),
                                      self._rev, -1)[0][0]

    def _scan_live(self, lo: str, hi: str | None, at: int, want: int) -> list[KeyValue]:
        """At least `want` (-1 = all) live keys in [lo, hi) as of revision `at`, in key
        order, if there are that many. Deleted keys use up the SQL LIMIT, so a range
        dense with tombstones takes a few rounds."""
        items: list[KeyValue] = []
        while True:
            ask = -1 if want < 0 else max(want - len(items), 32)
            rows = self._query_newest(sql.LIST, sql.LIST_UNBOUNDED, lo, hi, at, ask)
            items += [KeyValue(key, value, created, mod) for key, mod, deleted, created, value in rows if not deleted]
            if ask < 0 or len(rows) < ask or len(items) >= want:
                return items
            lo = rows[-1][0] + "\0"

    def _query_newest(self, bounded: str, unbounded: str, lo: str, hi: str | None,
                      *params: int) -> list[tuple]:
        if hi is None:
            return self._conn.execute(unbounded, (lo, *params)).fetchall()
        return self._conn.execute(bounded, (lo, hi, *params)).fetchall()

    # -- writes --------------------------------------------------------------------
    # Each write: read the key's newest row, check, append one row (autocommit: the
    # INSERT is its own transaction), then publish. No await in between.

    async def create(self, key: str, value: bytes | None = None, *,
                     value_fn: ValueFn | None = None) -> KeyValue:
        with _DRIVER_ERRORS:
            row = self._conn.execute(sql.GET_NOW, (key,)).fetchone()
            if row is not None and not row[2]:
                raise KeyExistsError(key)
            rev = self._rev + 1
            data = _bytes_of(value, value_fn, rev)
            self._conn.execute(sql.INSERT, (rev, key, rev, 0, 0, data))
            self._rev = rev
        kv = KeyValue(key, data, rev, rev)
        self._broadcaster.publish(Event("PUT", kv, None))
        return kv

    async def update(self, key: str, value: bytes | None = None, *, expected_revision: int,
                     value_fn: ValueFn | None = None) -> KeyValue:
        with _DRIVER_ERRORS:
            prev = self._current_for_write(key, expected_revision)
            rev = self._rev + 1
            data = _bytes_of(value, value_fn, rev)
            self._conn.execute(sql.INSERT, (rev, key, prev.create_revision, prev.mod_revision, 0, data))
            self._rev = rev
        kv = KeyValue(key, data, prev.create_revision, rev)
        self._broadcaster.publish(Event("PUT", kv, prev))
        return kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        with _DRIVER_ERRORS:
            prev = self._current_for_write(key, expected_revision)
            rev = self._rev + 1
            self._conn.execute(sql.INSERT, (rev, key, prev.create_revision, prev.mod_revision, 1, prev.value))
            self._rev = rev
        kv = KeyValue(key, prev.value, prev.create_revision, rev)
        self._broadcaster.publish(Event("DELETE", kv, prev))
        return kv

    def _current_for_write(self, key: str, expected_revision: int) -> KeyValue:
        """The key's current value, checked against the compare-and-swap revision."""
        row = self._conn.execute(sql.GET_NOW, (key,)).fetchone()
        if row is None or row[2]:
            raise KeyNotFoundError(key)
        current = KeyValue(key, row[3], row[1], row[0])
        if expected_revision and current.mod_revision != expected_revision:
            raise ConflictError(key, current)
        return current

    # -- watch ---------------------------------------------------------------------

    def watch(self, prefix: str, *, revision: int) -> LogWatcher:
        """Events under `prefix` with revision > `revision` (to watch from now, pass
        current_revision(); 0 is the beginning of history). See the class doc for when
        CompactedError is raised."""
        if self._closed:
            raise StorageError("storage is closed")
        if revision < self._compact_rev:
            raise CompactedError(revision, self._compact_rev)
        # Subscribe before reading anything: every live event is then > self._rev.
        sub = self._broadcaster.subscribe(prefix, self._watch_buffer)
        return LogWatcher(sub, after=revision, upto=self._rev, replay=partial(self._replay, prefix),
                          on_close=self._broadcaster.unsubscribe)

    def _replay(self, prefix: str, after: int, upto: int) -> tuple[list[Event], bool]:
        if after < self._compact_rev:
            raise CompactedError(after, self._compact_rev)
        hi = sql.key_range_end(prefix)
        with _DRIVER_ERRORS:
            if hi is None:
                rows = self._conn.execute(sql.REPLAY_UNBOUNDED, (after, upto, prefix, _REPLAY_PAGE)).fetchall()
            else:
                rows = self._conn.execute(sql.REPLAY, (after, upto, prefix, hi, _REPLAY_PAGE)).fetchall()
        return [_replayed_event(*row) for row in rows], len(rows) < _REPLAY_PAGE

    # -- compaction and lifecycle ----------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history at or before `revision` (a no-op if already compacted there;
        finishes an interrupted compaction). Raises FutureRevisionError past current."""
        if revision > self._rev:
            raise FutureRevisionError(f"cannot compact at {revision}: current revision is {self._rev}")
        async with self._compact_lock:
            with _DRIVER_ERRORS:
                if revision > self._compact_rev:
                    compaction.set_compact_rev(self._conn, revision)
                    self._compact_rev = revision
                await self._delete_history(self._compact_rev)

    async def _delete_history(self, target: int) -> None:
        if self._compact_cursor >= target:
            return
        deleted = 0
        while self._compact_cursor < target and not self._closed:
            upto = min(self._compact_cursor + self._compact_batch, target)
            deleted += compaction.delete_batch(self._conn, self._compact_cursor, upto)
            self._compact_cursor = upto
            await asyncio.sleep(0)
        if not self._closed:
            await compaction.shrink_files(self._conn)
        log.info("compacted storage at revision %d: %d rows deleted", target, deleted)

    async def run_compactor(self, *, interval: float = 300.0, retain: float = 300.0) -> None:
        """Every `interval` seconds, compact at the revision that was current `retain`
        seconds earlier. Runs until cancelled (or the store closes). A failed compaction is
        logged; the next one picks up where it stopped."""
        history = compaction.RevisionHistory(retain)
        history.record(self._rev)
        while not self._closed:
            await asyncio.sleep(interval)
            history.record(self._rev)
            target = history.revision_to_compact()
            if target > self._compact_rev and not self._closed:
                try:
                    await self.compact(target)
                except StorageError:
                    log.exception("compaction at revision %d failed", target)

    async def close(self) -> None:
        """End all watches and close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._broadcaster.close()
        with _DRIVER_ERRORS:
            self._conn.close()


def _replayed_event(rev: int, key: str, created: int, prev_rev: int, deleted: int, value: bytes,
                    prev_value: bytes | None) -> Event:
    """The Event a log row stands for (the row joined with the row it superseded)."""
    if deleted:
        return Event("DELETE", KeyValue(key, value, created, rev), KeyValue(key, value, created, prev_rev))
    kv = KeyValue(key, value, created, rev)
    if created == rev or prev_value is None:
        return Event("PUT", kv, None)
    return Event("PUT", kv, KeyValue(key, prev_value, created, prev_rev))
