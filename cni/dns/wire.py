"""The DNS wire format, as much of it as an authoritative cluster DNS needs: read a query,
encode resource records, and assemble a response that fits the client's size.

Why by hand instead of dnspython on every query: parsing a message into objects and
rendering one back costs tens of microseconds each in Python, and the server's budget
is a dict lookup per query. A query is only a header, one question and maybe an EDNS0
OPT record, so reading it is a short loop over labels. Answers are stored already
encoded (cni/dns/records.py), each RR starting with the two-byte compression pointer
0xC00C to the question's name: the answer then repeats the name exactly as the client
spelt it (DNS is case-insensitive, answers keep the query's case, as CoreDNS's do).
dnspython is used where speed does not matter: turning text names into wire names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.name

# Types, classes and codes (RFC 1035, 2782, 3596, 6891).
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, AXFR, IXFR, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 252, 251, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # extended rcode: the high 8 bits travel in the OPT record
RCODE_NAMES = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", NXDOMAIN: "NXDOMAIN",
               NOTIMP: "NOTIMP", REFUSED: "REFUSED", BADVERS: "BADVERS"}

QR, AA, TC, RD, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0020, 0x0010
OPCODE_MASK = 0x7800
DO_BIT = 0x8000  # in the OPT record's TTL field

MIN_UDP_SIZE = 512  # RFC 1035: what a client without EDNS0 accepts over UDP
MAX_MSG_SIZE = 65535  # TCP
QUESTION_POINTER = b"\xc0\x0c"  # the question's name always starts at offset 12

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength


class FormatError(ValueError):
    """The datagram is not a query we can read (FORMERR, or dropped if no header)."""


@dataclass(slots=True)
class Query:
    """What the server needs from a query. `name` is the question name in wire form,
    lower-cased: the key of every index. `question` is the question section as sent,
    echoed back in the response."""

    id: int
    flags: int
    name: bytes
    qtype: int
    question: bytes
    edns: bool = False
    udp_size: int = MIN_UDP_SIZE
    edns_version: int = 0
    do: bool = False


def parse_query(data: bytes) -> Query:
    """Read a query; FormatError for anything malformed (no compression is allowed in
    a question name, and there must be exactly one question)."""
    if len(data) < 12:
        raise FormatError("shorter than a header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if qdcount != 1:
        raise FormatError(f"{qdcount} questions")
    end = _name_end(data, 12)
    if end + 4 > len(data):
        raise FormatError("truncated question")
    qtype = (data[end] << 8) | data[end + 1]
    query = Query(ident, flags, data[12:end].lower(), qtype, data[12:end + 4])
    if arcount and not ancount and not nscount:
        _read_opt(data, end + 4, query)
    return query


def _name_end(data: bytes, pos: int) -> int:
    """Offset just past an uncompressed name starting at `pos`."""
    start, size = pos, len(data)
    while True:
        if pos >= size:
            raise FormatError("truncated name")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0:
            raise FormatError("compressed or extended label in the question")
        pos += length + 1
    if pos - start > 255:
        raise FormatError("name longer than 255 octets")
    return pos


def _read_opt(data: bytes, pos: int, query: Query) -> None:
    """The OPT pseudo-RR, if the first additional record is one (RFC 6891 6.1)."""
    if pos + 11 > len(data) or data[pos] != 0:
        return
    rtype, rclass, ttl, _ = _RR_FIXED.unpack_from(data, pos + 1)
    if rtype != OPT:
        return
    query.edns = True
    query.udp_size = max(MIN_UDP_SIZE, rclass)
    query.edns_version = (ttl >> 16) & 0xFF
    query.do = bool(ttl & DO_BIT)


def query_id(data: bytes) -> int | None:
    return (data[0] << 8) | data[1] if len(data) >= 2 else None


# -- encoding ---------------------------------------------------------------------------


def name_wire(text: str) -> bytes:
    """`web-0.nginx.default.svc.cluster.local` -> wire form (ValueError if not a valid name).
    Kubernetes names are plain ASCII labels, which take the fast path; anything with
    escapes goes through dnspython."""
    text = text.rstrip(".")
    if "\\" not in text and text.isascii():
        out = bytearray()
        for label in text.split(".") if text else ():
            if not 0 < len(label) < 64:
                raise ValueError(f"not a DNS name: {text!r}: labels are 1 to 63 octets")
            out.append(len(label))
            out += label.encode()
        out.append(0)
        if len(out) > 255:
            raise ValueError(f"not a DNS name: {text!r}: longer than 255 octets")
        return bytes(out)
    try:
        return dns.name.from_text(text + ".").to_wire()
    except dns.exception.DNSException as exc:
        raise ValueError(f"not a DNS name: {text!r}: {exc}") from exc


def name_text(wire: bytes) -> str:
    """Wire form -> `a.b.c.` (for logs and metrics)."""
    return dns.name.from_wire(wire, 0)[0].to_text()


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    """One encoded resource record; `owner` is a wire name or QUESTION_POINTER."""
    return owner + _RR_FIXED.pack(rtype, CLASS_IN, ttl, len(rdata)) + rdata


def srv_rdata(priority: int, weight: int, port: int, target: bytes) -> bytes:
    return struct.pack("!HHH", priority, weight, port) + target  # RFC 2782: target never compressed


def soa_rdata(mname: bytes, rname: bytes, serial: int, refresh: int, retry: int, expire: int, minimum: int) -> bytes:
    return mname + rname + struct.pack("!IIIII", serial & 0xFFFFFFFF, refresh, retry, expire, minimum)


def txt_rdata(*strings: str) -> bytes:
    out = b""
    for text in strings:
        raw = text.encode()
        if len(raw) > 255:
            raise ValueError("a TXT character-string holds at most 255 octets")
        out += bytes([len(raw)]) + raw
    return out


def opt_rr(udp_size: int, do: bool, extended_rcode: int = 0) -> bytes:
    ttl = (extended_rcode << 24) | (DO_BIT if do else 0)
    return b"\x00" + _RR_FIXED.pack(OPT, udp_size, ttl, 0)


# -- responses ----------------------------------------------------------------------------


def max_size(query: Query, tcp: bool) -> int:
    if tcp:
        return MAX_MSG_SIZE
    return min(query.udp_size, MAX_MSG_SIZE) if query.edns else MIN_UDP_SIZE


def response(query: Query, rcode: int, answer: list[bytes] | tuple[bytes, ...] = (),
              authority: list[bytes] | tuple[bytes, ...] = (), extra: list[bytes] | tuple[bytes, ...] = (), *,
              authoritative: bool = True, limit: int = MIN_UDP_SIZE) -> bytes:
    """The response to `query`. What does not fit in `limit` octets is left out, answers
    kept first, then authority, then additional, and TC is set if anything was left
    out (as miekg/dns's Msg.Truncate does for CoreDNS). EDNS0 is answered in kind."""
    flags = QR | (query.flags & (OPCODE_MASK | RD | CD)) | (AA if authoritative else 0)
    opt = b""
    if query.edns:
        opt = opt_rr(query.udp_size, query.do, rcode >> 4)
    flags |= rcode & 0xF
    room = limit - 12 - len(query.question) - len(opt)
    sections, truncated = [], False
    for records in (answer, authority, extra):
        kept = []
        for record in records:
            if truncated or len(record) > room:
                truncated = True
                break
            kept.append(record)
            room -= len(record)
        sections.append(kept)
    if truncated:
        flags |= TC
    an, ns, ar = sections
    header = _HEADER.pack(query.id, flags, 1, len(an), len(ns), len(ar) + (1 if opt else 0))
    return b"".join((header, query.question, *an, *ns, *ar, opt))


def error_response(data: bytes, rcode: int) -> bytes | None:
    """A bare error for a query we could not read (FORMERR, NOTIMP): the header
    echoed, no sections; None if there is not even a header to answer."""
    if len(data) < 12:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    return _HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | rcode, 0, 0, 0, 0)
