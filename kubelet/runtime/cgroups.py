"""Control groups for the `namespaces` runtime: limits, OOM kills, usage, cleanup.

The kubelet arranges cgroups as a tree it owns: a node root (`mkpods/<node>`, like the
real kubelet's `kubepods`), one `pod<uid>` per pod under it, and one leaf per container
(named by the container id's hex) holding the container's processes. Limits come from
`resources`: memory.limit_in_bytes (v1) / memory.max (v2) with swap disabled, the CFS
quota from the cpu limit (period 100 ms, quota = millicores * 100 us), and cpu shares /
weight from the cpu request, computed as the kubelet does (shares = max(2, m*1024/1000)).

Both cgroup versions are supported, because machines differ: a v2 (unified) hierarchy is
used when its root delegates the `memory` and `cpu` controllers; otherwise the v1
hierarchies (one mount per controller, or co-mounted like `cpu,cpuacct`). A hybrid
machine whose unified mount has no controllers therefore uses v1. A `Cgroup` is one
group across the hierarchies in use (`dirs`: controller -> directory; in v2 every
controller shares one directory), which is also what the shim joins (`--cgroup`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubelet.runtime.base import Resources

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
CFS_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller quota; Kubernetes rounds up to it
MIN_SHARES, MAX_SHARES = 2, 262_144


class CgroupError(Exception):
    """Cgroups cannot be used as asked (no memory controller, no permission, ...)."""


def cpu_shares(request_millis: int | None) -> int:
    """cpu.shares for a cpu request, as the kubelet computes it (no request: 2)."""
    if not request_millis:
        return MIN_SHARES
    return min(MAX_SHARES, max(MIN_SHARES, request_millis * 1024 // 1000))


def cpu_weight(shares: int) -> int:
    """cgroup v2 cpu.weight equivalent to v1 shares (the OCI runtimes' conversion)."""
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_quota_us(limit_millis: int) -> int:
    return max(MIN_QUOTA_US, limit_millis * CFS_PERIOD_US // 1000)


@dataclass(frozen=True)
class Usage:
    """A sample of a cgroup's counters; cpu in nanoseconds since the group was made."""

    cpu_usage_nanos: int
    memory_usage_bytes: int
    memory_working_set_bytes: int
    memory_rss_bytes: int
    page_faults: int = 0
    major_page_faults: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"cpu_usage_nanos": self.cpu_usage_nanos, "memory_usage_bytes": self.memory_usage_bytes,
                "memory_working_set_bytes": self.memory_working_set_bytes,
                "memory_rss_bytes": self.memory_rss_bytes, "memory_page_faults": self.page_faults,
                "memory_major_page_faults": self.major_page_faults}


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value.strip()!r} to {path}: {exc.strerror}") from exc


