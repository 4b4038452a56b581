"""The kubelet's Summary API (`/stats/summary`) and resource metrics (`/metrics/resource`).

Shapes follow k8s.io/kubelet/pkg/apis/stats/v1alpha1: a node part (cpu, memory, fs,
network, runtime.imageFs, rlimit, system containers `kubelet` and `pods`) and one entry
per pod (podRef, startTime, containers with cpu/memory/logs, pod totals, volume and
ephemeral-storage usage). `kubectl top` (through metrics-server) and the HPA read these.

Counters come from where the real kubelet's cAdvisor gets them: the container runtime's
`stats()` (cgroups under `namespaces`, /proc under `process`) for containers, /proc for the
node, statvfs and directory sizes for filesystems. `usageNanoCores` is a rate, so the
builder keeps the previous cumulative sample of every container, pod and the node and
divides the difference by the time between the two; a rate is only recomputed once the
window is at least `min_window` long, so back-to-back scrapes do not produce noise. The
first scrape of something has no rate and omits the field, as an optional field.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.runtime.logs import pod_log_dir
from minikube_py.api.quantity import QuantityError, parse_quantity

CLK_TCK = os.sysconf("SC_CLK_TCK")

# (container name, runtime, container id, started) for each container of a pod.
ContainerRef = tuple[str, Any, str, datetime]


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) * (1024 if rest.strip().endswith("kB") else 1)
    return out


def _proc_stat() -> tuple[int, int]:
    """(node cpu time in ns, boot time in unix seconds) from /proc/stat."""
    cpu_ns = boot = 0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)  # not idle/iowait
            cpu_ns = busy * 1_000_000_000 // CLK_TCK
        elif line.startswith("btime "):
            boot = int(line.split()[1])
    return cpu_ns, boot


def _vmstat() -> dict[str, int]:
    out = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = int(value)
    return out


def fs_stats(path: Path, when: str, used: int | None = None) -> dict[str, Any] | None:
    """FsStats of the filesystem holding `path`; `used` overrides the usedBytes."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"time": when, "availableBytes": st.f_bavail * st.f_frsize, "capacityBytes": st.f_blocks * st.f_frsize,
            "usedBytes": used if used is not None else (st.f_blocks - st.f_bfree) * st.f_frsize,
            "inodesFree": st.f_ffree, "inodes": st.f_files, "inodesUsed": st.f_files - st.f_ffree}


def dir_usage(path: Path) -> tuple[int, int]:
    """(bytes, inodes) used under `path`, not crossing into other filesystems."""
    total = inodes = 0
    try:
        dev = path.lstat().st_dev
    except OSError:
        return 0, 0
    for dirpath, dirnames, filenames in os.walk(path):
        inodes += 1
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_blocks * 512
            inodes += 1
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == dev]
    return total, inodes


def _memory_limit(container: dict) -> int | None:
    value = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    if value is None:
        return None
    try:
        return parse_quantity(value).int_value()
    except QuantityError:
        return None


@dataclass
class _Sample:
    at_ns: int
    cpu_ns: int
    rate: int | None = None


