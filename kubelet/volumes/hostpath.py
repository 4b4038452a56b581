"""hostPath volumes (pkg/volume/hostpath): a node path used in place, after the type check.

`type` ("" = no check) is checked on the path as it is (symlinks followed):
DirectoryOrCreate makes the directory (0755, with parents) when missing, FileOrCreate an
empty file (0644; its parent must exist), then both check like Directory / File; Socket,
CharDevice and BlockDevice must be one. Failures read
`hostPath type check failed: <path> is not a directory`, as on a real node. A path with a
`..` element is refused before anything else.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from kubelet.volumes.payload import SetupError

_KIND_CHECKS = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a socket file"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


def _go_error(op: str, path: str, exc: OSError) -> SetupError:
    """An *os.PathError's text: `open /x/y: no such file or directory`."""
    text = os.strerror(exc.errno or errno.EIO)
    return SetupError(f"{op} {path}: {text[:1].lower() + text[1:]}")


def _mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def _check(path: str, kind: str) -> None:
    test, what = _KIND_CHECKS[kind]
    mode = _mode(path)
    if mode is None or not test(mode):
        raise SetupError(f"hostPath type check failed: {path} is not {what}")


def check_type(path: str, path_type: str | None) -> None:
    """checkTypeInternal: create what *OrCreate asks for, then check the kind."""
    path_type = path_type or ""
    if path_type == "":
        return
    if path_type == "DirectoryOrCreate":
        if _mode(path) is None:
            try:
                os.makedirs(path, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise _go_error("mkdir", path, exc) from None
            return
        path_type = "Directory"
    elif path_type == "FileOrCreate":
        if _mode(path) is None:
            try:
                os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o644))
            except OSError as exc:
                raise _go_error("open", path, exc) from None
            return
        path_type = "File"
    if path_type not in _KIND_CHECKS:
        raise SetupError(f"{path_type} is an invalid volume type")
    _check(path, path_type)


def no_backsteps(path: str) -> str | None:
    """ValidatePathNoBacksteps: the error, or None."""
    return "must not contain '..'" if ".." in path.split("/") else None


def setup(source: dict) -> Path:
    """SetUp of a hostPath source; returns the host path."""
    path = str(source.get("path") or "")
    backsteps = no_backsteps(path)
    if backsteps:
        raise SetupError(f"invalid HostPath `{path}`: {backsteps}")
    check_type(path, source.get("type"))
    return Path(path)
