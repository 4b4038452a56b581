"""The SQLite layout of the revision log, and opening a database file with it.

One table, `log`, is the truth: every write appends a row whose INTEGER PRIMARY KEY is
the write's revision. A row carries the key, the revision that created the key, the
revision of the row it supersedes (`prev`, 0 for a create) and a `deleted` flag. A delete
appends a tombstone row that repeats the deleted value, so a DELETE event carries it
without a second lookup. The current value of a key is its newest row; the value as of
revision R is its newest row with id <= R. The index on (key, id, deleted) serves both, and
lets a list find each key's newest row without reading the rows themselves.

`meta` holds what must survive a restart besides the log: the compacted revision and
how far compaction has actually deleted (`compact_cursor`, see compact.py).

The connection is opened in WAL mode with synchronous=NORMAL: a commit is a write() into
the WAL before it returns, so an acknowledged write survives the process being killed
(not a power cut, which needs synchronous=FULL). locking_mode=EXCLUSIVE makes this
process the file's only user; the backend relies on that to predict the next revision
(`value_fn`) and to publish every write to watchers itself. It is also faster: no
shared-memory WAL index (measured: 54k vs 41k one-row commits/s).

WAL checkpoints run inline (SQLite's autocheckpoint, every ~4 MB of WAL) and cost the
write that triggers one a few ms of fsync (about 1 write in 400 under a steady write
stream). A checkpointing thread on a second connection was measured too: it removed
those stalls but halved throughput and let the WAL grow without bound under constant
writes, since a PASSIVE checkpoint never catches up with a busy writer.
"""

from __future__ import annotations

import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id      INTEGER PRIMARY KEY,
    key     TEXT    NOT NULL,
    created INTEGER NOT NULL,
    prev    INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_id ON log (key, id, deleted);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_rev', 0), ('compact_cursor', 0);
"""

# The newest row of one key (now, or at or before a revision).
GET_NOW = "SELECT id, created, deleted, value FROM log WHERE key = ? ORDER BY id DESC LIMIT 1"
GET_AT = "SELECT id, created, deleted, value FROM log WHERE key = ? AND id <= ? ORDER BY id DESC LIMIT 1"

INSERT = "INSERT INTO log (id, key, created, prev, deleted, value) VALUES (?, ?, ?, ?, ?, ?)"

# Newest row per key in [lo, hi) as of a revision, in key order, at most `limit` keys
# (deleted ones included, so the caller knows how far the scan got). With exactly one
# max() aggregate SQLite takes the bare column `deleted` from the row holding the maximum
# (documented behaviour); the inner query reads only the covering index, and its LIMIT
# lets the GROUP BY stop early instead of grouping the whole range.
_NEWEST = ("SELECT key, max(id) AS id, deleted FROM log WHERE key >= ? {hi} AND id <= ?"
           " GROUP BY key ORDER BY key LIMIT ?")
_LIST = ("SELECT m.key, m.id, m.deleted, l.created, l.value FROM ({newest}) AS m"
         " LEFT JOIN log AS l ON l.id = m.id AND m.deleted = 0 ORDER BY m.key")
_COUNT = "SELECT count(*) FROM ({newest}) WHERE deleted = 0"
LIST = _LIST.format(newest=_NEWEST.format(hi="AND key < ?"))
LIST_UNBOUNDED = _LIST.format(newest=_NEWEST.format(hi=""))
COUNT = _COUNT.format(newest=_NEWEST.format(hi="AND key < ?"))
COUNT_UNBOUNDED = _COUNT.format(newest=_NEWEST.format(hi=""))

# Watch replay: rows after a revision, in revision order, with the superseded row's value
# for updates. NOT INDEXED keeps SQLite on the rowid range instead of the key index.
_REPLAY = (
    "SELECT l.id, l.key, l.created, l.prev, l.deleted, l.value, p.value"
    " FROM log AS l NOT INDEXED"
    " LEFT JOIN log AS p ON p.id = l.prev AND l.deleted = 0 AND l.created != l.id"
    " WHERE l.id > ? AND l.id <= ? AND l.key >= ? {hi} ORDER BY l.id LIMIT ?"
)
REPLAY = _REPLAY.format(hi="AND l.key < ?")
REPLAY_UNBOUNDED = _REPLAY.format(hi="")


class LockedError(sqlite3.OperationalError):
    """Another process has the database open."""


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path` with the log schema."""
    # timeout: how long to wait at open for another process holding the file.
    conn = sqlite3.connect(os.fspath(path), timeout=1.0, isolation_level=None,
                           check_same_thread=False, cached_statements=64)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        # auto_vacuum only takes effect on a database without tables, i.e. a new file.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("PRAGMA cache_size = -32000")
        conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
    except sqlite3.OperationalError as e:
        conn.close()
        if "locked" in str(e):
            raise LockedError(f"{os.fspath(path)} is in use by another process") from e
        raise
    return conn


def key_range_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`, or None
    when there is none (empty prefix). Python's code-point order is SQLite's BINARY
    order on UTF-8, so this bounds an index range scan."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored in UTF-8
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None
