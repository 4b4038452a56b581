"""A container's root filesystem for the `namespaces` runtime.

Every container gets an overlay at `<state_dir>/rootfs`: the image's layers as read-only
lower dirs (top first) and its own upper and work dirs, so what it writes is its own and
is thrown away with the attempt, as with a container runtime's writable layer. An image
without layers (the host-tools images) gets an empty lower dir instead, and the host
directories it needs (/usr, /lib*, /bin, a few /etc files) are bound into it read-only.

This module only mounts the overlay (in the kubelet's mount namespace, so the teardown can
unmount it). Everything else is a bind mount the shim makes inside the container's new
mount namespace (`--mount SRC:DST[:ro]`), where it disappears with the container: the
host binds, the pod's /dev/shm, /etc/hosts, /etc/hostname, /etc/resolv.conf, then the
volumes (the shim itself makes /dev a tmpfs with the basic device nodes, a new devpts,
/proc and a read-only /sys). What a bind lands on must exist, so `prepare` creates those
targets in the upper layer, resolving symlinks inside the root (an image's absolute
symlink never leads out of it), and hands the shim the resolved paths.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kubelet.runtime.base import Mount

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2

# Host paths a layer-less image needs to run host binaries (binaries, libraries, loader
# cache, users, name service, certificates, Debian's alternatives symlinks).
BASE_HOST_BINDS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
                   "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates",
                   "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                   "/etc/localtime", "/etc/services", "/etc/protocols", "/etc/host.conf", "/etc/gai.conf")
EMPTY_DIRS = ("proc", "sys", "dev", "tmp", "etc", "root", "var/tmp", "run")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class RootfsError(Exception):
    """The root filesystem could not be prepared (reason CreateContainerError)."""


def mount(source: str, target: Path, fstype: str, flags: int = 0, data: str = "") -> None:
    if _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags,
                   data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise RootfsError(f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Lazy unmount; no error when nothing is mounted there."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise RootfsError(f"unmount {target}: {os.strerror(err)}")


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path` in this mount namespace, deepest first."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: -len(p.parts))


def secure_join(root: Path, path: str) -> Path:
    """`root/path` with every symlink resolved as if `root` were `/`: never outside it."""
    resolved = root
    parts = list(PurePosixPath("/", path).parts[1:])
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved.parent if resolved != root else root
            continue
        candidate = resolved / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise RootfsError(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = root
            parts = list(PurePosixPath(target).parts) + parts
            parts = [p for p in parts if p != "/"]
            continue
        resolved = candidate
    return resolved


def _inside(root: Path, target: Path) -> str:
    return "/" + str(target.relative_to(root)) if target != root else "/"


@dataclass
class Bind:
    source: str
    target: str  # absolute path inside the container
    read_only: bool = False

    def arg(self) -> str:
        if ":" in self.source or ":" in self.target:
            raise RootfsError(f"mount paths may not contain ':': {self.source} -> {self.target}")
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass
class Rootfs:
    """A prepared root: the directory for `--rootfs` and the binds for `--mount`."""

    path: Path
    binds: list[Bind] = field(default_factory=list)

    def shim_args(self) -> list[str]:
        args = ["--rootfs", str(self.path)]
        for bind in self.binds:
            args += ["--mount", bind.arg()]
        return args


def _host_binds(image: Any) -> list[tuple[str, str]]:
    binds = [(str(src), str(dst)) for src, dst in (getattr(image, "host_binds", None) or [])]
    if not getattr(image, "layers", None):
        have = {dst for _, dst in binds}
        binds = [(p, p) for p in BASE_HOST_BINDS if p not in have and os.path.lexists(p)] + binds
    return binds


def _make_target(root: Path, inside: str, *, is_dir: bool) -> str:
    """Create the mount point for `inside` (dir or empty file); return its resolved path
    inside the root."""
    target = secure_join(root, inside)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            target.mkdir(exist_ok=True)
        else:
            target.touch()
    return _inside(root, target)


def _link_or_bind(root: Path, src: str, dst: str, binds: list[Bind]) -> None:
    """A host path that is a relative symlink (merged /usr: /bin -> usr/bin) is copied as
    a symlink; anything else is bound read-only."""
    if os.path.islink(src) and not os.readlink(src).startswith("/") and src == dst:
        link = root / dst.lstrip("/")
        if not os.path.lexists(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.readlink(src))
        return
    if not os.path.exists(src):
        raise RootfsError(f"host path {src} of the image does not exist")
    target = _make_target(root, dst, is_dir=os.path.isdir(src))
    binds.append(Bind(os.path.realpath(src), target, True))


def pod_files(sandbox_dir: Path, *, hostname: str, pod_ip: str | None,
              hosts_file: Path | None = None) -> dict[str, Path]:
    """The pod's /etc/hosts (the kubelet-managed one unless `hosts_file` is given),
    /etc/hostname and /etc/resolv.conf, created once in the sandbox dir. The kubelet
    writes resolv.conf there from the pod's dnsPolicy before it creates the sandbox
    (kubelet.dnsconfig); without one, the pod gets a copy of the host's (as Default)."""
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    hosts = hosts_file or sandbox_dir / "hosts"
    if not hosts.exists():
        lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
                 "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
                 "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
        if pod_ip:
            lines.append(f"{pod_ip}\t{hostname}")
        hosts.write_text("\n".join(lines) + "\n")
    name = sandbox_dir / "hostname"
    if not name.exists():
        name.write_text(hostname + "\n")
    resolv = sandbox_dir / "resolv.conf"
    if not resolv.exists():
        try:
            shutil.copyfile("/etc/resolv.conf", resolv)
        except OSError:
            resolv.write_text("")
    return {"/etc/hosts": hosts, "/etc/hostname": name, "/etc/resolv.conf": resolv}


