"""Stopping every pod process of a node root, with no kubelet running (`mkp down`).

Containers outlive their kubelet on purpose (a restarted kubelet re-adopts them), so
tearing a cluster down cannot rely on the kubelet: `stop_pods(root)` finds each
container attempt's `pid` file under `<root>/pods/*/containers/*/*/`, signals its
process group (SIGTERM, then SIGKILL after `grace` seconds), removes the pods' network
namespaces (bridge mode: named in the node's CNI cache), and `unmount_all(root)`
detaches every mount below the root (overlay roots, bind-mounted volumes, tmpfs), so
that removing the directory afterwards can never reach through a bind mount into the
host's files.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

MNT_DETACH = 2


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def container_pids(root: Path) -> list[int]:
    """Live container (and shim) pids recorded under a node root."""
    pids: list[int] = []
    attempts = [*root.glob("pods/*/containers/*/*"), *root.glob("run/pods/*/containers/*/*")]
    for attempt in attempts:
        for name in ("pid", "shim.pid"):
            pid = _read_pid(attempt / name)
            if pid is not None and pid > 1 and _alive(pid):
                pids.append(pid)
    return sorted(set(pids))


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        for target in (-pid, pid):  # the container leads its own process group
            try:
                os.kill(target, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop_pods(root: Path, grace: float = 2.0) -> list[int]:
    """Stop every container process under `root` (a node's directory, named after the
    node), detach its mounts and remove its cgroups; returns the pids that were running."""
    if not root.exists():
        return []
    try:
        return _stop(root, grace)
    finally:
        remove_pod_networks(root)
        unmount_all(root)
        run = root / "run"
        if run.is_symlink():
            unmount_all(run.resolve())
        remove_cgroups(root.name)


def remove_pod_networks(root: Path) -> list[str]:
    """The network namespaces of the node's pods (bridge mode), found in its CNI result
    cache: unmounted and removed, which takes each pod's veth with it once its processes
    are gone (the IPAM files go with the run dir). Returns the namespaces removed."""
    import json

    from cni.netns import NetnsDir, NetnsError, is_netns_mount
    removed = []
    for results in (root / "run" / "cni" / "results", root / "cni" / "results"):
        for path in sorted(results.glob("*")) if results.is_dir() else []:
            try:
                netns = json.loads(path.read_text()).get("netns")
            except (OSError, ValueError, AttributeError):
                continue
            if not netns or netns.startswith("/proc/") or not Path(netns).name.startswith("cni-"):
                continue
            namespace = Path(netns)
            if not (is_netns_mount(namespace) or namespace.exists()):
                continue
            try:
                NetnsDir(namespace.parent).delete(namespace.name.removeprefix("cni-"))
                removed.append(netns)
            except NetnsError:
                pass
    return removed


def remove_run_dir(root: Path) -> None:
    """The running state a node keeps outside its root (`<root>/run` links to a tmpfs
    directory): with the node's pods stopped and unmounted, remove it."""
    import shutil
    link = root / "run"
    if link.is_symlink():
        target = link.resolve()
        unmount_all(target)
        shutil.rmtree(target, ignore_errors=True)
        link.unlink(missing_ok=True)


def remove_cgroups(node: str) -> None:
    """The namespaces runtime's cgroups of `node` (`mkpods/<node>/...`), if any."""
    if os.geteuid() != 0:
        return
    from kubelet.runtime.cgroups import CgroupError, CgroupManager
    try:
        CgroupManager(node).remove_node()
    except (CgroupError, OSError):
        pass


def _stop(root: Path, grace: float) -> list[int]:
    pids = container_pids(root)
    if not pids:
        return []
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    _signal([p for p in pids if _alive(p)], signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    return pids


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root.resolve())
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].encode().decode("unicode_escape")
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Lazily unmount everything below `root` (needs root; a no-op without mounts)."""
    points = mounts_under(root)
    if not points:
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    for point in points:
        libc.umount2(point.encode(), MNT_DETACH)
    return points
