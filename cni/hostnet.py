"""The host's part of the bridge pod network: what `mkp up` sets up once per cluster.

The bridge plugin wires each pod to its node's bridge; the rest is the host's job, as on
a Kubernetes node that the cluster installer prepared:

- the node bridges `mkpbr<k>` with their gateway `.1`, created up front, so that the
  guard table below can route to them before the first pod;
- AnyIP: `local` routes for the Service range and the node range in table `local`, so
  every ClusterIP and node IP is an address of this machine. The service proxy can bind
  any of them, and a packet to one is delivered here and never leaves;
- guards, so that pod traffic stays on the machine even with forwarding on (the bridge
  plugin turns net.ipv4.ip_forward on, and pods on two bridges need it):
    * `unreachable <cluster CIDR>` in the main table: a /24 with no bridge (a node that
      is gone) is refused here instead of following the default route out;
    * `ip rule from <cluster CIDR> lookup <guard table>`: packets *from* pods are routed
      with a table that holds only the node bridges' /24s and `unreachable default`, so
      a pod's packet to 8.8.8.8 or to the LAN is rejected at the host. Local addresses
      (ClusterIPs, node IPs) still win: the `local` table's rule comes first;
- net.bridge.bridge-nf-call-iptables=1, so bridged pod-to-pod packets pass the inet
  forward hook where NetworkPolicy rules (nftables) see them; net.ipv4.ip_forward=1.

Everything is recorded in a state file as it is changed, with how to undo it, so that
`teardown_cluster` removes exactly what `setup_cluster` made (nothing that was there
before), even after a setup that failed half way. Setup is idempotent: run it again (say
with one more node, or after a reboot) and it adds only what is missing. Sysctls belong
to the whole machine, so their original values are kept in one shared record under
/run/mkp/hostnet and put back when the last cluster using them is torn down.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cni import addressing

GUARD_TABLE = 2440  # routing table of packets from pods (10.244 -> 2440)
GUARD_PRIORITY = 2440  # before main (32766), after local (0)
IP_FORWARD = "net.ipv4.ip_forward"
BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"
SYSCTLS = ((IP_FORWARD, "1"), (BRIDGE_NF, "1"))
SHARED_DIR = Path("/run/mkp/hostnet")  # machine-wide: who holds the sysctls, and their originals
LINK_PREFIX = "mkp"
NETNS_DIR = Path("/var/run/netns")


class HostNetError(Exception):
    """The host network could not be set up or torn down."""


@dataclass(frozen=True)
class NodeNet:
    """One node's host side: its bridge, pod CIDR (gateway = first address) and node IP."""

    bridge: str
    pod_cidr: str
    node_ip: str


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostNetError(f"ip {' '.join(args)}: {exc}") from None
    if check and proc.returncode != 0:
        raise HostNetError(f"ip {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _ip_json(*args: str) -> list[dict[str, Any]]:
    out = _ip("-j", *args).stdout.strip()
    return json.loads(out) if out else []


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctl(key: str) -> str:
    return _sysctl_path(key).read_text().strip()


def write_sysctl(key: str, value: str) -> None:
    path = _sysctl_path(key)
    if key == BRIDGE_NF and not path.exists():
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, timeout=30)
    try:
        path.write_text(value)
    except OSError as exc:
        raise HostNetError(f"sysctl {key}={value}: {exc.strerror}") from None


# -- the objects we make, each with a presence test, a way to add and one to remove --------

def _route_present(spec: list[str], table: str) -> bool:
    kind, prefix = (spec[0], spec[1]) if spec[0] in ("local", "unreachable") else ("unicast", spec[0])
    kind_args = ["type", kind] if kind != "unicast" else []
    proc = _ip("-j", "route", "show", "table", table, *kind_args, "exact", prefix, check=False)
    if proc.returncode != 0:
        if "table does not exist" in proc.stderr:  # a table with no route yet
            return False
        raise HostNetError(f"ip route show table {table}: {proc.stderr.strip()}")
    return bool(proc.stdout.strip() and json.loads(proc.stdout))


def _rule_present(cidr: str, table: int, priority: int) -> bool:
    for rule in _ip_json("rule", "show"):
        src = rule.get("src", "")
        if rule.get("srclen") is not None:
            src = f"{src}/{rule['srclen']}"
        if rule.get("priority") == priority and src == cidr and str(rule.get("table")) == str(table):
            return True
    return False


