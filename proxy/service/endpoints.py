"""Which endpoints a Service port sends new connections to, as kube-proxy decides it.

Pure functions over EndpointSlices (discovery.k8s.io/v1), so the rules can be tested
without sockets. The rules are kube-proxy's (pkg/proxy/endpointslicecache.go and
topology.go):

- An endpoint is one address of a slice with one of the slice's ports, matched to the
  Service port by port *name* and protocol: the EndpointSlice controller has already
  resolved named targetPorts per pod, so two slices may carry different numbers.
  The same address:port in two slices (during a rewrite) counts once, ready wins.
- Conditions: `ready` absent means true, `serving` absent means `ready`,
  `terminating` absent means false.
- Cluster traffic uses the ready endpoints; only when there is none anywhere do
  serving-but-terminating ones take their place (graceful termination).
- Zone hints (`hints.forZones`, written for trafficDistribution PreferClose or the
  topology-mode annotation) narrow the ready set to this node's zone when every ready
  endpoint has hints and one of them is for the zone.
- Local traffic policy uses the endpoints on this node (`nodeName`), ready ones, else
  local serving-terminating ones; none means the traffic is dropped, not sent away.
- `has_any` says whether the Service has any usable endpoint at all: without one the
  connection is refused (kube-proxy's REJECT), not dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True, order=True)
class Endpoint:
    """One backend of a Service port."""

    ip: str
    port: int
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zones: frozenset[str] = frozenset()

    @property
    def address(self) -> tuple[str, int]:
        return self.ip, self.port

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Selection:
    """The endpoints of one Service port for one kind of traffic."""

    endpoints: tuple[Endpoint, ...]  # where new connections may go (empty: drop)
    has_any: bool  # false: no usable endpoint anywhere (refuse)


def _family(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def _endpoint(ep: Obj, port: int) -> Endpoint | None:
    addresses = ep.get("addresses") or []
    if not addresses:
        return None
    conditions = ep.get("conditions") or {}
    ready = conditions.get("ready")
    ready = True if ready is None else bool(ready)
    serving = conditions.get("serving")
    serving = ready if serving is None else bool(serving)
    hints = (ep.get("hints") or {}).get("forZones") or []
    return Endpoint(ip=str(addresses[0]), port=port, node=str(ep.get("nodeName") or ""), ready=ready,
                    serving=serving, terminating=bool(conditions.get("terminating")),
                    zones=frozenset(str(z.get("name")) for z in hints if z.get("name")))


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str, family: str = "IPv4") -> list[Endpoint]:
    """Every endpoint of the Service port named `port_name` ("" for an unnamed port),
    de-duplicated (ready wins), in address order."""
    found: dict[tuple[str, int], Endpoint] = {}
    for slice_obj in slices:
        if slice_obj.get("addressType", "IPv4") != family:
            continue
        for port in slice_obj.get("ports") or []:
            if (port.get("name") or "") != port_name or (port.get("protocol") or "TCP") != protocol:
                continue
            number = port.get("port")
            if not isinstance(number, int) or not 0 < number < 65536:
                continue
            for ep in slice_obj.get("endpoints") or []:
                endpoint = _endpoint(ep, number)
                if endpoint is None:
                    continue
                known = found.get(endpoint.address)
                if known is None or (endpoint.ready and not known.ready):
                    found[endpoint.address] = endpoint
    return sorted(found.values())


def _use_zone_hints(endpoints: list[Endpoint], zone: str) -> bool:
    """kube-proxy's topologyModeFromHints: every ready endpoint hinted, one for our zone."""
    ready = [e for e in endpoints if e.ready]
    if not zone or not ready or any(not e.zones for e in ready):
        return False
    return any(zone in e.zones for e in ready)


def cluster_endpoints(endpoints: list[Endpoint], zone: str = "") -> tuple[Endpoint, ...]:
    """The endpoints for traffic policy Cluster (see the module docstring)."""
    zoned = _use_zone_hints(endpoints, zone)
    chosen = tuple(e for e in endpoints if e.ready and (not zoned or zone in e.zones))
    if chosen:
        return chosen
    return tuple(e for e in endpoints if e.serving and e.terminating)


def local_endpoints(endpoints: list[Endpoint], node: str) -> tuple[Endpoint, ...]:
    """The endpoints for traffic policy Local: this node's ready ones, else its
    serving-terminating ones."""
    local = [e for e in endpoints if e.node == node]
    ready = tuple(e for e in local if e.ready)
    if ready:
        return ready
    return tuple(e for e in local if e.serving and e.terminating)


def has_usable(endpoints: list[Endpoint]) -> bool:
    """Any endpoint anywhere that traffic could use (ready, or serving and terminating)."""
    return any(e.ready or (e.serving and e.terminating) for e in endpoints)


def select(endpoints: list[Endpoint], *, local: bool, node: str, zone: str = "") -> Selection:
    """The endpoints for one kind of traffic: `local` when its traffic policy is Local."""
    chosen = local_endpoints(endpoints, node) if local else cluster_endpoints(endpoints, zone)
    return Selection(chosen, has_usable(endpoints))


def address_family(ip: str) -> str:
    """The EndpointSlice addressType matching a frontend address."""
    return _family(ip)
