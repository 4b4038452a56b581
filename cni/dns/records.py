"""What DNS names one Service gives, as CoreDNS's kubernetes plugin answers them.

Pure: a Service and its EndpointSlices in, encoded records per (name, type) out. The
index (cni/dns/zone.py) calls this whenever the Service or one of its slices changes,
so a query never builds anything. The rules follow the Kubernetes DNS specification
and CoreDNS's reading of it (plugin/kubernetes: findServices, endpointHostname, and
plugin/backend_lookup.go for how A, AAAA and SRV answers are made from "services"):

    <svc>.<ns>.svc.<zone>              ClusterIP: A/AAAA of spec.clusterIPs; headless: the
                                       ready endpoints' addresses (none ready: no name)
    _<port>._<proto>.<svc>...          named ports only: SRV, and A/AAAA as the line above
    <hostname>.<svc>...                an endpoint (any Service type): its addresses; the
                                       hostname is endpoint.hostname or the dashed IP
    SRV                                priority 0, weight floor(100/n) over the n
                                       (address, port) pairs, target the Service name
                                       (ClusterIP) or the endpoint name (headless), the
                                       targets' addresses in the additional section
    ExternalName                       CNAME spec.externalName (chased only inside the zone)

"Ready" is the slice's conditions.ready (unset counts as ready), or any endpoint when
the Service sets publishNotReadyAddresses. A name that exists answers other types with
no data (NOERROR); a name that is absent is NXDOMAIN.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cni.dns import wire

log = logging.getLogger("cni.dns")

TTL = 5  # CoreDNS kubernetes plugin's default `ttl`
NO_PORT = -1  # CoreDNS's sentinel for a slice without ports: addresses yes, SRV no

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RRSet:
    """The answer for one (name, type). `answer` RRs start with the pointer to the
    question's name. `chase` is the lower-cased wire name of a CNAME target inside the
    cluster zone, whose own answer the server appends at query time."""

    answer: tuple[bytes, ...] = ()
    extra: tuple[bytes, ...] = ()
    chase: bytes | None = None


NODATA = RRSet()
Node = dict[int, RRSet]  # by query type; a type not in it is answered NODATA


@dataclass
class ServiceRecords:
    """Everything one Service contributes: names, and the address -> name pairs PTR
    queries need (cluster IPs first, endpoints second, as CoreDNS's reverse lookup)."""

    names: dict[bytes, Node] = field(default_factory=dict)
    cluster_ips: dict[str, bytes] = field(default_factory=dict)  # address -> Service name
    endpoint_ptrs: dict[str, list[bytes]] = field(default_factory=dict)  # address -> endpoint names


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    port: int
    protocol: str  # lower case, as in _tcp


@dataclass(frozen=True, slots=True)
class Entry:
    """One of CoreDNS's msg.Service values: an address, a port, and the SRV target."""

    ip: str
    port: int
    target: str


# -- reading the objects ----------------------------------------------------------------


def _ports(raw: Iterable[Obj] | None) -> list[Port]:
    ports = []
    for p in raw or []:
        number = p.get("port")
        ports.append(Port(str(p.get("name") or ""), int(number) if number is not None else NO_PORT,
                          str(p.get("protocol") or "TCP").lower()))
    return ports or [Port("", NO_PORT, "")]


def endpoint_hostname(ip: str, hostname: str | None) -> str:
    """endpoint.hostname, else the address with '.' or ':' made '-' (CoreDNS's
    endpointHostname without endpoint_pod_names)."""
    if hostname:
        return hostname
    return ip.replace(".", "-") if "." in ip else ip.replace(":", "-")


def ready_endpoints(slices: Iterable[Obj], publish_not_ready: bool) -> list[tuple[str, str, list[Port]]]:
    """(ip, hostname, ports of its slice) for every address of a ready endpoint."""
    found = []
    for slice_obj in slices:
        if slice_obj.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices carry no addresses CoreDNS serves
        ports = _ports(slice_obj.get("ports"))
        for endpoint in slice_obj.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            if ready is False and not publish_not_ready:
                continue
            for ip in endpoint.get("addresses") or []:
                found.append((ip, endpoint_hostname(ip, endpoint.get("hostname")), ports))
    return found


@functools.lru_cache(maxsize=65536)
def _packed(ip: str) -> bytes:
    """The address in network order (4 or 16 octets), b"" if `ip` is not an address."""
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError:
        return b""


def _family(ip: str) -> int:
    return {4: 4, 16: 6}.get(len(_packed(ip)), 0)


# -- rendering CoreDNS's answers from entries ------------------------------------------------


def _address_rr(owner: bytes, ip: str) -> bytes | None:
    packed = _packed(ip)
    if len(packed) == 4:
        return wire.rr(owner, wire.A, TTL, packed)
    if len(packed) == 16:
        return wire.rr(owner, wire.AAAA, TTL, packed)
    return None


def _addresses(entries: list[Entry], version: int) -> RRSet:
    seen: dict[str, bytes] = {}
    for e in entries:
        if e.ip not in seen and _family(e.ip) == version:
            record = _address_rr(wire.QUESTION_POINTER, e.ip)
            if record is not None:
                seen[e.ip] = record
    return RRSet(tuple(seen.values()))


def _srv(entries: list[Entry], targets: dict[str, bytes]) -> RRSet:
    """SRV as plugin.SRV: one weight for all (priority 0), records deduplicated by
    (target, port), additional addresses by (target, address)."""
    if not entries:
        return NODATA
    weight = max(1, math.floor(100.0 / (100 * len(entries)) * 100))
    answer: dict[tuple[str, int], bytes] = {}
    extra: dict[tuple[str, str], bytes] = {}
    for e in entries:
        if e.port == NO_PORT:
            continue
        target = targets[e.target]
        answer.setdefault((e.target, e.port),
                          wire.rr(wire.QUESTION_POINTER, wire.SRV, TTL, wire.srv_rdata(0, weight, e.port, target)))
        if (e.target, e.ip) not in extra:
            record = _address_rr(target, e.ip)
            if record is not None:
                extra[(e.target, e.ip)] = record
    return RRSet(tuple(answer.values()), tuple(extra.values()))


class _Builder:
    """Collects entries per name, then renders each name's node."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Entry]] = {}
        self.targets: dict[str, bytes] = {}

    def add(self, name: str, entry: Entry) -> None:
        self.entries.setdefault(name, []).append(entry)

    def wire(self, name: str) -> bytes | None:
        if name not in self.targets:
            try:
                self.targets[name] = wire.name_wire(name)
            except ValueError as exc:
                log.warning("%s", exc)
                return None
        return self.targets[name]

    def render(self, records: ServiceRecords) -> None:
        for name, entries in self.entries.items():
            owner = self.wire(name)
            if owner is None or any(self.wire(e.target) is None for e in entries):
                continue
            records.names[owner.lower()] = {wire.A: _addresses(entries, 4), wire.AAAA: _addresses(entries, 6),
                                            wire.SRV: _srv(entries, self.targets)}


# -- one Service ----------------------------------------------------------------------------


def service_records(service: Obj, slices: list[Obj], zone: str) -> ServiceRecords:
    """The names `service` (with these EndpointSlices) gives in cluster domain `zone`."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    base = f"{meta.get('name', '')}.{meta.get('namespace', '')}.svc.{zone}".lower()
    records = ServiceRecords()
    if spec.get("type") == "ExternalName":
        _external_name(records, base, str(spec.get("externalName") or ""), zone)
        return records
    builder = _Builder()
    endpoints = ready_endpoints(slices, bool(spec.get("publishNotReadyAddresses")))
    if spec.get("clusterIP") == "None":
        for ip, hostname, ports in endpoints:
            _add_ports(builder, base, ip, ports, f"{hostname}.{base}")
    else:
        cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
        for port in _ports(spec.get("ports")):
            for ip in cluster_ips:
                _add_ports(builder, base, ip, [port], base)
        base_wire = builder.wire(base)
        if base_wire is not None:
            records.cluster_ips = {ip: base_wire for ip in cluster_ips}
    for ip, hostname, ports in endpoints:
        endpoint_name = f"{hostname}.{base}"
        for port in ports:
            builder.add(endpoint_name, Entry(ip, port.port, endpoint_name))
        name_wire = builder.wire(endpoint_name)
        if name_wire is not None:
            names = records.endpoint_ptrs.setdefault(ip, [])
            if name_wire not in names:
                names.append(name_wire)
    builder.render(records)
    return records


def _add_ports(builder: _Builder, base: str, ip: str, ports: list[Port], target: str) -> None:
    """Entries for the Service name and, for named ports, _<port>._<proto>.<service>."""
    for port in ports:
        entry = Entry(ip, port.port, target)
        builder.add(base, entry)
        if port.name and port.protocol:
            builder.add(f"_{port.name}._{port.protocol}.{base}".lower(), entry)


def _external_name(records: ServiceRecords, base: str, external: str, zone: str) -> None:
    """CNAME to spec.externalName; an address there gives no record (CoreDNS keeps
    only names). Inside the cluster zone the target is chased at query time."""
    if not external or _family(external):
        return
    try:
        owner, target = wire.name_wire(base), wire.name_wire(external)
    except ValueError as exc:
        log.warning("ExternalName %s: %s", base, exc)
        return
    cname = wire.rr(wire.QUESTION_POINTER, wire.CNAME, TTL, target)
    lower = target.lower()
    inside = lower.endswith(wire.name_wire(zone).lower())
    if lower == owner.lower():  # x CNAME x: CoreDNS drops the record for address queries
        address = NODATA
    else:
        address = RRSet((cname,), chase=lower if inside else None)
    records.names[owner.lower()] = {wire.A: address, wire.AAAA: address, wire.CNAME: RRSet((cname,))}
