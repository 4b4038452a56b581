"""Compaction of the revision log: forget history, in small steps, without stalling.

Compacting at revision C keeps exactly what a read at C or later can need: for every key,
its newest row at or before C (unless that row is a tombstone), and every row after C.
That is the same as deleting, for each row r with revision <= C, the row r supersedes
(`r.prev`), plus every tombstone with revision <= C. So compaction walks the revision
range since the last compaction in batches of `batch` revisions, one short transaction
each, yielding to the event loop in between; writes interleave freely and, all running
on one connection, never meet "database is locked".

`meta.compact_cursor` records how far the deleting got, in the same transaction as each
batch, so a compaction cut short by a crash or a cancel resumes where it stopped.
`meta.compact_rev` (the revision reads are refused below) is raised before the first
batch, so no reader ever sees a half-compacted range.

Deleted rows leave free pages that new rows reuse; after a big compaction the free pages
at the end of the file are returned to the OS (auto_vacuum=INCREMENTAL) and the WAL is
truncated, so neither file grows without bound.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable

_DELETE_SUPERSEDED = "DELETE FROM log WHERE id IN (SELECT prev FROM log WHERE id > ? AND id <= ? AND prev > 0)"
_DELETE_TOMBSTONES = "DELETE FROM log WHERE id > ? AND id <= ? AND deleted = 1"
_SET_META = "UPDATE meta SET value = ? WHERE name = ?"


def read_meta(conn: sqlite3.Connection) -> tuple[int, int]:
    """(compact_rev, compact_cursor) as stored."""
    rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    return rows["compact_rev"], rows["compact_cursor"]


def set_compact_rev(conn: sqlite3.Connection, revision: int) -> None:
    conn.execute(_SET_META, (revision, "compact_rev"))


def delete_batch(conn: sqlite3.Connection, after: int, upto: int) -> int:
    """Delete what compaction drops among revisions (after, upto]; advance the cursor to
    `upto`. One transaction. Returns the number of rows deleted."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = conn.execute(_DELETE_SUPERSEDED, (after, upto)).rowcount
        n += conn.execute(_DELETE_TOMBSTONES, (after, upto)).rowcount
        conn.execute(_SET_META, (upto, "compact_cursor"))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return n


async def delete_history(conn: sqlite3.Connection, cursor: int, target: int, *, batch: int) -> int:
    """Run delete_batch over (cursor, target], yielding to the loop between batches."""
    deleted = 0
    while cursor < target:
        upto = min(cursor + batch, target)
        deleted += delete_batch(conn, cursor, upto)
        cursor = upto
        await asyncio.sleep(0)
    return deleted


async def shrink_files(conn: sqlite3.Connection, *, step_pages: int = 128) -> None:
    """Give free pages back to the OS when they are a large share of the file, then
    checkpoint the WAL and truncate it."""
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if free > 1024 and free * 4 > page_count:
        while conn.execute("PRAGMA freelist_count").fetchone()[0] > 0:
            # incremental_vacuum frees one page per step of the statement; execute() would
            # step it once, executescript() runs it to the end.
            conn.executescript(f"PRAGMA incremental_vacuum({int(step_pages)})")
            await asyncio.sleep(0)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


class RevisionHistory:
    """Which revision was current `retain` seconds ago: samples (time, revision) at each
    compactor tick and answers from them, like kube-apiserver's periodic compaction."""

    def __init__(self, retain: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retain = retain
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def record(self, revision: int) -> None:
        self._samples.append((self._clock(), revision))

    def revision_to_compact(self) -> int:
        """The newest sampled revision at least `retain` old (0 if none); older samples
        are forgotten."""
        cutoff = self._clock() - self.retain
        found = 0
        while self._samples and self._samples[0][0] <= cutoff:
            found = self._samples.popleft()[1]
        return found
