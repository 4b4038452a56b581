"""What /proc tells about a container's processes when there is no cgroup to ask.

The `process` runtime has no cgroup per container, so a container is its process group
(the shim makes the container's main process a group leader). Usage is summed over the
group's live processes: CPU as utime+stime plus the cutime+cstime of children they have
reaped (so work of exited helpers is not lost), memory as resident set sizes. Pids are
reused, so a pid is trusted only with the start time (clock ticks since boot) recorded
when it was started.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
GROUPS_TTL = 0.5
_groups: dict[int, list[int]] = {}
_groups_at = -1e9


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (field 3, state, is index 0)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2:].decode().split()


def start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def same_process(pid: int, recorded_start: int | None) -> bool:
    """True if `pid` runs (not a zombie) and is the process started at `recorded_start`
    (None: no record, any live process with that pid counts)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return recorded_start is None or int(fields[19]) == recorded_start


def cmdline(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def option(argv: list[str], name: str) -> str | None:
    """The value after `name` in an argv, up to a `--`."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "--":
            return None
        if arg == name:
            return argv[i + 1]
    return None


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group. One /proc scan serves every group asked for
    within GROUPS_TTL seconds, as stats are gathered for all containers at once."""
    global _groups, _groups_at
    now = time.monotonic()
    if now - _groups_at > GROUPS_TTL or pgid not in _groups:  # a group new since the scan: rescan
        groups: dict[int, list[int]] = {}
        for entry in os.scandir(_PROC):
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields and fields[0] not in ("Z", "X"):
                    groups.setdefault(int(fields[2]), []).append(int(entry.name))
        _groups, _groups_at = groups, now
    return list(_groups.get(pgid, []))


def _rss_anon(pid: int) -> int:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def group_stats(pgid: int) -> dict[str, int] | None:
    """Usage of a process group, in the keys of `Runtime.stats`; None if it is empty."""
    cpu_ticks = resident = anon = 0
    members = group_members(pgid)
    if not members:
        return None
    for pid in members:
        fields = _stat(pid)
        if not fields:
            continue
        cpu_ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        try:
            resident += int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
        anon += _rss_anon(pid)
    return {"cpu_usage_nanos": cpu_ticks * 1_000_000_000 // _TICKS, "memory_working_set_bytes": resident,
            "memory_rss_bytes": anon, "memory_usage_bytes": resident}