def _link_present(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


class _Record:
    """The state file: the list of changes made, newest last, each with its undo."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.changes: list[dict[str, Any]] = list(data.get("changes") or [])

    def has(self, key: str) -> bool:
        return any(c["key"] == key for c in self.changes)

    def add(self, change: dict[str, Any]) -> None:
        self.changes.append(change)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"kind": "mkpHostNetwork", "changes": self.changes}, indent=1))
        os.replace(tmp, self.path)


@contextlib.contextmanager
def _locked(state_file: Path) -> Iterator[None]:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    with open(state_file.with_name(state_file.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _shared(shared_dir: Path) -> Iterator[dict[str, Any]]:
    """The machine-wide record of sysctl users (see `_claim_sysctls`), locked."""
    shared_dir.mkdir(parents=True, exist_ok=True)
    path = shared_dir / "sysctls.json"
    with open(shared_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        shared = {"users": list(data.get("users") or []), "originals": dict(data.get("originals") or {})}
        try:
            yield shared
        finally:  # saved even when a write failed half way: the originals taken so far count
            shared["users"] = [u for u in shared["users"] if Path(u).exists()]  # a user whose state is gone left
            if shared["users"] or shared["originals"]:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(json.dumps(shared, indent=1))
                os.replace(tmp, path)
            else:
                path.unlink(missing_ok=True)


def _claim_sysctls(record: _Record, shared_dir: Path) -> None:
    """Sysctls are the machine's, not the cluster's: several clusters (or test runs) may
    need them at once. The first to change a value keeps its original in the shared
    record under /run (a tmpfs, reset by a reboot as the values are); the last user to
    leave puts the originals back (`_release_sysctls`)."""
    if not record.has("sysctls"):
        record.add({"key": "sysctls", "shared": str(shared_dir)})
    with _shared(shared_dir) as shared:
        if str(record.path) not in shared["users"]:
            shared["users"].append(str(record.path))
        for key, value in SYSCTLS:
            old = read_sysctl(key) if _sysctl_path(key).exists() else None
            if old != value and key not in shared["originals"]:
                shared["originals"][key] = old
            write_sysctl(key, value)


def _release_sysctls(state_file: Path, shared_dir: Path) -> None:
    with _shared(shared_dir) as shared:
        shared["users"] = [u for u in shared["users"] if u != str(state_file) and Path(u).exists()]
        if shared["users"]:
            return
        for key, old in shared["originals"].items():
            if old is not None:
                write_sysctl(key, old)
        shared["originals"] = {}


def sysctl_users(shared_dir: Path | None = None) -> list[str]:
    """State files of the host network setups that hold the sysctls now."""
    path = (shared_dir or SHARED_DIR) / "sysctls.json"
    try:
        return [u for u in json.loads(path.read_text()).get("users") or [] if Path(u).exists()]
    except (OSError, ValueError):
        return []


def _route(record: _Record, spec: list[str], table: str) -> None:
    """Add the route unless it is there. One that was there before us is not ours to
    remove; one we recorded but is gone (a reboot) is made again."""
    key = f"route {table} {' '.join(spec)}"
    if _route_present(spec, table):
        return
    if not record.has(key):
        record.add({"key": key, "undo": ["route", "del", *spec, "table", table]})
    _ip("route", "add", *spec, "table", table)


def _bridge(record: _Record, node: NodeNet) -> None:
    network = ipaddress.ip_network(node.pod_cidr, strict=True)
    gateway = f"{addressing.gateway(node.pod_cidr)}/{network.prefixlen}"
    key = f"link {node.bridge}"
    present = _link_present(node.bridge)
    if present and not record.has(key):
        raise HostNetError(f"link {node.bridge} already exists and was not made by this cluster "
                           f"(left over? `ip link del {node.bridge}`)")
    if not present:
        if not record.has(key):
            record.add({"key": key, "undo": ["link", "del", "dev", node.bridge]})
        _ip("link", "add", "name", node.bridge, "type", "bridge")
    addrs = _ip_json("-4", "addr", "show", "dev", node.bridge)
    have = {f"{a['local']}/{a['prefixlen']}" for i in addrs for a in i.get("addr_info", [])}
    if gateway not in have:
        _ip("addr", "add", gateway, "dev", node.bridge)
    _ip("link", "set", "dev", node.bridge, "up")


def _validate(service_cidr: str, cluster_cidr: str, node_cidr: str, nodes: list[NodeNet]) -> None:
    try:
        cluster = ipaddress.ip_network(cluster_cidr, strict=True)
        for cidr in (service_cidr, node_cidr):
            ipaddress.ip_network(cidr, strict=True)
        for node in nodes:
            pods = ipaddress.ip_network(node.pod_cidr, strict=True)
            if not pods.subnet_of(cluster):  # type: ignore[arg-type]
                raise HostNetError(f"node {node.bridge}: pod CIDR {node.pod_cidr} is not inside {cluster_cidr}")
            if not 0 < len(node.bridge) <= 15 or any(c in node.bridge for c in "/ :"):
                raise HostNetError(f"invalid bridge name {node.bridge!r}")
            if ipaddress.ip_address(node.node_ip) not in ipaddress.ip_network(node_cidr):
                raise HostNetError(f"node {node.bridge}: node IP {node.node_ip} is not inside {node_cidr}")
    except ValueError as exc:
        raise HostNetError(f"invalid address: {exc}") from None


def setup_cluster(state_file: Path, *, service_cidr: str, cluster_cidr: str, node_cidr: str,
                  nodes: list[NodeNet], table: int = GUARD_TABLE, priority: int = GUARD_PRIORITY,
                  shared_dir: Path = SHARED_DIR) -> None:
    """Make the host ready for the bridge mode (see the module docstring). Idempotent;
    every change is recorded in `state_file` before it is made."""
    if os.geteuid() != 0:
        raise HostNetError("the bridge pod network needs root (use --network loopback without it)")
    _validate(service_cidr, cluster_cidr, node_cidr, nodes)
    state_file = Path(state_file).resolve()
    with _locked(state_file):
        record = _Record(state_file)
        record.save()
        _claim_sysctls(record, shared_dir)
        for node in nodes:
            _bridge(record, node)
        _route(record, ["local", service_cidr, "dev", "lo"], "local")
        _route(record, ["local", node_cidr, "dev", "lo"], "local")
        _route(record, ["unreachable", cluster_cidr], "main")
        for node in nodes:
            _route(record, [node.pod_cidr, "dev", node.bridge, "src", addressing.gateway(node.pod_cidr)],
                   str(table))
        _route(record, ["unreachable", "default"], str(table))
        key = f"rule {cluster_cidr} {table} {priority}"
        if not _rule_present(cluster_cidr, table, priority):
            if not record.has(key):
                record.add({"key": key, "undo": ["rule", "del", "priority", str(priority), "from", cluster_cidr,
                                                 "lookup", str(table)]})
            _ip("rule", "add", "priority", str(priority), "from", cluster_cidr, "lookup", str(table))


def teardown_cluster(state_file: Path) -> None:
    """Undo what `setup_cluster` recorded, newest first; sysctls get their old values.
    Things already gone are fine. The state file goes once everything is undone."""
    state_file = Path(state_file).resolve()
    if not state_file.exists():
        return
    errors = []
    with _locked(state_file):
        record = _Record(state_file)
        for change in reversed(list(record.changes)):
            try:
                _undo(change, state_file)
            except HostNetError as exc:
                errors.append(str(exc))
                continue
            record.changes.remove(change)
            record.save()
        if not errors:
            state_file.unlink(missing_ok=True)
    state_file.with_name(state_file.name + ".lock").unlink(missing_ok=True)
    if errors:
        raise HostNetError("tearing the host network down: " + "; ".join(errors))


_GONE = ("No such file or directory", "Cannot find device", "No such process", "does not exist")


def _undo(change: dict[str, Any], state_file: Path) -> None:
    if "shared" in change:
        _release_sysctls(state_file, Path(change["shared"]))
        return
    proc = _ip(*change["undo"], check=False)
    if proc.returncode != 0 and not any(g in proc.stderr for g in _GONE):
        raise HostNetError(f"ip {' '.join(change['undo'])}: {proc.stderr.strip()}")


def leftovers(*, link_prefix: str = LINK_PREFIX, table: int = GUARD_TABLE,
              cluster_cidr: str = addressing.BRIDGE_CLUSTER_CIDR,
              local_cidrs: tuple[str, ...] = (addressing.BRIDGE_SERVICE_CIDR, addressing.BRIDGE_NODE_CIDR),
              netns_dir: Path = NETNS_DIR) -> list[str]:
    """What a bridge-mode cluster leaves on the host if its teardown did not run: links
    named `mkp*`, pod namespaces `cni-*` in /var/run/netns, guard rules and routes, local
    routes. Empty on a clean host."""
    found = [f"link {link['ifname']}" for link in _ip_json("link", "show")
             if str(link.get("ifname", "")).startswith(link_prefix)]
    if netns_dir.is_dir():
        from cni.netns import is_netns_mount
        found += [f"netns {p}" for p in sorted(netns_dir.glob("cni-*")) if is_netns_mount(p)]
    for rule in _ip_json("rule", "show"):
        if str(rule.get("table")) == str(table):
            found.append(f"rule priority {rule.get('priority')} lookup {table}")
    with contextlib.suppress(HostNetError):  # an absent table is an error for `ip route show`
        found += [f"route table {table} {r.get('type', '')} {r.get('dst')}".replace("  ", " ")
                  for r in _ip_json("route", "show", "table", str(table))]
    for cidr in local_cidrs:
        if _route_present(["local", cidr], "local"):
            found.append(f"route table local local {cidr}")
    if _route_present(["unreachable", cluster_cidr], "main"):
        found.append(f"route unreachable {cluster_cidr}")
    return found
