"""Reading container logs in the CRI format, as the kubelet serves `kubectl logs`.

The shim writes one line per log entry: `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>`,
where P marks a fragment of a line longer than 16 KiB (the next entries continue it, the
last of them is F). Reading turns that back into what the program printed: fragments are
joined, F entries end with a newline, and with `timestamps` every printed line starts with
the entry's time in RFC3339 with nine fraction digits (the kubelet's fixed-width format),
a fragment continuing a line getting none.

Options follow the kubelet's: `tail_lines` counts entries from the end of the file
(fragments count, as the kubelet counts file lines), `since` skips entries written before
it, `limit_bytes` cuts the output after that many bytes. With `follow`, reading waits for
new entries (by polling the file's size: cheap, and no inotify watch per stream), and ends
when `stop` is set, or, given the container's `state_dir`, once the shim has written its
`exit` file and the log is drained (the kubelet also stops following an exited container).
"""

from __future__ import annotations

import asyncio
import calendar
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO


def pod_log_dir(root: Path, pod: dict) -> Path:
    """`<node root>/logs/<namespace>_<name>_<uid>`: where the kubelet keeps a pod's
    container logs, `<container>/<attempt>.log` (the layout of /var/log/pods)."""
    meta = pod.get("metadata") or {}
    return Path(root) / "logs" / f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"


FOLLOW_INTERVAL = 0.1  # seconds between size checks while following
_CHUNK = 65536
_TS = re.compile(rb"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class LogEntry:
    timestamp_ns: int  # unix time in nanoseconds
    stream: str  # "stdout" or "stderr"
    partial: bool  # P: the line continues in the next entry
    content: bytes  # without the newline

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ns // 1000 / 1e6, UTC)


def parse_timestamp(raw: bytes) -> int:
    """RFC3339 (any fraction, Z or an offset) -> unix nanoseconds."""
    m = _TS.match(raw)
    if not m:
        raise ValueError(f"invalid timestamp {raw!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if m.group(8) != b"Z":
        sign = 1 if m.group(8)[:1] == b"+" else -1
        seconds -= sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    fraction = (m.group(7) or b"").ljust(9, b"0")
    return seconds * 1_000_000_000 + int(fraction or b"0")


def format_timestamp(ns: int) -> str:
    """The kubelet's output format for --timestamps: RFC3339 with exactly 9 digits."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def parse_line(line: bytes) -> LogEntry:
    """One CRI log line (with or without its newline); ValueError if malformed."""
    line = line.rstrip(b"\n")
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise ValueError(f"invalid CRI log line {line[:80]!r}")
    stream, tag = parts[1].decode(errors="replace"), parts[2]
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"invalid stream {stream!r} in CRI log line")
    # The tag field may carry more tags after ':'; the first says full or partial.
    first_tag = tag.split(b":", 1)[0]
    if first_tag not in (b"F", b"P"):
        raise ValueError(f"invalid tag {tag!r} in CRI log line")
    return LogEntry(parse_timestamp(parts[0]), stream, first_tag == b"P", parts[3] if len(parts) > 3 else b"")


def _since_ns(since: datetime) -> int:
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return calendar.timegm(since.utctimetuple()) * 1_000_000_000 + since.microsecond * 1000


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Offset of the start of the last `lines` lines of a binary file."""
    f.seek(0, os.SEEK_END)
    end = pos = f.tell()
    if lines <= 0:
        return end
    found = 0
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        for i in range(len(block) - 1, -1, -1):
            if block[i] == 0x0A and pos + i != end - 1:  # a newline that ends an earlier line
                found += 1
                if found == lines:
                    return pos + i + 1
    return 0


class _Formatter:
    """Entries -> output bytes, with the kubelet's rules for partials and timestamps."""

    def __init__(self, *, timestamps: bool, since_ns: int | None, limit_bytes: int | None) -> None:
        self.timestamps = timestamps
        self.since_ns = since_ns
        self.remaining = limit_bytes
        self.new_line = True  # the next entry starts a line (the previous was not P)

    def format(self, line: bytes) -> bytes:
        try:
            entry = parse_line(line)
        except ValueError:
            return b""  # the kubelet skips lines it cannot parse
        if self.since_ns is not None and entry.timestamp_ns < self.since_ns:
            return b""
        out = entry.content if entry.partial else entry.content + b"\n"
        if self.timestamps and self.new_line:
            out = format_timestamp(entry.timestamp_ns).encode() + b" " + out
        self.new_line = not entry.partial
        return self.limit(out)

    def limit(self, out: bytes) -> bytes:
        if self.remaining is None:
            return out
        out = out[: self.remaining]
        self.remaining -= len(out)
        return out

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


async def read_log(path: Path, *, follow: bool = False, tail_lines: int | None = None,
                   since: datetime | None = None, timestamps: bool = False, limit_bytes: int | None = None,
                   stop: asyncio.Event | None = None, state_dir: Path | None = None) -> AsyncIterator[bytes]:
    """What `kubectl logs` prints for the log at `path`, in chunks (see the module doc)."""
    formatter = _Formatter(timestamps=timestamps, since_ns=_since_ns(since) if since else None,
                           limit_bytes=limit_bytes)
    if limit_bytes is not None and limit_bytes <= 0:
        return
    with open(path, "rb") as f:
        if tail_lines is not None and tail_lines >= 0:
            f.seek(tail_offset(f, tail_lines))
        else:
            f.seek(0)
        pending = b""
        while True:
            # Whether the container had exited *before* this read: then the read drains.
            finished = state_dir is not None and (state_dir / "exit").exists()
            data = f.read(_CHUNK)
            if data:
                pending += data
                lines = pending.split(b"\n")
                pending = lines.pop()
                out = b"".join(formatter.format(line) for line in lines if line)
                if out:
                    yield out
                if formatter.exhausted:
                    return
                continue
            if not follow or finished or (stop is not None and stop.is_set()):
                break
            await _sleep_or_stop(stop)
        if pending and not follow:
            out = formatter.format(pending)
            if out:
                yield out


async def _sleep_or_stop(stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(FOLLOW_INTERVAL)
        return
    try:
        await asyncio.wait_for(stop.wait(), FOLLOW_INTERVAL)
    except TimeoutError:
        pass