def _stat_file(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


@dataclass(frozen=True)
class Cgroup:
    """One group in every hierarchy in use. `dirs` maps a controller to its directory
    (v1) or every controller to the same directory (v2)."""

    version: int
    dirs: dict[str, Path] = field(hash=False)

    @property
    def paths(self) -> list[Path]:
        """The distinct directories (what `cgroup.procs` is written in to join)."""
        return sorted(set(self.dirs.values()))

    def _file(self, controller: str, name: str) -> Path:
        return self.dirs[controller] / name

    def exists(self) -> bool:
        return all(p.is_dir() for p in self.paths)

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "dirs": {k: str(v) for k, v in self.dirs.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Cgroup:
        return cls(int(data["version"]), {k: Path(v) for k, v in data["dirs"].items()})

    # -- limits ---------------------------------------------------------------------

    def set_limits(self, resources: Resources) -> None:
        """Write memory and cpu limits (no limit: unlimited) and cpu shares/weight."""
        if self.version == 1:
            self._set_limits_v1(resources)
        else:
            self._set_limits_v2(resources)

    def _set_limits_v1(self, r: Resources) -> None:
        if r.memory_limit is not None:
            # memsw (memory + swap) may not be below the memory limit: write memory first.
            _write(self._file("memory", "memory.limit_in_bytes"), str(r.memory_limit))
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            if memsw.exists():
                _write(memsw, str(r.memory_limit))
            else:
                with contextlib.suppress(CgroupError):
                    _write(self._file("memory", "memory.swappiness"), "0")
        if "cpu" in self.dirs:
            _write(self._file("cpu", "cpu.shares"), str(cpu_shares(r.cpu_request_millis)))
            if r.cpu_limit_millis is not None:
                _write(self._file("cpu", "cpu.cfs_period_us"), str(CFS_PERIOD_US))
                _write(self._file("cpu", "cpu.cfs_quota_us"), str(cpu_quota_us(r.cpu_limit_millis)))

    def _set_limits_v2(self, r: Resources) -> None:
        if r.memory_limit is not None:
            _write(self._file("memory", "memory.max"), str(r.memory_limit))
            swap = self._file("memory", "memory.swap.max")
            if swap.exists():
                _write(swap, "0")
        _write(self._file("cpu", "cpu.weight"), str(cpu_weight(cpu_shares(r.cpu_request_millis))))
        if r.cpu_limit_millis is not None:
            _write(self._file("cpu", "cpu.max"), f"{cpu_quota_us(r.cpu_limit_millis)} {CFS_PERIOD_US}")

    def memory_limit(self) -> int | None:
        name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        try:
            text = _read(self._file("memory", name)).strip()
        except FileNotFoundError:
            return None
        if text == "max" or int(text) >= 1 << 62:
            return None
        return int(text)

    # -- OOM ------------------------------------------------------------------------

    def oom_kills(self) -> int | None:
        """How many processes the kernel OOM-killed in this group; None when the
        kernel does not count them (v1 before 4.13)."""
        if self.version == 2:
            return _stat_file(self._file("memory", "memory.events")).get("oom_kill", 0)
        control = _stat_file(self._file("memory", "memory.oom_control"))
        return control.get("oom_kill")

    def oom_killed(self, *, sigkilled: bool) -> bool:
        """Whether the container's end was an OOM kill. Without a kill counter (old
        v1 kernels), a SIGKILL while the limit was hit (failcnt > 0) counts as one."""
        kills = self.oom_kills()
        if kills is not None:
            return kills > 0
        try:
            failcnt = int(_read(self._file("memory", "memory.failcnt")))
        except (FileNotFoundError, ValueError):
            return False
        return sigkilled and failcnt > 0

    # -- usage ----------------------------------------------------------------------

    def usage(self) -> Usage:
        if self.version == 1:
            cpu = int(_read(self._file("cpuacct", "cpuacct.usage"))) if "cpuacct" in self.dirs else 0
            usage = int(_read(self._file("memory", "memory.usage_in_bytes")))
            stat = _stat_file(self._file("memory", "memory.stat"))
            inactive, rss = stat.get("total_inactive_file", 0), stat.get("total_rss", 0)
            faults, major = stat.get("total_pgfault", 0), stat.get("total_pgmajfault", 0)
        else:
            cpu = _stat_file(self._file("cpu", "cpu.stat")).get("usage_usec", 0) * 1000
            usage = int(_read(self._file("memory", "memory.current")))
            stat = _stat_file(self._file("memory", "memory.stat"))
            inactive, rss = stat.get("inactive_file", 0), stat.get("anon", 0)
            faults, major = stat.get("pgfault", 0), stat.get("pgmajfault", 0)
        return Usage(cpu, usage, max(0, usage - inactive), rss, faults, major)

    # -- processes and removal ------------------------------------------------------

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                found.update(int(p) for p in _read(path / "cgroup.procs").split())
        return sorted(found)

    def add(self, pid: int) -> None:
        for path in self.paths:
            _write(path / "cgroup.procs", str(pid))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what still runs in the group (and its children groups), then remove
        the directories, deepest first. Idempotent."""
        deadline = time.monotonic() + timeout
        for path in self.paths:
            if not path.is_dir():
                continue
            for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _remove_dir(sub, deadline)
            _remove_dir(path, deadline)


def _remove_dir(path: Path, deadline: float) -> None:
    kill_file = path / "cgroup.kill"  # v2, Linux 5.14+
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        with contextlib.suppress(FileNotFoundError):
            for pid in _read(path / "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.01)


def _mounts(mountinfo: str) -> tuple[Path | None, dict[str, Path]]:
    """The cgroup2 mount point and each v1 controller's mount point."""
    unified: Path | None = None
    v1: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point = Path(fields[4].replace("\\040", " "))
        if rfields[0] == "cgroup2" and unified is None:
            unified = mount_point
        elif rfields[0] == "cgroup":
            for option in rfields[2].split(","):
                if option in V1_CONTROLLERS:
                    v1.setdefault(option, mount_point)
    return unified, v1


@dataclass(frozen=True)
class Hierarchy:
    """Which cgroup version to use and where each controller is mounted."""

    version: int
    mounts: dict[str, Path]  # controller -> mount point (v2: all the same)

    @classmethod
    def detect(cls, mountinfo: str | None = None) -> Hierarchy:
        text = mountinfo if mountinfo is not None else _read(Path("/proc/self/mountinfo"))
        unified, v1 = _mounts(text)
        if unified is not None:
            with contextlib.suppress(OSError):
                available = _read(unified / "cgroup.controllers").split()
                if {"memory", "cpu"} <= set(available):
                    wanted = [c for c in ("memory", "cpu", "pids") if c in available]
                    return cls(2, dict.fromkeys(wanted, unified))
        if "memory" not in v1:
            raise CgroupError("no usable memory cgroup controller: neither a cgroup v2 hierarchy "
                              "delegating memory and cpu nor a cgroup v1 memory hierarchy is mounted")
        return cls(1, v1)

    def group(self, relative: str) -> Cgroup:
        return Cgroup(self.version, {c: m / relative for c, m in self.mounts.items()})


class CgroupManager:
    """The kubelet's cgroup tree: `<parent>/<node>/pod<uid>/<container hex>`."""

    def __init__(self, node_name: str, *, parent: str = "mkpods", hierarchy: Hierarchy | None = None) -> None:
        if not node_name or "/" in node_name:
            raise CgroupError(f"invalid node name for a cgroup: {node_name!r}")
        self.hierarchy = hierarchy or Hierarchy.detect()
        self.node_path = f"{parent.strip('/')}/{node_name}"

    @property
    def version(self) -> int:
        return self.hierarchy.version

    def _create(self, relative: str) -> Cgroup:
        group = self.hierarchy.group(relative)
        for path in group.paths:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {path}: {exc.strerror}") from exc
        if self.version == 2:
            self._delegate(relative)
        return group

    def _delegate(self, relative: str) -> None:
        """v2: enable our controllers in every ancestor's subtree_control, so the leaf
        has memory.max, cpu.max ... (the root delegates them already)."""
        mount = next(iter(self.hierarchy.mounts.values()))
        wanted = " ".join(f"+{c}" for c in self.hierarchy.mounts)
        parts = relative.split("/")
        for depth in range(len(parts)):
            control = mount.joinpath(*parts[:depth]) / "cgroup.subtree_control"
            if set(self.hierarchy.mounts) <= set(_read(control).split()):
                continue
            _write(control, wanted)

    def node(self) -> Cgroup:
        return self._create(self.node_path)

    def remove_node(self) -> None:
        """Remove the node's group (and every pod's), then the parent if no other node
        uses it."""
        self.hierarchy.group(self.node_path).remove()
        parent = self.node_path.rsplit("/", 1)[0]
        for path in self.hierarchy.group(parent).paths:
            with contextlib.suppress(OSError):
                path.rmdir()

    def pod(self, pod_uid: str) -> Cgroup:
        return self.hierarchy.group(f"{self.node_path}/pod{pod_uid}")

    def create_pod(self, pod_uid: str) -> Cgroup:
        return self._create(f"{self.node_path}/pod{pod_uid}")

    def create_container(self, pod_uid: str, container_hex: str, resources: Resources) -> Cgroup:
        group = self._create(f"{self.node_path}/pod{pod_uid}/{container_hex}")
        try:
            group.set_limits(resources)
        except CgroupError:
            group.remove()
            raise
        return group

    def container(self, pod_uid: str, container_hex: str) -> Cgroup:
        return self.hierarchy.group(f"{self.node_path}/pod{pod_uid}/{container_hex}")

    def remove_pod(self, pod_uid: str) -> None:
        self.pod(pod_uid).remove()

    def pod_uids(self) -> list[str]:
        base = self.hierarchy.group(self.node_path).paths[0]
        if not base.is_dir():
            return []
        return sorted(p.name[3:] for p in base.iterdir() if p.is_dir() and p.name.startswith("pod"))
