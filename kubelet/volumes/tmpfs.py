"""tmpfs mounts for memory-backed volumes, and finding and removing mounts under a
directory before it is deleted.

The kubelet backs emptyDir with `medium: Memory`, and the secret and projected volumes,
with a tmpfs (`mount -t tmpfs -o size=<bytes> tmpfs <dir>`), so secrets never touch the
disk. Mounting needs root (CAP_SYS_ADMIN); without it the volume manager makes a plain
directory instead and says so in its docstring. mount(2)/umount2(2) are called through
libc rather than the mount(8) binary: no process per volume.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def can_mount() -> bool:
    """Whether this process may mount filesystems (root)."""
    return os.geteuid() == 0


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[str]:
    """Mount points of this process's mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f if line.strip()]


def is_mount_point(path: Path) -> bool:
    return os.path.realpath(path) in mount_points()


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    base = os.path.realpath(path)
    found = [m for m in mount_points() if m == base or m.startswith(base + "/")]
    return sorted(set(found), key=lambda m: m.count("/"), reverse=True)


def mount_tmpfs(target: Path, size: int | None) -> None:
    """Mount a tmpfs on `target` (size in bytes; None = the kernel's default, half the RAM)."""
    options = f"size={size}" if size else ""
    rc = _libc.mount(b"tmpfs", os.fsencode(os.path.realpath(target)), b"tmpfs", 0, options.encode() or None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target} ({options or 'no options'}): {os.strerror(err)}")


def unmount(target: str | Path) -> None:
    """Unmount; a busy mount is detached lazily (it goes once its last user does)."""
    path = os.fsencode(os.path.realpath(target))
    if _libc.umount2(path, 0) == 0:
        return
    err = ctypes.get_errno()
    if err == 16 and _libc.umount2(path, MNT_DETACH) == 0:  # EBUSY
        return
    err = ctypes.get_errno()
    raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def unmount_all(path: Path) -> None:
    """Unmount everything mounted at or below `path`; raises if something stays."""
    for mount_point in mounts_under(path):
        unmount(mount_point)
    left = mounts_under(path)
    if left:
        raise OSError(16, f"still mounted under {path}: {', '.join(left)}")
