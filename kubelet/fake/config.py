"""Names, defaults and settings of fake nodes, in one place.

The values a learner can see (labels, versions, reasons, capacity) are the ones a real
1.32 kubelet writes, so `kubectl get nodes`, `kubectl describe node` and the pod YAML
look like a real cluster's. What is ours alone is marked with the `mkp.dev/` prefix.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

FIELD_MANAGER = "kubelet"  # what managedFields show for every write of a fake node
COMPONENT = "kubelet"  # Event source.component, as the real kubelet's
KUBELET_VERSION = "v1.32.4"
CONTAINER_RUNTIME_VERSION = "fake://mkp"
KUBELET_PORT = 10250  # status.daemonEndpoints; never listened on by a fake node
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_DURATION_SECONDS = 40  # kubelet --node-lease-duration-seconds default

# Labels and annotations.
FAKE_NODE_LABEL = "mkp.dev/fake-node"  # "true" on every node this module registers
RUN_SECONDS_ANNOTATION = "mkp.dev/fake-run-seconds"  # run time of a run-to-completion pod
EXIT_CODE_ANNOTATION = "mkp.dev/fake-exit-code"  # its containers' exit code (default 0)

# A node with room for the demos and the benchmarks (110 pods, as a real kubelet's
# --max-pods). Memory and storage are written the way a kubelet reports them.
DEFAULT_CAPACITY: Mapping[str, str] = {
    "cpu": "8",
    "memory": "32Gi",
    "ephemeral-storage": "100Gi",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
    "pods": "110",
}
# What a default kubelet keeps back from allocatable: --eviction-hard
# memory.available<100Mi and nodefs.available<10% (no kube/system reservations).
EVICTION_MEMORY = "100Mi"
EVICTION_NODEFS_FRACTION = 0.10

# A fake node's pods get addresses from a /24 per node out of kind's default cluster
# CIDR. They are never contacted: fake pods run no process and listen on nothing.
CLUSTER_CIDR = "10.244.0.0/14"
NODE_CIDR_PREFIX = 24
# Node InternalIPs are loopback addresses (127.1.x.y), so nothing leaves the machine.
NODE_IP_BASE = "127.1.0.0"


def host_architecture() -> str:
    """GOARCH-style name of this machine's architecture (amd64, arm64, ...)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine or "amd64")


@dataclass(frozen=True)
class FakeNodeConfig:
    """How fake nodes behave.

    capacity                  merged over DEFAULT_CAPACITY; allocatable is derived
    heartbeat                 seconds between Lease renewals (kubelet: 1/4 of the
                              lease duration, i.e. 10 s)
    status_report_frequency   seconds between node status writes when nothing changed
                              (kubelet --node-status-report-frequency; 5 min there, one
                              minute here so `kubectl describe node` heartbeats look alive)
    run_seconds               how long a run-to-completion pod runs (annotation
                              mkp.dev/fake-run-seconds overrides per pod)
    record_events             write Pulled/Created/Started/Killing Events (turn off for
                              scale runs: three Events per container triple the writes)
    pod_workers, node_workers concurrent reconciles. A real kubelet syncs each pod in
                              its own goroutine; one fake process stands in for many
                              nodes, and each pod sync waits for a status write, so
                              with 16 workers 500 nodes started pods ~20 s behind the
                              scheduler at 10,000 pods (64 keeps up).
    """

    capacity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    heartbeat: float = 10.0
    status_report_frequency: float = 60.0
    run_seconds: float = 1.0
    record_events: bool = True
    pod_workers: int = 64
    node_workers: int = 4
    architecture: str = field(default_factory=host_architecture)
    kubelet_version: str = KUBELET_VERSION

    def __post_init__(self) -> None:
        if self.heartbeat <= 0 or self.status_report_frequency <= 0:
            raise ValueError("heartbeat and status_report_frequency must be positive")
        if self.run_seconds < 0:
            raise ValueError("run_seconds cannot be negative")
        merged = {**DEFAULT_CAPACITY, **{k: str(v) for k, v in self.capacity.items()}}
        object.__setattr__(self, "capacity", merged)


def parse_capacity(text: str) -> dict[str, str]:
    """`cpu=16,memory=64Gi,pods=250` -> {"cpu": "16", ...} (for command lines)."""
    capacity: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"capacity entries look like name=quantity, got {item!r}")
        capacity[name.strip()] = value.strip()
    return capacity


def node_names(count: int, prefix: str = "fake-node-") -> list[str]:
    """Names for `count` fake nodes: fake-node-1, fake-node-2, ..."""
    return [f"{prefix}{i}" for i in range(1, count + 1)]


# -- timestamps ---------------------------------------------------------------------------


def rfc3339(when: datetime) -> str:
    """metav1.Time: second precision, UTC (what status timestamps carry)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: datetime) -> str:
    """metav1.MicroTime (a Lease's renewTime)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    """A metav1.Time or MicroTime string as an aware datetime (None if absent or bad)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
