"""Where a cluster's state lives on disk, and the small record `mkp` keeps about it.

Everything one cluster owns sits under one directory, `$MKP_HOME/<name>` (default
`~/.mkp/mkp`), so `mkp down --purge` is one `rm -rf` and two clusters never share a file:

    data/                  the API server's data directory (its store file lives there)
    logs/<component>.log   stdout+stderr of each component, appended across restarts
    pids/<component>.pid   pid of each running component (its process-group leader)
    kubeconfig             a kubeconfig holding only this cluster's context
    cluster.json           port, mode, started components, timestamps (`ClusterState`)
    apiserver.port         the port the API server actually bound, written by the server

The absolute path of that directory is also the cluster's identity at run time: every
process started for the cluster carries it in `MKP_CLUSTER_HOME`, which is how
`mkp down` finds processes that no pid file knows about (pods started by kubelets).

This module only computes paths and reads/writes `cluster.json`; it starts nothing, and
it imports nothing heavy because every `mkp` invocation loads it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_NAME = "mkp"
ENV_HOME = "MKP_HOME"
# Set on every process that belongs to a cluster; `mkp down` kills whatever carries it.
ENV_CLUSTER_HOME = "MKP_CLUSTER_HOME"
ENV_COMPONENT = "MKP_COMPONENT"

# The Kubernetes release whose API the server implements (kubectl 1.32 is the target).
# The live value is whatever the API server's /version reports.
KUBERNETES_VERSION = "v1.32.4"

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_SECONDS = 15.0
STOP_GRACE_SECONDS = 5.0

# A DNS-1123 label: the name is used as a directory and as a kubeconfig context name.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def mkp_home() -> Path:
    """`$MKP_HOME`, else `~/.mkp`, as an absolute path."""
    raw = os.environ.get(ENV_HOME) or os.path.join(os.path.expanduser("~"), ".mkp")
    return Path(raw).expanduser().resolve()


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(
            f"invalid cluster name {name!r}: use lowercase letters, digits and '-' "
            "(a DNS label, at most 63 characters)"
        )
    return name


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ClusterPaths:
    """The files of one cluster. `home` is absolute, so it can be compared byte for byte
    with the `MKP_CLUSTER_HOME` found in other processes' environments."""

    name: str
    home: Path

    @classmethod
    def for_name(cls, name: str = DEFAULT_NAME, base: Path | None = None) -> ClusterPaths:
        validate_name(name)
        return cls(name=name, home=(base or mkp_home()) / name)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.home / "pids"

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def port_file(self) -> Path:
        return self.home / "apiserver.port"

    @property
    def lock_file(self) -> Path:
        return self.home / ".lock"

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid(self, component: str) -> Path:
        return self.pids_dir / f"{component}.pid"

    def ensure(self) -> None:
        for d in (self.home, self.data_dir, self.logs_dir, self.pids_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass
class ClusterState:
    """What `cluster.json` records. `port` is the port last bound by the API server, so a
    resumed cluster keeps its address (and its kubeconfig entries stay valid)."""

    name: str
    created: str = field(default_factory=now_iso)
    port: int = 0
    mode: str = "multi-process"  # or "single-process"
    components: list[str] = field(default_factory=list)
    started: str = ""
    stopped: str = ""
    # The user kubeconfig our context was merged into; `down --purge` cleans exactly that.
    merged_kubeconfig: str = ""
    fake_nodes: int = 0  # `mkp up --fake-nodes N`, kept for resumes
    nodes: int = 1  # `mkp up --nodes N`: real nodes (process kubelets), kept for resumes
    runtime: str = ""  # `mkp up --runtime`: their container runtime ("" = the kubelet's default)
    network: str = ""  # `mkp up --network`: loopback or bridge, fixed when the cluster is created
    ingress_ports: str = ""  # `mkp up --ingress-ports HTTP,HTTPS` ("" = 80,443 as root, else 8080,8443)
    # `mkp node add --fake`: one fake-node process each, [{"name": ..., "capacity": ...}];
    # a node listed in `stopped_nodes` (`mkp node stop`) is not started by `mkp up`.
    added_nodes: list[dict[str, str]] = field(default_factory=list)
    stopped_nodes: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"http://{LOOPBACK}:{self.port}" if self.port else ""

    @classmethod
    def load(cls, paths: ClusterPaths) -> ClusterState | None:
        try:
            raw = json.loads(paths.state_file.read_text())
        except FileNotFoundError:
            return None
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, paths: ClusterPaths) -> None:
        tmp = paths.state_file.with_name(paths.state_file.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, paths.state_file)
