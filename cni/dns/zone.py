"""The cluster zone: every name the server answers, kept as one dict, and the query path.

Shape: `names` maps a lower-cased wire name to its Node (type -> encoded RRSet). Each
Service's names come from cni/dns/records.py and are swapped in whole when the Service
or its slices change; namespaces add `<ns>.svc` and `<ns>.pod`; the apex adds NS and the
`ns.dns` name. Reverse names (PTR of cluster IPs and endpoint addresses) are a second
dict, recomputed for the addresses a change touched. A query is then one or two dict
lookups plus assembling bytes.

What is answered and how, as CoreDNS with kubeadm's Corefile minus `forward` (the
server must never send a query off the machine):

    .:53 { kubernetes <domain> in-addr.arpa ip6.arpa { pods insecure; fallthrough
           in-addr.arpa ip6.arpa; ttl 5 } }

  - a name in the cluster zone: its records (AA), NOERROR without records when the name
    exists but not with that type, NXDOMAIN otherwise; both negative answers carry the
    zone's SOA (TTL and minimum 5, serial = time of the last change) in the authority
    section. Until the caches have synced, NXDOMAIN is SERVFAIL instead.
  - the apex answers SOA and NS (NS: the kube-dns Service name, its address as glue).
  - CoreDNS quirks kept: TXT answers only `dns-version.<zone>` ("1.1.0", TTL 28800) and
    NOERROR/no data for every other name, existing or not; pod names
    `a-b-c-d.<ns>.pod.<zone>` answer the dashed address for any existing namespace
    (`pods insecure`; `verified` needs a pod with that IP, `disabled` none).
  - reverse zones: PTR for a known address; anything else falls through to the end of
    the plugin chain, which is SERVFAIL. So is every name outside these zones.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cni.dns import wire
from cni.dns.records import NODATA, TTL, Node, RRSet, ServiceRecords

SCHEMA_VERSION = "1.1.0"  # what CoreDNS's kubernetes plugin reports in dns-version TXT
SCHEMA_TTL = 28800
MAX_CHASE = 8  # CNAMEs followed inside the zone, as CoreDNS's limit
POD_MODES = ("insecure", "verified", "disabled")
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    rcode: int
    plugin: str  # who answered, for coredns_dns_responses_total{plugin}


class ClusterZone:
    """All the records of cluster domain `domain` and the answer to a query."""

    def __init__(self, domain: str, dns_ips: list[str], *, pods: str = "insecure") -> None:
        if pods not in POD_MODES:
            raise ValueError(f"pods mode must be one of {', '.join(POD_MODES)}, not {pods!r}")
        self.domain = domain.strip(".").lower()
        self.zone = wire.name_wire(self.domain).lower()
        self.reverse = tuple(wire.name_wire(z) for z in REVERSE_ZONES)
        self.pods = pods
        self.dns_ips = list(dns_ips)
        self.synced = False
        self.names: dict[bytes, Node] = {}
        self.ptr: dict[bytes, RRSet] = {}
        self.serial = int(time.time())
        self._services: dict[str, ServiceRecords] = {}
        self._addresses: dict[str, set[str]] = {}  # ip -> keys of Services naming it
        self._namespaces: set[str] = set()
        self.pod_exists: Callable[[str, str], bool] = lambda namespace, ip: False  # verified mode's pod cache
        self._txt = {wire.name_wire(f"dns-version.{self.domain}").lower():
                     RRSet((wire.rr(wire.QUESTION_POINTER, wire.TXT, SCHEMA_TTL, wire.txt_rdata(SCHEMA_VERSION)),))}
        self._pod_suffix = wire.name_wire(f"pod.{self.domain}").lower()
        self._static_names()
        self._soa_tail = b""
        self._touch()

    # -- keeping the index ------------------------------------------------------------------

    def _static_names(self) -> None:
        """The apex (NS), `svc.<zone>`, `pod.<zone>` and `ns.dns.<zone>`."""
        ns_target = wire.name_wire(f"kube-dns.kube-system.svc.{self.domain}")
        ns_extra = tuple(r for r in (_address(ns_target, ip) for ip in self.dns_ips) if r)
        ns_record = wire.rr(wire.QUESTION_POINTER, wire.NS, TTL, ns_target)
        self.names[self.zone] = {wire.NS: RRSet((ns_record,), ns_extra)}
        for label in ("svc", "pod"):
            self.names[wire.name_wire(f"{label}.{self.domain}").lower()] = {}
        ns_name = {wire.A: RRSet(tuple(r for ip in self.dns_ips if ipaddress.ip_address(ip).version == 4
                                       for r in [_address(wire.QUESTION_POINTER, ip)] if r)),
                   wire.AAAA: RRSet(tuple(r for ip in self.dns_ips if ipaddress.ip_address(ip).version == 6
                                          for r in [_address(wire.QUESTION_POINTER, ip)] if r))}
        self.names[wire.name_wire(f"ns.dns.{self.domain}").lower()] = ns_name

    def _touch(self) -> None:
        """A change: new SOA serial (CoreDNS: the time the cache last changed)."""
        self.serial = max(self.serial + 1, int(time.time())) if self._soa_tail else self.serial
        mname = wire.name_wire(f"ns.dns.{self.domain}")
        rname = wire.name_wire(f"hostmaster.{self.domain}")
        rdata = wire.soa_rdata(mname, rname, self.serial, 7200, 1800, 86400, TTL)
        self._soa_tail = wire.rr(b"", wire.SOA, TTL, rdata)

    def set_service(self, key: str, records: ServiceRecords | None) -> None:
        """Replace what Service `key` (namespace/name) contributes; None removes it."""
        old = self._services.pop(key, None)
        before: set[str] = set()
        if old is not None:
            for name in old.names:
                self.names.pop(name, None)
            before = old.cluster_ips.keys() | old.endpoint_ptrs.keys()
        now: set[str] = set()
        if records is not None:
            self._services[key] = records
            self.names.update(records.names)
            now = records.cluster_ips.keys() | records.endpoint_ptrs.keys()
        for ip in before | now:
            owners = self._addresses.setdefault(ip, set())
            if ip in now:
                owners.add(key)
            else:
                owners.discard(key)
            self._reverse(ip)
        self._touch()

    def _reverse(self, ip: str) -> None:
        """PTR for `ip`: the Service with that cluster IP, else every endpoint name."""
        owners = self._addresses.get(ip) or set()
        try:
            name = wire.name_wire(ipaddress.ip_address(ip).reverse_pointer).lower()
        except ValueError:
            return
        targets: list[bytes] = []
        for key in sorted(owners):
            records = self._services[key]
            if ip in records.cluster_ips:
                targets = [records.cluster_ips[ip]]
                break
            targets += [t for t in records.endpoint_ptrs.get(ip, ()) if t not in targets]
        if not targets:
            self.ptr.pop(name, None)
            self._addresses.pop(ip, None)
            return
        self.ptr[name] = RRSet(tuple(wire.rr(wire.QUESTION_POINTER, wire.PTR, TTL, t) for t in targets))

    def set_namespaces(self, namespaces: set[str]) -> None:
        for ns in self._namespaces - namespaces:
            for label in ("svc", "pod"):
                self.names.pop(wire.name_wire(f"{ns}.{label}.{self.domain}").lower(), None)
        for ns in namespaces - self._namespaces:
            for label in ("svc", "pod"):
                self.names[wire.name_wire(f"{ns}.{label}.{self.domain}").lower()] = {}
        if namespaces != self._namespaces:
            self._namespaces = set(namespaces)
            self._touch()

    # -- answering ----------------------------------------------------------------------------

    def answer(self, query: wire.Query, limit: int) -> Reply:
        """The response to `query`, at most `limit` octets."""
        name, qtype = query.name, query.qtype
        node = self.names.get(name)
        if node is not None and qtype != wire.TXT and not (qtype == wire.SOA and name == self.zone):
            rrset = node.get(qtype, NODATA)
            if rrset.chase is not None:
                rrset = self._chase(rrset, qtype)
            if rrset.answer:
                return self._reply(query, wire.NOERROR, rrset.answer, (), rrset.extra, limit)
            return self._negative(query, wire.NOERROR, limit)
        if node is not None or self._inside(name, self.zone):
            return self._in_zone(query, node is not None, limit)
        if any(self._inside(name, z) for z in self.reverse):
            rrset = self.ptr.get(name) if qtype == wire.PTR else None
            if rrset is not None:
                return self._reply(query, wire.NOERROR, rrset.answer, (), (), limit)
        return Reply(wire.response(query, wire.SERVFAIL, authoritative=False, limit=limit), wire.SERVFAIL, "")

    def _in_zone(self, query: wire.Query, exists: bool, limit: int) -> Reply:
        qtype = query.qtype
        if qtype == wire.SOA and query.name == self.zone:
            soa = self._zone_pointer(query) + self._soa_tail
            return self._reply(query, wire.NOERROR, (soa,), (), (), limit)
        if qtype == wire.TXT:
            rrset = self._txt.get(query.name)
            if rrset is not None:
                return self._reply(query, wire.NOERROR, rrset.answer, (), (), limit)
            return self._negative(query, wire.NOERROR, limit)
        if exists:
            return self._negative(query, wire.NOERROR, limit)
        pod = self._pod(query.name, qtype)
        if pod is not None:
            if pod.answer:
                return self._reply(query, wire.NOERROR, pod.answer, (), (), limit)
            return self._negative(query, wire.NOERROR, limit)
        return self._negative(query, wire.NXDOMAIN if self.synced else wire.SERVFAIL, limit)

    def _chase(self, rrset: RRSet, qtype: int) -> RRSet:
        """CNAME + the target's addresses when the target is in the zone; CoreDNS drops
        the CNAME when the target has none."""
        records, target = list(rrset.answer), rrset.chase
        for _ in range(MAX_CHASE):
            node = self.names.get(target) if target is not None else None
            found = node.get(qtype, NODATA) if node is not None else NODATA
            if not found.answer:
                return NODATA
            records += [target + r[2:] for r in found.answer]
            if found.chase is None:
                return RRSet(tuple(records))
            target = found.chase
        return NODATA

    def _pod(self, name: bytes, qtype: int) -> RRSet | None:
        """`<a-b-c-d>.<ns>.pod.<zone>` (one more label in front is ignored, as CoreDNS's
        parser does): an RRSet, or None for NXDOMAIN."""
        if self.pods == "disabled" or not self._inside(name, self._pod_suffix):
            return None
        labels = _labels(name[:len(name) - len(self._pod_suffix)] + b"\x00")
        if len(labels) not in (2, 3):
            return None
        pod, namespace = labels[-2].decode(errors="replace"), labels[-1].decode(errors="replace")
        if namespace not in self._namespaces:
            return None
        text = pod.replace("-", ".") if pod.count("-") == 3 and "--" not in pod else pod.replace("-", ":")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
        if self.pods == "verified" and not self.pod_exists(namespace, str(ip)):
            return None
        wanted = wire.A if ip.version == 4 else wire.AAAA
        if qtype != wanted:
            return NODATA
        return RRSet((wire.rr(wire.QUESTION_POINTER, wanted, TTL, ip.packed),))

    # -- assembling ---------------------------------------------------------------------------

    def _zone_pointer(self, query: wire.Query) -> bytes:
        """Compression pointer to the zone's name inside the question (keeps its case)."""
        return struct.pack("!H", 0xC000 | (12 + len(query.name) - len(self.zone)))

    def _negative(self, query: wire.Query, rcode: int, limit: int) -> Reply:
        return self._reply(query, rcode, (), (self._zone_pointer(query) + self._soa_tail,), (), limit)

    @staticmethod
    def _reply(query: wire.Query, rcode: int, answer: tuple[bytes, ...], authority: tuple[bytes, ...],
               extra: tuple[bytes, ...], limit: int) -> Reply:
        return Reply(wire.response(query, rcode, answer, authority, extra, limit=limit), rcode, "kubernetes")

    @staticmethod
    def _inside(name: bytes, zone: bytes) -> bool:
        """Is wire name `name` equal to or under `zone` (on a label boundary)?"""
        if not name.endswith(zone):
            return False
        cut, pos = len(name) - len(zone), 0
        while pos < cut:
            pos += name[pos] + 1
        return pos == cut


def _labels(name: bytes) -> list[bytes]:
    labels, pos = [], 0
    while name[pos]:
        labels.append(name[pos + 1:pos + 1 + name[pos]])
        pos += name[pos] + 1
    return labels


def _address(owner: bytes, ip: str) -> bytes | None:
    address = ipaddress.ip_address(ip)
    return wire.rr(owner, wire.A if address.version == 4 else wire.AAAA, TTL, address.packed)
