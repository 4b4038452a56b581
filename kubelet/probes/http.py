"""httpGet probes: one GET over a fresh connection, judged and worded as the kubelet does.

Why not aiohttp's client: the kubelet's request and its failure messages are visible to
users and servers, and they are Go's net/http: exactly `Host`, `User-Agent:
kube-probe/<major>.<minor>`, `Accept: */*` and `Connection: close` (keep-alives and
compression off), no proxy, TLS without certificate checks; and failures read `Get
"http://10.0.0.5:8080/healthz": dial tcp 10.0.0.5:8080: connect: connection refused`.
A small HTTP/1.1 client makes those exact.

Judging (pkg/probe/http): 200 <= code < 400 succeeds; a 3xx the client did not follow is
a success with a warning; anything else fails with `HTTP probe failed with statuscode:
N` (never the body, which may hold secrets). Redirects are followed only to the same
host name (at most 10); a redirect elsewhere ends the chain. At most 10 KiB of the body
is read. The whole exchange, redirects included, must finish within timeoutSeconds.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from kubelet.probes.dial import DialError, abort, dial, is_ip, strerror
from kubelet.probes.spec import (
    FAILURE,
    MAX_OUTPUT,
    SUCCESS,
    WARNING,
    Outcome,
    go_quote,
    join_host_port,
    resolve_port,
)
from minikube_py.config import KUBERNETES_VERSION

_MAJOR, _MINOR = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
USER_AGENT = f"kube-probe/{_MAJOR}.{_MINOR}"
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEAD_LIMIT = 1 << 20
_AWAITING_HEADERS = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
_READING_BODY = "context deadline exceeded (Client.Timeout or context cancellation while reading body)"


@dataclass(frozen=True)
class HttpRequest:
    """What the prober will send: the URL, headers in Go's canonical form (Host is not
    among them) and the Host header override, if any."""

    url: str
    headers: tuple[tuple[str, str], ...]
    host: str | None = None


def canonical_header(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey: `x-custom-header` -> `X-Custom-Header`."""
    if not name or any(not (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def format_url(scheme: str, host: str, port: int, path: str) -> str:
    parts = urlsplit(path or "")
    escaped = quote(parts.path, safe="/!$&'()*+,;=:@%-._~")
    if escaped and not escaped.startswith("/"):
        escaped = "/" + escaped
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{join_host_port(host, port)}{escaped}{query}"


def build_request(action: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str) -> HttpRequest:
    """The request for an httpGet action (raises ProbeError for an unknown named port)."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    url = format_url(scheme, str(action.get("host") or pod_ip), resolve_port(action.get("port"), container),
                     str(action.get("path") or ""))
    headers: dict[str, list[str]] = {}
    for header in action.get("httpHeaders") or []:
        headers.setdefault(canonical_header(str(header.get("name", ""))), []).append(str(header.get("value", "")))
    headers.setdefault("User-Agent", [USER_AGENT])
    if "Accept" not in headers:
        headers["Accept"] = ["*/*"]
    elif headers["Accept"][0] == "":
        del headers["Accept"]
    host = (headers.pop("Host", None) or [""])[0] or None
    return HttpRequest(url, tuple((k, v) for k, vs in headers.items() for v in vs), host)


class _Failed(Exception):
    """The client's Do failed: `Get "<url>": <message>`."""


@dataclass
class _Response:
    url: str
    code: int
    headers: dict[str, str]  # lower-case names, first value
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        abort(self.writer)


async def http_probe(request: HttpRequest, timeout: float) -> Outcome:
    """Run one httpGet probe (pkg/probe/http DoHTTPProbe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    chain = _Chain(request.url)
    try:
        async with asyncio.timeout_at(deadline):
            response = await _do(request, chain)
    except _Failed as exc:
        return Outcome(FAILURE, str(exc))
    except TimeoutError:
        return Outcome(FAILURE, f"Get {go_quote(chain.url)}: {_AWAITING_HEADERS}")
    try:
        async with asyncio.timeout_at(deadline):
            body = await _read_body(response)
    except TimeoutError:
        return Outcome(FAILURE, "", _READING_BODY)
    except _Failed as exc:
        return Outcome(FAILURE, "", str(exc))
    finally:
        response.close()
    text = body.decode("utf-8", "replace")
    if 200 <= response.code < 400:
        if response.code >= 300:
            return Outcome(WARNING, f"Probe terminated redirects, Response body: {text}")
        return Outcome(SUCCESS, text)
    return Outcome(FAILURE, f"HTTP probe failed with statuscode: {response.code}")


@dataclass
class _Chain:
    """The URL being fetched (a redirect changes it; a timeout message names it)."""

    url: str


async def _do(request: HttpRequest, chain: _Chain) -> _Response:
    """net/http Client.Do with the kubelet's redirect checker."""
    url, host, via = request.url, request.host, 0
    first_host = urlsplit(url).hostname
    while True:
        chain.url = url
        response = await _exchange(url, request.headers, host)
        location = response.headers.get("location")
        if response.code not in REDIRECTS or not location:
            return response
        target = urljoin(url, location)
        if urlsplit(target).hostname != first_host:
            return response  # http.ErrUseLastResponse: the 3xx is the answer
        response.close()
        via += 1
        if via >= MAX_REDIRECTS:
            raise _Failed(f"Get {go_quote(target)}: stopped after {MAX_REDIRECTS} redirects")
        if host and urlsplit(location).scheme:
            host = None  # Go keeps a custom Host header only through relative redirects
        url = target


async def _exchange(url: str, headers: tuple[tuple[str, str], ...], host: str | None) -> _Response:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _Failed(f"Get {go_quote(url)}: unsupported protocol scheme {go_quote(parts.scheme)}")
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise _Failed(f"Get {go_quote(url)}: net/http: invalid header field value for {go_quote(name)}")
    reader, writer = await _dial(url, hostname, port, parts.scheme == "https")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        writer.write(_request_bytes(target, host or parts.netloc, headers))
        await writer.drain()
        code, response_headers = await _read_head(reader)
    except _Failed as exc:
        abort(writer)
        raise _Failed(f"Get {go_quote(url)}: {exc}") from None
    except OSError as exc:
        abort(writer)
        raise _Failed(f"Get {go_quote(url)}: {_io_error(exc, writer)}") from None
    except ValueError:  # asyncio's line limit (LimitOverrunError is a ValueError too)
        abort(writer)
        raise _Failed(f"Get {go_quote(url)}: net/http: server response headers exceeded {_HEAD_LIMIT} bytes; "
                      "aborted") from None
    except BaseException:
        abort(writer)
        raise
    return _Response(url, code, response_headers, reader, writer)


def _request_bytes(target: str, host: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    """The request as Go writes it: Host, User-Agent, the other headers sorted by name,
    then Connection: close (keep-alives are off)."""
    user_agent = next((v for k, v in headers if k == "User-Agent"), "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    if user_agent:
        lines.append(f"User-Agent: {user_agent}")
    lines += [f"{k}: {v}" for k, v in sorted(headers, key=lambda kv: kv[0]) if k != "User-Agent"]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


_TLS: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """InsecureSkipVerify, as the kubelet's prober: probes check liveness, not identity."""
    global _TLS
    if _TLS is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
        _TLS = context
    return _TLS


async def _dial(url: str, host: str, port: int, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        reader, writer = await dial(host, port, limit=_HEAD_LIMIT)
    except DialError as exc:
        raise _Failed(f"Get {go_quote(url)}: {exc}") from None
    if not tls:
        return reader, writer
    try:
        await writer.start_tls(_tls_context(), server_hostname=None if is_ip(host) else host)
    except ssl.SSLError as exc:
        abort(writer)
        raise _Failed(f"Get {go_quote(url)}: {_tls_error(exc)}") from None
    except OSError as exc:
        abort(writer)
        raise _Failed(f"Get {go_quote(url)}: {_io_error(exc, writer)}") from None
    return reader, writer


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    while True:
        line = await reader.readline()
        if not line:
            raise _Failed("EOF")
        status = line.rstrip(b"\r\n").decode("latin-1")
        proto, _, rest = status.partition(" ")
        code_text = rest[:3]
        if not proto.startswith("HTTP/"):
            raise _Failed(f"net/http: HTTP/1.x transport connection broken: malformed HTTP response {go_quote(status)}")
        if not (code_text.isdigit() and len(code_text) == 3):
            raise _Failed(f"net/http: HTTP/1.x transport connection broken: malformed HTTP status code {go_quote(rest)}")
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if not raw.endswith(b"\n"):
                raise _Failed("unexpected EOF")
            raw = raw.rstrip(b"\r\n")
            if not raw:
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise _Failed(f"net/http: HTTP/1.x transport connection broken: malformed MIME header line: {raw.decode('latin-1')}")
            headers.setdefault(name.strip().lower(), value.strip())
        code = int(code_text)
        if 100 <= code < 200 and code != 101:
            continue  # 1xx informational responses precede the real one
        return code, headers


async def _read_body(response: _Response) -> bytes:
    """At most MAX_OUTPUT bytes of the body (more is not an error, just not read)."""
    if response.code in (204, 304) or 100 <= response.code < 200:
        return b""
    reader = response.reader
    try:
        if "chunked" in response.headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader)
        length = response.headers.get("content-length")
        if length is not None and length.isdigit():
            return await reader.readexactly(min(int(length), MAX_OUTPUT))
        data = b""
        while len(data) < MAX_OUTPUT and (chunk := await reader.read(MAX_OUTPUT - len(data))):
            data += chunk
        return data
    except asyncio.IncompleteReadError:
        raise _Failed("unexpected EOF") from None
    except ValueError:
        raise _Failed("net/http: malformed chunked encoding") from None
    except OSError as exc:
        raise _Failed(_io_error(exc, response.writer)) from None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while len(data) < MAX_OUTPUT:
        size_line = (await reader.readline()).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise _Failed("net/http: malformed chunked encoding") from None
        if size == 0:
            break
        data += await reader.readexactly(size)
        await reader.readexactly(2)
    return data[:MAX_OUTPUT]


def _io_error(exc: OSError, writer: asyncio.StreamWriter) -> str:
    local, remote = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
    pair = ""
    if local and remote:
        pair = f" {join_host_port(str(local[0]), local[1])}->{join_host_port(str(remote[0]), remote[1])}"
    if isinstance(exc, BrokenPipeError):
        return f"write tcp{pair}: write: broken pipe"
    return f"read tcp{pair}: read: {strerror(exc)}"


def _tls_error(exc: ssl.SSLError) -> str:
    reason = (exc.reason or "").upper()
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG"):
        return "http: server gave HTTP response to HTTPS client"
    return f"remote error: tls: {(exc.reason or str(exc)).lower().replace('_', ' ')}"