def prepare(state_dir: Path, image: Any, *, mounts: list[Mount], pod_files: dict[str, Path] | None = None,
            shm: Path | None = None) -> Rootfs:
    """Mount the overlay at `<state_dir>/rootfs` and list the binds; on failure nothing
    stays mounted."""
    root = state_dir / "rootfs"
    layers = [Path(p) for p in (getattr(image, "layers", None) or [])]
    for layer in layers:
        if not layer.is_dir():
            raise RootfsError(f"image layer {layer} is missing")
    base = state_dir / "base"
    upper, work = state_dir / "upper", state_dir / "work"
    for d in (root, base, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    lower = ":".join(str(p) for p in (layers or [base]))
    mount("overlay", root, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
    try:
        return Rootfs(root, _binds(root, image, mounts, pod_files or {}, shm))
    except Exception:
        teardown(state_dir)
        raise


def _binds(root: Path, image: Any, mounts: list[Mount], files: dict[str, Path],
           shm: Path | None) -> list[Bind]:
    for d in EMPTY_DIRS:
        _make_target(root, d, is_dir=True)
    tmp = secure_join(root, "/tmp")
    if tmp.stat().st_mode & 0o7777 != 0o1777:
        tmp.chmod(0o1777)
    binds: list[Bind] = []
    for src, dst in _host_binds(image):
        _link_or_bind(root, src, dst, binds)
    if shm is not None:  # over the shim's per-container /dev/shm: the pod shares one
        binds.append(Bind(str(shm), "/dev/shm"))
    for inside, host in files.items():
        binds.append(Bind(str(host), _make_target(root, inside, is_dir=False)))
    for m in mounts:
        if not os.path.exists(m.host_path):
            raise RootfsError(f"volume path {m.host_path} for {m.container_path} does not exist")
        target = _make_target(root, m.container_path, is_dir=os.path.isdir(m.host_path))
        binds.append(Bind(m.host_path, target, m.read_only))
    return binds


def teardown(state_dir: Path) -> None:
    """Unmount whatever is mounted under the container's state dir and remove the
    rootfs, upper, work and base dirs. Idempotent."""
    if not state_dir.exists():
        return
    for point in mounts_under(state_dir):
        unmount(point)
    left = mounts_under(state_dir)
    if left:  # never delete through a mount (a volume bound in would lose its files)
        raise RootfsError(f"still mounted under {state_dir}: {', '.join(map(str, left))}")
    for name in ("rootfs", "upper", "work", "base"):
        path = state_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def mount_shm(path: Path, size: int = 64 << 20) -> None:
    """The pod's /dev/shm: a tmpfs (64Mi, Docker's and the kubelet's default)."""
    path.mkdir(parents=True, exist_ok=True)
    if not mounts_under(path):
        mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={size}")


def _entries(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    except OSError:
        return []


def _lookup(entries: list[list[str]], key: str) -> list[str] | None:
    return next((e for e in entries if len(e) > 2 and (e[0] == key or e[2] == key)), None)


def resolve_user(image: Any, root: Path, run_as_user: int | None,
                 run_as_group: int | None) -> tuple[int | None, int | None]:
    """(uid, gid) to run as: runAsUser/runAsGroup over the image's USER (`uid`, `name`,
    `uid:gid`, `name:group`), names looked up in the root's /etc/passwd and /etc/group
    (the host's for a layer-less image, which binds them), the primary group of the
    passwd entry when no group is given, else 0 (what runc does). (None, None): root."""
    spec = (getattr(image, "user", None) or "").strip()
    name, _, group = spec.partition(":")
    etc = secure_join(root, "/etc") if getattr(image, "layers", None) else Path("/etc")
    passwd = _entries(etc / "passwd")
    uid: int | None = run_as_user
    gid: int | None = run_as_group
    entry = None
    if uid is None and name:
        entry = _lookup(passwd, name)
        if entry is None and not name.isdigit():
            raise RootfsError(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(entry[2]) if entry else int(name)
    elif uid is not None:
        entry = _lookup(passwd, str(uid))
    if gid is None and group:
        found = _lookup(_entries(etc / "group"), group)
        if found is None and not group.isdigit():
            raise RootfsError(f"unable to find group {group}: no matching entries in group file")
        gid = int(found[2]) if found else int(group)
    if gid is None and uid is not None:
        gid = int(entry[3]) if entry and len(entry) > 3 and entry[3].isdigit() else 0
    return uid, gid
