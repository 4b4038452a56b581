"""Zone disruption states and the NoExecute tainting rate (handleDisruption, pure + a clock).

Nodes are grouped by zone (labels topology.kubernetes.io/region and .../zone). A zone is
- FullDisruption when none of its nodes is Ready (and it has some),
- PartialDisruption when more than 2 of its nodes are not Ready and they are at least
  --unhealthy-zone-threshold (0.55) of it,
- Normal otherwise.
When every zone is in FullDisruption the controller assumes the problem is its own (the
control plane cannot see any kubelet) and taints nothing: Kubernetes' "master disruption
mode", which also removes the NoExecute taints already set.

New NoExecute taints are rate limited per zone, as Kubernetes' zoneNoExecuteTainter:
a token bucket (burst 1) at --node-eviction-rate (0.1 nodes/s) for Normal and
FullDisruption zones; a PartialDisruption zone gets --secondary-node-eviction-rate (0.01)
if it has more than --large-cluster-size-threshold (50) nodes, else no new taints at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controllers.common import objects
from controllers.nodelifecycle.health import condition, ready_status
from minikube_py.client import Clock

Obj = dict[str, object]
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


@dataclass(frozen=True)
class DisruptionConfig:
    node_eviction_rate: float = 0.1  # --node-eviction-rate
    secondary_node_eviction_rate: float = 0.01  # --secondary-node-eviction-rate
    large_cluster_size_threshold: int = 50  # --large-cluster-size-threshold
    unhealthy_zone_threshold: float = 0.55  # --unhealthy-zone-threshold


def zone_of(node: Obj) -> str:
    """GetZoneKey: region and zone, '' for a node with neither."""
    labels = objects.labels(node)
    region, zone = labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")
    return "" if not region and not zone else f"{region}:\x00:{zone}"


def zone_state(ready: int, total: int, threshold: float) -> str:
    """ComputeZoneState from how many of a zone's nodes are Ready."""
    not_ready = total - ready
    if not_ready and not ready:
        return FULL
    if not_ready > 2 and not_ready / total >= threshold:
        return PARTIAL
    return NORMAL


class ZoneTracker:
    """Per-zone node counts, kept up to date node by node (O(1) per change)."""

    def __init__(self) -> None:
        self._nodes: dict[str, tuple[str, bool]] = {}  # name -> (zone, Ready True)
        self._total: dict[str, int] = {}
        self._ready: dict[str, int] = {}

    def set(self, node: Obj) -> None:
        """Count `node` (in its current zone and state); a node without a Ready condition
        does not count anywhere yet, as in Kubernetes."""
        self.remove(objects.name(node))
        if condition(node, "Ready") is None:
            return
        zone, ready = zone_of(node), ready_status(node) == "True"
        self._nodes[objects.name(node)] = (zone, ready)
        self._total[zone] = self._total.get(zone, 0) + 1
        self._ready[zone] = self._ready.get(zone, 0) + int(ready)

    def remove(self, name: str) -> None:
        old = self._nodes.pop(name, None)
        if old is None:
            return
        zone, ready = old
        self._total[zone] -= 1
        self._ready[zone] -= int(ready)
        if not self._total[zone]:
            del self._total[zone], self._ready[zone]

    def zones(self, threshold: float) -> Zones:
        return Zones({z: zone_state(self._ready[z], t, threshold) for z, t in self._total.items()},
                     dict(self._total))


@dataclass(frozen=True)
class Zones:
    """The zones of the cluster at one moment: state and size of each."""

    states: dict[str, str]
    sizes: dict[str, int]

    def master_disruption(self) -> bool:
        """Every zone fully disrupted: stop tainting, lift NoExecute taints."""
        return bool(self.states) and all(s == FULL for s in self.states.values())

    def rate(self, zone: str, config: DisruptionConfig) -> float:
        """Nodes per second that may get a new NoExecute taint in `zone`."""
        if self.states.get(zone, NORMAL) != PARTIAL:
            return config.node_eviction_rate
        if self.sizes.get(zone, 0) > config.large_cluster_size_threshold:
            return config.secondary_node_eviction_rate
        return 0.0


class TaintRateLimiter:
    """A token bucket per zone (burst 1) on the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._next: dict[str, float] = {}  # zone -> monotonic time of the next free token

    def try_accept(self, zone: str, rate: float) -> float:
        """0.0 when a taint may be added now (the token is used), else the seconds to wait."""
        if rate <= 0:
            return math.inf
        now = self.clock.monotonic()
        ready_at = self._next.get(zone, now)
        if ready_at > now:
            return ready_at - now
        self._next[zone] = now + 1.0 / rate
        return 0.0
