"""Header rewriting between the downstream and the upstream, as Envoy's HTTP connection
manager does it for an edge proxy with `use_remote_address: true`.

Headers are lists of (name, value) byte pairs with lower-cased names, kept in arrival
order: a proxy must preserve order and repeated names, and a list is cheaper to build and
walk than a dict on the hot path (one pass per message, no per-header objects).

Requests (`request_headers`):
- hop-by-hop headers are dropped: connection, keep-alive, proxy-connection, transfer-
  encoding (the body is re-framed by the codec), upgrade (kept for an upgrade request,
  with `connection: upgrade`), te (except `te: trailers`), and every header the
  connection header names;
- use_remote_address semantics: the downstream peer's address is appended to
  x-forwarded-for (it is the trusted client address for this hop);
  x-forwarded-proto is set to the downstream scheme (overwritten, as an edge Envoy does);
- x-request-id is kept when present and a UUID4 is generated when absent;
- on an external request (`edge=True`) every x-envoy-* header is removed, so a client
  cannot steer internal behaviour (retry policy, timeouts...) by sending them, and
  x-envoy-external-address is set to the client's address. Envoy calls a request
  internal when the client address is RFC 1918 / loopback / unique-local (`is_internal`)
  and then keeps x-envoy-* and adds `x-envoy-internal: true`; the caller decides, e.g.
  `edge=not is_internal(peer)` to match Envoy exactly, `edge=True` to trust no one.

Responses (`response_headers`): hop-by-hop removal likewise (and content-length, which
the codec writes from the framing it chooses), `server: envoy` set
(Envoy's server_header_transformation OVERWRITE default) and
`x-envoy-upstream-service-time` (milliseconds from the request's start to the upstream's
response head) added.
"""

from __future__ import annotations

import ipaddress
import random

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
# names request_headers treats specially: one set test per header on the hot path
_REQUEST_SPECIAL = HOP_BY_HOP | {b"x-forwarded-for", b"x-forwarded-proto", b"x-request-id"}
# names an upstream response's parser keeps out of the header list (framing, hop-by-hop)
RESPONSE_FRAMING = HOP_BY_HOP | {b"content-length", b"server"}
_CONNECTION_OPTIONS = frozenset((b"keep-alive", b"close", b"upgrade", b""))
SERVER = b"envoy"
_UUID_VERSION_BITS = (4 << 76) | (2 << 62)  # version 4, RFC 4122 variant
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))


def request_id() -> bytes:
    """A random UUID4 as text (Envoy's x-request-id), without uuid.UUID's overhead."""
    h = b"%032x" % (random.getrandbits(128) & _UUID_CLEAR | _UUID_VERSION_BITS)
    return b"%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def is_internal(address: str) -> bool:
    """RFC 1918, loopback or unique-local: what Envoy treats as an internal client."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return ip.is_loopback or any(ip in net for net in _RFC1918)
    return ip.is_loopback or ip in _UNIQUE_LOCAL


_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def connection_tokens(value: bytes) -> frozenset[bytes]:
    """Header names a Connection value lists beyond its options (they are hop-by-hop too)."""
    return frozenset(t.strip().lower() for t in value.split(b",")) - _CONNECTION_OPTIONS


def request_headers(
    headers: Headers,
    *,
    remote_address: str | bytes,
    scheme: bytes = b"http",
    edge: bool = True,
    upgrade: bool = False,
    generate_request_id: bool = True,
) -> Headers:
    """The headers to send upstream for a downstream request's `headers` (an x-request-id
    is added when absent unless the connection manager says generate_request_id false)."""
    out: Headers = []
    append = out.append
    xff: bytes | None = None
    has_request_id = False
    tokens: frozenset[bytes] = frozenset()
    for pair in headers:
        name = pair[0]
        if name in _REQUEST_SPECIAL:
            value = pair[1]
            if name == b"x-request-id":
                has_request_id = True
                append(pair)
            elif name == b"x-forwarded-for":
                xff = value if xff is None else xff + b", " + value
            elif name == b"connection":
                tokens = tokens | connection_tokens(value)
            elif name == b"te":
                if value.strip().lower() == b"trailers":
                    append((b"te", b"trailers"))
            elif name == b"upgrade" and upgrade:
                append(pair)
        elif name.startswith(b"x-envoy-") and (edge or name == b"x-envoy-internal"):
            continue
        else:
            append(pair)
    if tokens:
        out = [pair for pair in out if pair[0] not in tokens]
        append = out.append
    if upgrade:
        append((b"connection", b"upgrade"))
    addr = remote_address if isinstance(remote_address, bytes) else remote_address.encode()
    append((b"x-forwarded-for", addr if xff is None else xff + b", " + addr))
    append((b"x-forwarded-proto", scheme))
    if edge:
        append((b"x-envoy-external-address", addr))
    else:
        append((b"x-envoy-internal", b"true"))
    if not has_request_id and generate_request_id:
        append((b"x-request-id", request_id()))
    return out


def response_headers(headers: Headers, *, service_time_ms: int | None = None, upgrade: bool = False) -> Headers:
    """The headers to send downstream for an upstream response's `headers`."""
    tokens: frozenset[bytes] = frozenset()
    upgrade_value: bytes | None = None
    out: Headers = []
    for pair in headers:
        name = pair[0]
        if name in RESPONSE_FRAMING:  # content-length too: the codec frames the body
            if name == b"connection":
                tokens = tokens | connection_tokens(pair[1])
            elif name == b"upgrade":
                upgrade_value = pair[1]
            continue
        out.append(pair)
    return finish_response_headers(out, tokens=tokens, service_time_ms=service_time_ms,
                                   upgrade=upgrade_value if upgrade else None)


def finish_response_headers(headers: Headers, *, tokens: frozenset[bytes] = frozenset(),
                            service_time_ms: int | None = None, upgrade: bytes | None = None) -> Headers:
    """Complete response headers already stripped of RESPONSE_FRAMING names (the upstream
    parser drops those as it reads): names the connection header listed, the upgrade
    pair of a 101, `server: envoy` and x-envoy-upstream-service-time."""
    if tokens:
        headers = [pair for pair in headers if pair[0] not in tokens]
    if upgrade is not None:
        headers.append((b"upgrade", upgrade))
        headers.append((b"connection", b"upgrade"))
    headers.append((b"server", SERVER))
    if service_time_ms is not None:
        headers.append((b"x-envoy-upstream-service-time", b"%d" % service_time_ms))
    return headers


def get(headers: Headers, name: bytes) -> bytes | None:
    """The first value of `name` (lower-case), or None."""
    for n, v in headers:
        if n == name:
            return v
    return None


def serialize(headers: Headers) -> bytes:
    """`name: value\\r\\n` lines, joined once."""
    return b"\r\n".join(map(b": ".join, headers)) + b"\r\n" if headers else b""