class SummaryBuilder:
    """Builds Summary documents; keeps the previous samples for cpu rates."""

    def __init__(self, node_name: str, *, root_dir: Path | None = None,
                 images_used: Callable[[], int] | None = None, min_window: float = 1.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.node_name = node_name
        self.root_dir = root_dir
        self.images_used = images_used
        self.min_window_ns = int(min_window * 1e9)
        self.clock = clock
        self._samples: dict[str, _Sample] = {}
        self._seen: set[str] = set()

    def _rate(self, key: str, now_ns: int, cpu_ns: int) -> int | None:
        self._seen.add(key)
        prev = self._samples.get(key)
        if prev is None or cpu_ns < prev.cpu_ns:
            self._samples[key] = _Sample(now_ns, cpu_ns)
            return None
        if now_ns - prev.at_ns < self.min_window_ns:
            return prev.rate
        rate = (cpu_ns - prev.cpu_ns) * 1_000_000_000 // (now_ns - prev.at_ns)
        self._samples[key] = _Sample(now_ns, cpu_ns, rate)
        return rate

    def _cpu(self, key: str, now_ns: int, when: str, cpu_ns: int) -> dict[str, Any]:
        cpu: dict[str, Any] = {"time": when}
        rate = self._rate(key, now_ns, cpu_ns)
        if rate is not None:
            cpu["usageNanoCores"] = rate
        cpu["usageCoreNanoSeconds"] = cpu_ns
        return cpu

    @staticmethod
    def _memory(when: str, s: dict[str, int], limit: int | None) -> dict[str, Any]:
        mem: dict[str, Any] = {"time": when}
        working = s.get("memory_working_set_bytes", 0)
        if limit is not None:
            mem["availableBytes"] = max(0, limit - working)
        mem.update(usageBytes=s.get("memory_usage_bytes", 0), workingSetBytes=working,
                   rssBytes=s.get("memory_rss_bytes", 0))
        if "memory_page_faults" in s:
            mem["pageFaults"] = s["memory_page_faults"]
            mem["majorPageFaults"] = s.get("memory_major_page_faults", 0)
        return mem

    # -- the document -----------------------------------------------------------------

    def summary(self, pods: Iterable[tuple[dict, Sequence[ContainerRef]]], *,
                only_cpu_and_memory: bool = False) -> dict[str, Any]:
        now_ns = self.clock()
        when = _ts(datetime.fromtimestamp(now_ns / 1e9, UTC))
        self._seen: set[str] = set()
        pod_stats = [self._pod(pod, refs, now_ns, when, only_cpu_and_memory) for pod, refs in pods]
        node = self._node(now_ns, when, pod_stats, only_cpu_and_memory)
        for key in set(self._samples) - self._seen:  # containers and pods that are gone
            del self._samples[key]
        return {"node": node, "pods": pod_stats}

    def _container(self, pod: dict, ref: ContainerRef, now_ns: int, when: str,
                   fs: bool) -> tuple[dict[str, Any], dict[str, int] | None]:
        name, runtime, cid, started = ref
        out: dict[str, Any] = {"name": name, "startTime": _ts(started)}
        try:
            s = runtime.stats(cid)
        except Exception:  # noqa: BLE001 - a container that just went away has no stats
            s = None
        if s:
            spec = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), {})
            out["cpu"] = self._cpu(f"ctr/{cid}", now_ns, when, s.get("cpu_usage_nanos", 0))
            out["memory"] = self._memory(when, s, _memory_limit(spec))
        if fs and self.root_dir is not None:
            logs = pod_log_dir(self.root_dir, pod) / name
            used, inodes = dir_usage(logs)
            stats = fs_stats(self.root_dir, when, used)
            if stats is not None:
                out["logs"] = stats | {"inodesUsed": inodes}
        return out, s

    def _pod(self, pod: dict, refs: Sequence[ContainerRef], now_ns: int, when: str,
             only_cpu_and_memory: bool) -> dict[str, Any]:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        containers, totals = [], {"cpu_usage_nanos": 0, "memory_usage_bytes": 0,
                                  "memory_working_set_bytes": 0, "memory_rss_bytes": 0}
        samples: list[dict[str, int]] = []
        for ref in refs:
            entry, s = self._container(pod, ref, now_ns, when, not only_cpu_and_memory)
            containers.append(entry)
            if s:
                samples.append(s)
                for key in totals:
                    totals[key] += s.get(key, 0)
        started = (pod.get("status") or {}).get("startTime") or (
            min((_ts(r[3]) for r in refs), default=when))
        out: dict[str, Any] = {"podRef": {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
                                          "uid": uid}, "startTime": started, "containers": containers}
        counts = [s.get("process_count") for s in samples if s.get("process_count") is not None]
        if counts:
            out["process_stats"] = {"process_count": sum(counts)}
        if samples:
            limits = [_memory_limit(c) for c in (pod.get("spec") or {}).get("containers") or []]
            limit = sum(limits) if limits and None not in limits else None  # type: ignore[arg-type]
            out["cpu"] = self._cpu(f"pod/{uid}", now_ns, when, totals["cpu_usage_nanos"])
            out["memory"] = self._memory(when, totals, limit)
        if not only_cpu_and_memory and self.root_dir is not None:
            self._pod_volumes(out, uid, when, containers)
        return out

    def _pod_volumes(self, out: dict[str, Any], uid: str, when: str, containers: list[dict]) -> None:
        base = self.root_dir / "pods" / uid / "volumes"  # type: ignore[operator]
        volumes, ephemeral, ephemeral_inodes = [], 0, 0
        for plugin in sorted(base.iterdir()) if base.is_dir() else []:
            for vol in sorted(plugin.iterdir()):
                used, inodes = dir_usage(vol)
                stats = fs_stats(vol, when, used)
                if stats is None:
                    continue
                volumes.append(stats | {"inodesUsed": inodes, "name": vol.name})
                if plugin.name in ("kubernetes.io~empty-dir", "kubernetes.io~configmap",
                                   "kubernetes.io~secret", "kubernetes.io~downward-api",
                                   "kubernetes.io~projected"):
                    ephemeral += used
                    ephemeral_inodes += inodes
        if volumes:
            out["volume"] = volumes
        for c in containers:
            ephemeral += (c.get("logs") or {}).get("usedBytes", 0)
            ephemeral_inodes += (c.get("logs") or {}).get("inodesUsed", 0)
        stats = fs_stats(self.root_dir, when, ephemeral)  # type: ignore[arg-type]
        if stats is not None:
            out["ephemeral-storage"] = stats | {"inodesUsed": ephemeral_inodes}

    # -- the node ---------------------------------------------------------------------

    def _node(self, now_ns: int, when: str, pods: list[dict], only_cpu_and_memory: bool) -> dict[str, Any]:
        cpu_ns, boot = _proc_stat()
        info, vm = _meminfo(), _vmstat()
        total = info.get("MemTotal", 0)
        usage = total - info.get("MemFree", 0)
        working = max(0, usage - info.get("Inactive(file)", 0))
        node: dict[str, Any] = {"nodeName": self.node_name,
                                "systemContainers": self._system_containers(now_ns, when, pods),
                                "startTime": _ts(datetime.fromtimestamp(boot, UTC)),
                                "cpu": self._cpu("node", now_ns, when, cpu_ns),
                                "memory": {"time": when, "availableBytes": max(0, total - working),
                                           "usageBytes": usage, "workingSetBytes": working,
                                           "rssBytes": info.get("AnonPages", 0),
                                           "pageFaults": vm.get("pgfault", 0),
                                           "majorPageFaults": vm.get("pgmajfault", 0)}}
        if only_cpu_and_memory:
            return node
        node["network"] = network_stats(when)
        if self.root_dir is not None:
            node["fs"] = fs_stats(self.root_dir, when)
            used = self.images_used() if self.images_used else None
            node["runtime"] = {"imageFs": fs_stats(self.root_dir, when, used)}
        node["rlimit"] = rlimit_stats(when)
        return {k: v for k, v in node.items() if v is not None}

    def _system_containers(self, now_ns: int, when: str, pods: list[dict]) -> list[dict[str, Any]]:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        own_cpu = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK
        rss = 0
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        kubelet = {"name": "kubelet", "startTime": _ts(datetime.fromtimestamp(_own_start(), UTC)),
                   "cpu": self._cpu("kubelet", now_ns, when, own_cpu),
                   "memory": {"time": when, "usageBytes": rss, "workingSetBytes": rss, "rssBytes": rss}}
        cpu = sum((p.get("cpu") or {}).get("usageCoreNanoSeconds", 0) for p in pods)
        mem = {k: sum((p.get("memory") or {}).get(k, 0) for p in pods)
               for k in ("usageBytes", "workingSetBytes", "rssBytes")}
        started = min((p["startTime"] for p in pods), default=when)
        pods_entry = {"name": "pods", "startTime": started, "cpu": self._cpu("pods", now_ns, when, cpu),
                      "memory": {"time": when, **mem}}
        return [kubelet, pods_entry]


