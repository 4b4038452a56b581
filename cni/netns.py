"""Named network namespaces for pods, kept alive by a bind mount as `ip netns` does.

A network namespace lives while a process is in it or a file is bind-mounted onto its
/proc/<pid>/ns/net. `ip netns add NAME` does the latter at /var/run/netns/NAME; the
runtime then passes that path as CNI_NETNS and the shim setns()es into it. Under
/var/run/netns we call `ip netns` itself (so `ip netns list` shows pod namespaces, as on
a containerd node, named `cni-<id>`); elsewhere (a node root dir, for tests and several
nodes on one machine) `unshare --net=FILE` makes the same persistent bind mount.
Creating and deleting need root (CAP_SYS_ADMIN). The loopback mode uses none of this.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

IP_NETNS_DIR = Path("/var/run/netns")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}$")


class NetnsError(Exception):
    """A namespace could not be created or removed."""


def _run(argv: list[str]) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from None
    if proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")


def is_netns_mount(path: Path) -> bool:
    """Whether `path` is a bind mount of a namespace file (nsfs) in this mount namespace."""
    target = os.path.realpath(path)  # /var/run is usually a link to /run
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        # mountinfo: id parent major:minor root mountpoint options ... - fstype source ...
        if len(fields) > 4 and fields[4].replace("\\040", " ") == target and " - nsfs " in line:
            return True
    return False


class NetnsDir:
    """The directory holding the pods' namespace files."""

    def __init__(self, base: Path = IP_NETNS_DIR) -> None:
        self.base = Path(base)

    def name_for(self, sandbox_id: str) -> str:
        name = f"cni-{sandbox_id}"
        if not _NAME.match(name):
            raise NetnsError(f"invalid sandbox id {sandbox_id!r} for a namespace name")
        return name

    def path(self, sandbox_id: str) -> Path:
        return self.base / self.name_for(sandbox_id)

    def exists(self, sandbox_id: str) -> bool:
        return is_netns_mount(self.path(sandbox_id))

    def create(self, sandbox_id: str) -> Path:
        """Create the namespace (idempotent); returns its path."""
        path = self.path(sandbox_id)
        if is_netns_mount(path):
            return path
        if self.base == IP_NETNS_DIR:
            _run(["ip", "netns", "add", path.name])
        else:
            self.base.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            try:
                _run(["unshare", f"--net={path}", "true"])
            except NetnsError:
                path.unlink(missing_ok=True)
                raise
        return path

    def delete(self, sandbox_id: str) -> None:
        """Unmount and remove the namespace file (idempotent). The namespace itself goes
        when no process is left in it."""
        path = self.path(sandbox_id)
        if self.base == IP_NETNS_DIR and is_netns_mount(path):
            _run(["ip", "netns", "delete", path.name])
            return
        if is_netns_mount(path):
            _run(["umount", "--lazy", str(path)])
        path.unlink(missing_ok=True)

    def list(self) -> list[Path]:
        """Namespace files present in the directory (mounted or left over)."""
        if not self.base.is_dir():
            return []
        return sorted(p for p in self.base.glob("cni-*"))
