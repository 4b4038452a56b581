"""The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go): how configMap, secret,
downwardAPI and projected volumes change their files without a reader ever seeing half
an update.

Layout of a volume directory:

    ..2026_11_26_05_41_48.123456789/   the real files of one version (mode 0755)
    ..data -> ..2026_11_26_05_41_48.123456789
    key    -> ..data/key               one link per top-level name of the payload

An update writes a whole new timestamped directory, points a temporary `..data_tmp` link
at it and renames that over `..data` (rename(2) is atomic), then adds links for new
names, drops the links of vanished names and removes the old directory. A reader that
opened `key` before keeps its old file; one that opens after sees the new one, never a
mix. Nothing is written when every file already has the same bytes.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
MAX_PATH_LENGTH = 4096
MAX_FILE_NAME_LENGTH = 255


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int


class PayloadError(Exception):
    """A payload path the writer refuses (absolute, `..`, too long)."""


def validate_path(path: str) -> None:
    """validatePath, with the kubelet's messages."""
    if path == "":
        raise PayloadError(f'invalid path: must not be empty: "{path}"')
    if posixpath.isabs(path):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if len(path) > MAX_PATH_LENGTH:
        raise PayloadError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise PayloadError(f"invalid path: must not contain '..': {path}")
        if len(item) > MAX_FILE_NAME_LENGTH:
            raise PayloadError(f"invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def _clean(payload: Mapping[str, FileProjection]) -> dict[str, FileProjection]:
    cleaned = {}
    for path, projection in payload.items():
        validate_path(path)
        cleaned[posixpath.normpath(path)] = projection
    return cleaned


def _current_files(ts_dir: Path) -> set[str]:
    """Every path (files and directories) under the current version, relative."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(ts_dir):
        rel = os.path.relpath(dirpath, ts_dir)
        for name in [*dirnames, *filenames]:
            found.add(name if rel == "." else f"{rel}/{name}")
    return found


def _with_parents(paths: set[str] | Mapping[str, object]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        while path:
            out.add(path)
            path = posixpath.dirname(path)
    return out


def _same(payload: Mapping[str, FileProjection], ts_dir: Path) -> bool:
    for path, projection in payload.items():
        try:
            if (ts_dir / path).read_bytes() != projection.data:
                return False
        except FileNotFoundError:
            return False
    return True


def _new_ts_dir(target: Path) -> Path:
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(ts_dir, 0o755)
    return ts_dir


def _write_files(payload: Mapping[str, FileProjection], ts_dir: Path) -> None:
    for path, projection in payload.items():
        full = ts_dir / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(projection.data)
        os.chmod(full, projection.mode)


def write(target: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Make `target` hold exactly `payload`; returns whether anything changed."""
    cleaned = _clean(payload)
    data_link = target / DATA_DIR
    try:
        old_name: str | None = os.readlink(data_link)
    except FileNotFoundError:
        old_name = None
    to_remove: set[str] = set()
    if old_name is not None:
        old_dir = target / old_name
        to_remove = _current_files(old_dir) - _with_parents(cleaned) if old_dir.is_dir() else set()
        if _same(cleaned, old_dir) and not to_remove:
            return False
    ts_dir = _new_ts_dir(target)
    try:
        _write_files(cleaned, ts_dir)
        tmp_link = target / NEW_DATA_DIR
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(ts_dir.name, tmp_link)
        os.rename(tmp_link, data_link)
    except BaseException:
        shutil.rmtree(ts_dir, ignore_errors=True)
        raise
    for top in {path.split("/", 1)[0] for path in cleaned}:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{DATA_DIR}/{top}", link)
    for path in to_remove:
        if "/" not in path and (target / path).is_symlink():
            (target / path).unlink()
    if old_name is not None and old_name != ts_dir.name:
        shutil.rmtree(target / old_name, ignore_errors=True)
    return True
