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
- on an edge (external) request every x-envoy-* header is removed, so a client cannot
  steer internal behaviour (retry policy, timeouts...) by sending them.

Responses (`response_headers`): hop-by-hop removal likewise (and content-length, which
the codec writes from the framing it chooses), `server: envoy` set
(Envoy's server_header_transformation OVERWRITE default) and
`x-envoy-upstream-service-time` (milliseconds from the request's start to the upstream's
response head) added.
"""

from __future__ import annotations

import uuid

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te")
)
SERVER = b"envoy"


def _connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Header names listed in Connection (they are hop-by-hop too, RFC 9110 7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    tokens.discard(b"")
    return frozenset(tokens)


def request_headers(
    headers: Headers,
    *,
    remote_address: str,
    scheme: bytes = b"http",
    edge: bool = True,
    upgrade: bool = False,
) -> Headers:
    """The headers to send upstream for a downstream request's `headers`."""
    tokens = _connection_tokens(headers) if upgrade or _has(headers, b"connection") else ()
    out: Headers = []
    xff: bytes | None = None
    request_id = False
    keep_te = False
    for name, value in headers:
        if name in HOP_BY_HOP or name in tokens:
            if name == b"te" and value.strip().lower() == b"trailers":
                keep_te = True
            elif upgrade and name == b"upgrade":
                out.append((name, value))
            continue
        if name == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
            continue
        if name == b"x-forwarded-proto":
            continue
        if edge and name.startswith(b"x-envoy-"):
            continue
        if name == b"x-request-id":
            request_id = True
        out.append((name, value))
    if keep_te:
        out.append((b"te", b"trailers"))
    if upgrade:
        out.append((b"connection", b"upgrade"))
    addr = remote_address.encode()
    out.append((b"x-forwarded-for", addr if xff is None else xff + b", " + addr))
    out.append((b"x-forwarded-proto", scheme))
    if not request_id:
        out.append((b"x-request-id", str(uuid.uuid4()).encode()))
    return out


def response_headers(headers: Headers, *, service_time_ms: int | None = None, upgrade: bool = False) -> Headers:
    """The headers to send downstream for an upstream response's `headers`."""
    tokens = _connection_tokens(headers) if _has(headers, b"connection") else ()
    out: Headers = []
    for name, value in headers:
        if name in HOP_BY_HOP or name in tokens:
            if upgrade and name == b"upgrade":
                out.append((name, value))
            continue
        if name == b"server" or name == b"content-length":
            continue  # content-length: the codec frames the body (http1.Stream.respond_head)
        out.append((name, value))
    if upgrade:
        out.append((b"connection", b"upgrade"))
    out.append((b"server", SERVER))
    if service_time_ms is not None:
        out.append((b"x-envoy-upstream-service-time", b"%d" % service_time_ms))
    return out


def get(headers: Headers, name: bytes) -> bytes | None:
    """The first value of `name` (lower-case), or None."""
    for n, v in headers:
        if n == name:
            return v
    return None


def _has(headers: Headers, name: bytes) -> bool:
    for n, _ in headers:
        if n == name:
            return True
    return False


def serialize(headers: Headers) -> bytes:
    """`name: value\\r\\n` lines, joined once."""
    return b"".join([b"%s: %s\r\n" % pair for pair in headers])