def _own_start() -> float:
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    _, boot = _proc_stat()
    return boot + start_ticks / CLK_TCK


def network_stats(when: str) -> dict[str, Any] | None:
    """Node NetworkStats from /proc/net/dev: every interface but lo; the default one
    (the first with traffic) is also inlined, as the kubelet does."""
    interfaces = []
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        name, v = name.strip(), [int(x) for x in rest.split()]
        if name == "lo" or len(v) < 11:
            continue
        interfaces.append({"name": name, "rxBytes": v[0], "rxErrors": v[2], "txBytes": v[8], "txErrors": v[10]})
    if not interfaces:
        return None
    default = next((i for i in interfaces if i["rxBytes"] or i["txBytes"]), interfaces[0])
    return {"time": when, **default, "interfaces": interfaces}


def rlimit_stats(when: str) -> dict[str, Any]:
    maxpid = int(Path("/proc/sys/kernel/pid_max").read_text())
    curproc = int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    return {"time": when, "maxpid": maxpid, "curproc": curproc}


# -- /metrics/resource ------------------------------------------------------------------

_METRICS = (
    ("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds"),
    ("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes"),
    ("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds"),
    ("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes"),
    ("container_cpu_usage_seconds_total", "counter",
     "Cumulative cpu time consumed by the container in core-seconds"),
    ("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes"),
    ("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds"),
    ("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
)


def _epoch_ms(ts: str) -> int:
    return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_metrics(summary: dict[str, Any]) -> str:
    """The kubelet's `/metrics/resource` (Prometheus text) from a cpu-and-memory summary:
    what metrics-server scrapes. Samples carry the stats' timestamps in ms."""
    lines: dict[str, list[str]] = {name: [] for name, _, _ in _METRICS}

    def add(name: str, labels: dict[str, str], value: float, ts: str | None) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        sample = f"{name}{{{text}}} {value!r}" if text else f"{name} {value!r}"
        lines[name].append(sample + (f" {_epoch_ms(ts)}" if ts else ""))

    def add_usage(prefix: str, labels: dict[str, str], entry: dict[str, Any]) -> None:
        cpu, mem = entry.get("cpu") or {}, entry.get("memory") or {}
        if "usageCoreNanoSeconds" in cpu:
            add(f"{prefix}_cpu_usage_seconds_total", labels, cpu["usageCoreNanoSeconds"] / 1e9, cpu["time"])
        if "workingSetBytes" in mem:
            add(f"{prefix}_memory_working_set_bytes", labels, float(mem["workingSetBytes"]), mem["time"])

    add_usage("node", {}, summary["node"])
    for pod in summary["pods"]:
        ref = {"namespace": pod["podRef"]["namespace"], "pod": pod["podRef"]["name"]}
        add_usage("pod", ref, pod)
        for c in pod["containers"]:
            labels = {"container": c["name"], **ref}
            add_usage("container", labels, c)
            add("container_start_time_seconds", labels, _epoch_ms(c["startTime"]) / 1000, None)
    add("resource_scrape_error", {}, 0.0, None)
    out = []
    for name, kind, help_text in _METRICS:
        if lines[name]:
            out += [f"# HELP {name} [STABLE] {help_text}", f"# TYPE {name} {kind}", *lines[name]]
    return "\n".join(out) + "\n"
