"""Backends: a Service port -> the ready pod endpoints behind it, picked round robin.

As ingress-nginx, the controller proxies to pod addresses directly (endpoint IP and the
EndpointSlice's port for the Service port), not to the ClusterIP: connections are spread
by the controller and keep-alive pools go to each pod. An endpoint is ready unless its
`conditions.ready` is false (absent means ready, as the EndpointSlice API says); a
terminating endpoint is not ready. An ExternalName Service is proxied to its external
name at the Service port's targetPort.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from minikube_py.client import Lister
from proxy.ingress.routes import ServiceBackend

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int

    @property
    def authority(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


@dataclass
class Upstream:
    """The endpoints of one backend, with a round-robin cursor."""

    name: str
    endpoints: list[Endpoint]
    _cursor: itertools.count = field(default_factory=itertools.count, repr=False)  # type: ignore[type-arg]

    def pick(self, tries: int = 1) -> list[Endpoint]:
        """The next `tries` distinct endpoints in round-robin order (fewer if there are fewer)."""
        if not self.endpoints:
            return []
        start = next(self._cursor)
        count = min(tries, len(self.endpoints))
        return [self.endpoints[(start + i) % len(self.endpoints)] for i in range(count)]


def service_port(service: Obj, port: int | str) -> Obj | None:
    """The Service port a backend names (by number, or by name)."""
    for candidate in (service.get("spec") or {}).get("ports") or []:
        if isinstance(port, int) and candidate.get("port") == port:
            return candidate
        if isinstance(port, str) and port and candidate.get("name") == port:
            return candidate
    return None


def ready_endpoints(slices: list[Obj], port_name: str) -> list[Endpoint]:
    """Ready addresses with the slice port named like the Service port, in a stable order."""
    found: dict[Endpoint, None] = {}
    for eps in slices:
        if eps.get("addressType") not in ("IPv4", "IPv6"):
            continue
        numbers = [p.get("port") for p in eps.get("ports") or []
                   if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == "TCP" and p.get("port")]
        if not numbers:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in (endpoint.get("addresses") or [])[:1]:
                found[Endpoint(address, int(numbers[0]))] = None
    return sorted(found, key=lambda e: (e.address, e.port))


def resolve(backend: ServiceBackend, services: Lister, slices: Lister) -> list[Endpoint]:
    """The ready endpoints of a backend now (empty: no such Service, port, or ready pod)."""
    service = services.get(backend.name, backend.namespace)
    if service is None:
        return []
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return _external_name(spec, service_port(service, backend.port), backend.port)
    port = service_port(service, backend.port)
    if port is None:
        return []
    mine = slices.list(backend.namespace, {SERVICE_NAME_LABEL: backend.name})
    return ready_endpoints(mine, port.get("name") or "")


def _external_name(spec: Obj, port: Obj | None, wanted: int | str) -> list[Endpoint]:
    """ingress-nginx proxies to the external name at the Service port's targetPort (a
    numeric backend port naming no Service port is used as it is)."""
    host = spec.get("externalName")
    number = (port.get("targetPort") or port.get("port")) if port else wanted
    if not host or not isinstance(number, int):
        return []
    return [Endpoint(host, number)]


def build_upstreams(backends: set[ServiceBackend], services: Lister, slices: Lister,
                    previous: dict[str, Upstream] | None = None) -> dict[str, Upstream]:
    """Upstreams for every backend of the routing table; one whose endpoints did not
    change keeps its round-robin cursor."""
    previous = previous or {}
    out: dict[str, Upstream] = {}
    for backend in backends:
        endpoints = resolve(backend, services, slices)
        old = previous.get(backend.upstream_name)
        out[backend.upstream_name] = old if old is not None and old.endpoints == endpoints else \
            Upstream(backend.upstream_name, endpoints)
    return out
