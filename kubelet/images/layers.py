"""Layers as lists of entries: described (and so digested) before they exist on disk,
then materialised into a directory under the node's image root.

A real image layer is a tar of files; here a layer is the same idea kept as a list of
`Entry` (a directory, a symlink, or a file whose bytes come from memory or from a host
file). The digest is the sha256 of a canonical listing of every entry's path, kind,
mode and content hash, so identical content gives an identical digest whatever tag
asked for it. Materialising writes the entries into a temporary directory and renames
it into place, so a half-written layer is never seen and two pulls of one layer do not
collide. A later issue (building from Dockerfiles) adds layers the same way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DIR = "dir"
FILE = "file"
SYMLINK = "symlink"


@dataclass(frozen=True)
class Entry:
    """One path in a layer (relative, no leading slash)."""

    path: str
    kind: str  # DIR, FILE or SYMLINK
    mode: int = 0o755
    data: bytes | None = None  # FILE: literal content
    source: str | None = None  # FILE: a host file to copy instead
    target: str | None = None  # SYMLINK: link target

    def content_hash(self) -> str:
        if self.kind == SYMLINK:
            return f"link:{self.target}"
        if self.kind == DIR:
            return "dir"
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        return _file_hash(self.source or "")

    def size(self) -> int:
        if self.kind != FILE:
            return 0
        return len(self.data) if self.data is not None else os.stat(self.source or "").st_size


_hash_cache: dict[tuple[str, int, int], str] = {}


def _file_hash(path: str) -> str:
    """sha256 of a host file, remembered per (path, size, mtime): one busybox binary is
    hashed once per process, not once per resolve."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def file(path: str, *, data: bytes | str | None = None, source: str | None = None, mode: int = 0o644) -> Entry:
    if isinstance(data, str):
        data = data.encode()
    return Entry(path, FILE, mode, data=data, source=source)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, DIR, mode)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, SYMLINK, 0o777, target=target)


@dataclass(frozen=True)
class Layer:
    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> Layer:
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    def digest(self) -> str:
        """"sha256:<hex>" of the canonical listing (the layer's diff id)."""
        listing = hashlib.sha256()
        for entry in self.entries:
            listing.update(f"{entry.path}\0{entry.kind}\0{entry.mode:o}\0{entry.content_hash()}\n".encode())
        return "sha256:" + listing.hexdigest()

    def size(self) -> int:
        return sum(entry.size() for entry in self.entries)


def materialise(layer: Layer, dest: Path) -> bool:
    """Write the layer's entries to `dest` (its final directory). Returns False when
    `dest` already exists (another pull got there first), True when written now."""
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700: as an overlay's lower root that would be the container's /
    try:
        for entry in layer.entries:
            _write(tmp, entry)
        try:
            tmp.rename(dest)
        except OSError:
            if dest.exists():  # lost a race with a concurrent pull of the same layer
                return False
            raise
        return True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write(root: Path, entry: Entry) -> None:
    path = root / entry.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == DIR:
        path.mkdir(exist_ok=True)
        path.chmod(entry.mode)
    elif entry.kind == SYMLINK:
        os.symlink(entry.target or "", path)
    elif entry.data is not None:
        path.write_bytes(entry.data)
        path.chmod(entry.mode)
    else:
        shutil.copyfile(entry.source or "", path)
        path.chmod(entry.mode)
