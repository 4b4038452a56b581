"""TLS and mTLS for listeners and clusters: Envoy's TLS contexts, SPIFFE checks, sniffing.

The dataclasses mirror Envoy's `DownstreamTlsContext` / `UpstreamTlsContext` (same field
names and defaults; `from_config` converts the bootstrap model's) and compile to
`ssl.SSLContext`s.
Envoy checks a peer against `match_typed_subject_alt_names`; Python's `ssl` only knows
host names, so the peer's URI SANs (the SPIFFE IDs Istio puts there) are read from the
DER certificate with `cryptography` after the handshake, before the application protocol
sees the connection, and a mismatch closes it with a reason.

A PERMISSIVE listener takes TLS and plaintext on one port, as Envoy's `tls_inspector`
does: look at the first bytes of a connection before anything consumes them. uvloop
reads a new connection even when it is paused in `connection_made`, so the bytes would
be gone; `TlsSniffingServer` therefore accepts sockets itself, peeks with MSG_PEEK (in
loop callbacks, no task per connection), and hands each socket to
`loop.connect_accepted_socket` with or without TLS. The application
protocol is installed only after the handshake and the SAN check (then `set_protocol`
takes the wrapper out of the data path). STRICT closes a connection that is not TLS.

`CertificateStore` rotates certificates without dropping connections: it reloads the
files when they change (mtime, size or inode) and gives new connections a new SSLContext, while an
established connection keeps the SSLObject (and context) it was made with.

Cost on this VM (OpenSSL 3.0, ECDSA P-256): a full mTLS handshake is ~1.5 ms of CPU per
side, so connections between sidecars must be pooled and kept alive; after it, TLS adds
~9 µs per side to a small request/response round trip.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import functools
import hashlib
import logging
import os
import re
import socket
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from proxy.engine.config.errors import ConfigError
from proxy.engine.tls_inspector import MAX_HELLO, ClientHello, parse_client_hello, record_length

log = logging.getLogger("proxy.engine.tls")

_VERSIONS = {
    "TLS_AUTO": None,
    "TLSv1_0": ssl.TLSVersion.TLSv1,
    "TLSv1_1": ssl.TLSVersion.TLSv1_1,
    "TLSv1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1_3": ssl.TLSVersion.TLSv1_3,
}


class TlsConfigError(ValueError):
    """A TLS context that cannot be built; the message names the field."""


class PeerVerificationError(Exception):
    """The peer's certificate is missing or its SANs match none of the matchers."""


@dataclass(frozen=True)
class TlsCertificate:
    """`common_tls_context.tls_certificates[]`: PEM files (`certificate_chain.filename`)."""

    certificate_chain: str
    private_key: str


_SAN_TYPES = {"URI": "peer_uri_sans", "DNS": "peer_dns_sans", "IP_ADDRESS": "peer_ip_sans",
              "EMAIL": "peer_email_sans"}


@dataclass(frozen=True)
class SubjectAltNameMatcher:
    """`match_typed_subject_alt_names[]`: `san_type` (URI, DNS, IP_ADDRESS, EMAIL) and one
    StringMatcher (exact, prefix, suffix, contains, safe_regex; `ignore_case`)."""

    san_type: str = "URI"
    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    contains: str | None = None
    safe_regex: str | None = None
    ignore_case: bool = False

    def __post_init__(self) -> None:
        if self.san_type not in _SAN_TYPES:
            raise TlsConfigError(
                f"match_typed_subject_alt_names.san_type: {self.san_type!r} is not one of {sorted(_SAN_TYPES)}")
        given = [v for v in (self.exact, self.prefix, self.suffix, self.contains, self.safe_regex) if v is not None]
        if len(given) != 1:
            raise TlsConfigError("match_typed_subject_alt_names.matcher: exactly one of exact, prefix, suffix, "
                                 "contains, safe_regex")
        if self.safe_regex is not None:
            try:
                re.compile(self.safe_regex)
            except re.error as e:
                raise TlsConfigError(f"match_typed_subject_alt_names.matcher.safe_regex: {e}") from e

    def matches(self, value: str) -> bool:
        if self.safe_regex is not None:
            return re.fullmatch(self.safe_regex, value, re.IGNORECASE if self.ignore_case else 0) is not None
        want = self.exact or self.prefix or self.suffix or self.contains or ""
        if self.ignore_case:
            value, want = value.lower(), want.lower()
        if self.exact is not None:
            return value == want
        if self.prefix is not None:
            return value.startswith(want)
        if self.suffix is not None:
            return value.endswith(want)
        return want in value

    def describe(self) -> str:
        for kind in ("exact", "prefix", "suffix", "contains", "safe_regex"):
            if (v := getattr(self, kind)) is not None:
                return f"{self.san_type} {kind} {v!r}"
        return self.san_type


@dataclass(frozen=True)
class CertificateValidationContext:
    """`validation_context`: `trusted_ca.filename` and the SAN matchers (any one suffices)."""

    trusted_ca: str | None = None
    match_typed_subject_alt_names: tuple[SubjectAltNameMatcher, ...] = ()


@dataclass(frozen=True)
class TlsParameters:
    """`tls_params`. Envoy's defaults: minimum TLS 1.2 for clients and servers; maximum
    TLS 1.3 (servers; clients too since Envoy 1.26, before that 1.2)."""

    tls_minimum_protocol_version: str = "TLSv1_2"
    tls_maximum_protocol_version: str = "TLSv1_3"
    cipher_suites: tuple[str, ...] = ()  # TLS 1.2 suites, OpenSSL names; TLS 1.3's are fixed
    ecdh_curves: tuple[str, ...] = ()  # at most one with Python's ssl


@dataclass(frozen=True)
class CommonTlsContext:
    tls_certificates: tuple[TlsCertificate, ...] = ()
    validation_context: CertificateValidationContext | None = None
    alpn_protocols: tuple[str, ...] = ()
    tls_params: TlsParameters = field(default_factory=TlsParameters)


@dataclass(frozen=True)
class DownstreamTlsContext:
    """Listener side. SIMPLE: a certificate; MUTUAL: also `trusted_ca` and
    `require_client_certificate: true` (a client certificate is still verified when
    presented without it, as Envoy does)."""

    common_tls_context: CommonTlsContext
    require_client_certificate: bool = False
    require_sni: bool = False


@dataclass(frozen=True)
class UpstreamTlsContext:
    """Cluster side. Without `trusted_ca` the server's certificate is not verified (Envoy's
    behaviour); `sni` is sent when set; a certificate makes it mutual."""

    common_tls_context: CommonTlsContext
    sni: str = ""


def _base_context(common: CommonTlsContext, purpose: ssl.Purpose, where: str) -> ssl.SSLContext:
    server = purpose is ssl.Purpose.CLIENT_AUTH
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # Envoy never checks host names; SANs are checked by matchers
    params = common.tls_params
    for attr, name in (("minimum_version", "tls_minimum_protocol_version"),
                       ("maximum_version", "tls_maximum_protocol_version")):
        value = getattr(params, name)
        if value not in _VERSIONS:
            raise TlsConfigError(f"{where}.tls_params.{name}: {value!r} is not one of {sorted(_VERSIONS)}")
        version = _VERSIONS[value] or (ssl.TLSVersion.TLSv1_2 if attr == "minimum_version" else ssl.TLSVersion.TLSv1_3)
        setattr(ctx, attr, version)  # TLS_AUTO: Envoy's defaults
    for i, cert in enumerate(common.tls_certificates):
        try:
            ctx.load_cert_chain(cert.certificate_chain, cert.private_key)
        except (OSError, ssl.SSLError) as e:
            raise TlsConfigError(
                f"{where}.tls_certificates[{i}]: cannot load {cert.certificate_chain} / {cert.private_key}: {e}"
            ) from e
    vc = common.validation_context
    ctx.verify_mode = ssl.CERT_NONE
    if vc is not None and vc.trusted_ca:
        try:
            ctx.load_verify_locations(cafile=vc.trusted_ca)
        except (OSError, ssl.SSLError) as e:
            raise TlsConfigError(f"{where}.validation_context.trusted_ca: cannot load {vc.trusted_ca}: {e}") from e
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif vc is not None and vc.match_typed_subject_alt_names:
        raise TlsConfigError(f"{where}.validation_context.match_typed_subject_alt_names: needs trusted_ca "
                             "(a SAN is only worth checking on a verified certificate)")
    if common.alpn_protocols:
        ctx.set_alpn_protocols(list(common.alpn_protocols))
    _apply_ciphers(ctx, params, f"{where}.tls_params")
    return ctx


def _apply_ciphers(ctx: ssl.SSLContext, params: TlsParameters, where: str) -> None:
    if params.cipher_suites:
        try:
            ctx.set_ciphers(":".join(params.cipher_suites))
        except ssl.SSLError as e:
            raise TlsConfigError(f"{where}.cipher_suites: {list(params.cipher_suites)}: {e}") from e
    if len(params.ecdh_curves) > 1:
        raise TlsConfigError(f"{where}.ecdh_curves: at most one curve is supported")
    if params.ecdh_curves:
        try:
            ctx.set_ecdh_curve(params.ecdh_curves[0])
        except (ValueError, ssl.SSLError) as e:
            raise TlsConfigError(f"{where}.ecdh_curves: {params.ecdh_curves[0]!r}: {e}") from e


def _remember_sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
    sslobj.mkp_sni = server_name  # type: ignore[attr-defined]


def _require_sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
    sslobj.mkp_sni = server_name  # type: ignore[attr-defined]
    return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if not server_name else None


def server_context(tls: DownstreamTlsContext, where: str = "downstream_tls_context") -> ssl.SSLContext:
    """An SSLContext for a listener; `where` prefixes field names in errors."""
    common = tls.common_tls_context
    if not common.tls_certificates:
        raise TlsConfigError(f"{where}.common_tls_context.tls_certificates: a listener needs a certificate")
    ctx = _base_context(common, ssl.Purpose.CLIENT_AUTH, f"{where}.common_tls_context")
    has_ca = common.validation_context is not None and bool(common.validation_context.trusted_ca)
    if tls.require_client_certificate and not has_ca:
        raise TlsConfigError(f"{where}.require_client_certificate: needs validation_context.trusted_ca")
    if has_ca and not tls.require_client_certificate:
        ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.sni_callback = _require_sni if tls.require_sni else _remember_sni
    return ctx


def client_context(tls: UpstreamTlsContext, where: str = "upstream_tls_context") -> ssl.SSLContext:
    """An SSLContext for a cluster's upstream connections."""
    return _base_context(tls.common_tls_context, ssl.Purpose.SERVER_AUTH, f"{where}.common_tls_context")


@functools.lru_cache(maxsize=1024)
def _sans(der: bytes) -> dict[str, tuple[str, ...]]:
    """The peer certificate's SANs by ConnectionSecurity field; cached per certificate.
    (cryptography is imported on the first peer certificate: a plaintext proxy does not
    carry it.)"""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    return {
        "peer_uri_sans": tuple(ext.get_values_for_type(x509.UniformResourceIdentifier)),
        "peer_dns_sans": tuple(ext.get_values_for_type(x509.DNSName)),
        "peer_ip_sans": tuple(str(ip) for ip in ext.get_values_for_type(x509.IPAddress)),
        "peer_email_sans": tuple(ext.get_values_for_type(x509.RFC822Name)),
    }


@dataclass(frozen=True)
class ConnectionSecurity:
    """What a TLS connection is, for routing, RBAC, metrics and logs. `peer_principal` is
    the peer's first URI SAN (its SPIFFE ID); `mutual` means the peer presented a
    certificate that was verified against trusted_ca (on a listener: mTLS)."""

    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    sni: str | None = None
    peer_uri_sans: tuple[str, ...] = ()
    peer_dns_sans: tuple[str, ...] = ()
    peer_ip_sans: tuple[str, ...] = ()
    peer_email_sans: tuple[str, ...] = ()
    mutual: bool = False

    @property
    def peer_principal(self) -> str | None:
        return self.peer_uri_sans[0] if self.peer_uri_sans else None

    @property
    def connection_security_policy(self) -> str:
        """Istio's label as the destination reports it: `mutual_tls` or `none`."""
        return "mutual_tls" if self.mutual else "none"


PLAINTEXT = ConnectionSecurity()


def connection_security(sslobj: ssl.SSLObject | None) -> ConnectionSecurity:
    """The identity and parameters of an established TLS connection (`PLAINTEXT` for None);
    `transport.get_extra_info("ssl_object")` gives the SSLObject."""
    if sslobj is None:
        return PLAINTEXT
    der = sslobj.getpeercert(binary_form=True)
    sans = _sans(der) if der else {}
    cipher = sslobj.cipher()
    return ConnectionSecurity(
        tls_version=sslobj.version(),
        cipher=cipher[0] if cipher else None,
        alpn=sslobj.selected_alpn_protocol(),
        sni=getattr(sslobj, "mkp_sni", None) if sslobj.server_side else sslobj.server_hostname,
        **sans,
        # A certificate is only returned when it was verified (CERT_OPTIONAL/REQUIRED).
        mutual=bool(der) and sslobj.context.verify_mode != ssl.CERT_NONE,
    )


def verify_peer(sec: ConnectionSecurity, matchers: tuple[SubjectAltNameMatcher, ...]) -> None:
    """Raise PeerVerificationError unless some SAN of the peer matches some matcher (no
    matchers: anything verified by the CA is accepted)."""
    if not matchers:
        return
    if not sec.mutual:
        raise PeerVerificationError("peer presented no certificate")
    for m in matchers:
        if any(m.matches(v) for v in getattr(sec, _SAN_TYPES[m.san_type])):
            return
    sans = [v for field in _SAN_TYPES.values() for v in getattr(sec, field)]
    raise PeerVerificationError(f"peer SANs {sans} match none of {[m.describe() for m in matchers]}")


def looks_like_tls(first: bytes) -> bool | None:
    """True for a TLS handshake record (0x16, major version 3, minor 0-4), False for
    anything else, None while fewer than 3 bytes are known and they could still be TLS."""
    for i, ok in enumerate((lambda b: b == 0x16, lambda b: b == 0x03, lambda b: b <= 0x04)):
        if i >= len(first):
            return None
        if not ok(first[i]):
            return False
    return True


class CertificateStore:
    """The current SSLContext for a TLS context whose files may be rotated.

    `context()` stats the files at most every `check_interval` seconds and builds a new
    SSLContext when an mtime or size changed. A rotation that fails to load (e.g. a key
    that does not match yet) keeps the previous context and is retried on the next check."""

    def __init__(self, tls: DownstreamTlsContext | UpstreamTlsContext, *, check_interval: float = 1.0) -> None:
        self.tls = tls
        self.check_interval = check_interval
        self.generation = 0
        self.last_error: str | None = None
        common = tls.common_tls_context
        files = [p for c in common.tls_certificates for p in (c.certificate_chain, c.private_key)]
        if common.validation_context is not None and common.validation_context.trusted_ca:
            files.append(common.validation_context.trusted_ca)
        self.files = tuple(files)
        self._stamp = self._stat()
        self._ctx = self._build()  # the first build raises: a bad config is an error
        self._checked = time.monotonic()

    def _build(self) -> ssl.SSLContext:
        if isinstance(self.tls, DownstreamTlsContext):
            return server_context(self.tls)
        return client_context(self.tls)

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        # The inode too: files replaced by rename (as pki and kubelet's projected volumes
        # do) change it even when mtime granularity and size would hide the change.
        out = []
        for path in self.files:
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((-1, -1, -1))
        return tuple(out)

    def reload_if_changed(self) -> bool:
        """Rebuild now if a file changed; True when a new context was installed."""
        self._checked = time.monotonic()
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        try:
            ctx = self._build()
        except TlsConfigError as e:
            self.last_error = str(e)
            log.warning("certificate rotation failed, keeping the previous certificate: %s", e)
            return False
        self._stamp, self._ctx, self.last_error = stamp, ctx, None
        self.generation += 1
        log.info("certificates reloaded (generation %d)", self.generation)
        return True

    def context(self) -> ssl.SSLContext:
        if time.monotonic() - self._checked >= self.check_interval:
            self.reload_if_changed()
        return self._ctx


@dataclass(frozen=True)
class ChainChoice:
    """How a listener serves one new connection, once its first bytes are known: the
    application protocol's factory, and the TLS context (None: plaintext) with the SAN
    matchers the peer must satisfy."""

    protocol_factory: Callable[[ConnectionSecurity], asyncio.Protocol]
    store: CertificateStore | None = None
    matchers: tuple[SubjectAltNameMatcher, ...] = ()


Chooser = Callable[[ClientHello], "ChainChoice | str"]  # a str: refused, the stat to count


class _Verifier(asyncio.Protocol):
    """Stands in for the application protocol until the handshake and SAN check are done."""

    def __init__(self, server: TlsSniffingServer, peer: str, choice: ChainChoice) -> None:
        self.server, self.peer, self.choice = server, peer, choice

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sec = connection_security(transport.get_extra_info("ssl_object"))
        try:
            verify_peer(sec, self.choice.matchers)
        except PeerVerificationError as e:
            self.server.reject(self.peer, "ssl.fail_verify_san", str(e))
            transport.abort()
            return
        self.server.count("ssl.handshake")
        app = self.choice.protocol_factory(sec)
        transport.set_protocol(app)
        app.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # only after an abort; nothing to do
        pass


class TlsSniffingServer:
    """A listener for PERMISSIVE (TLS or plaintext), STRICT (TLS only) or DISABLE
    (plaintext only) connections. `protocol_factory(security)` makes the application
    protocol once the connection's security is known (`PLAINTEXT` for plaintext).

    A listener with several filter chains passes `choose` instead: it gets the
    `ClientHello` (TLS or not, SNI, ALPN; nothing when `inspect` is off, as Envoy
    without the tls_inspector) and returns the `ChainChoice`, or the name of the stat to
    count when no chain takes the connection.

    `stats` counts with Envoy's listener names where they exist: `ssl.handshake`,
    `ssl.connection_error`, `ssl.fail_verify_no_cert`, `ssl.fail_verify_san`,
    `downstream_pre_cx_timeout`, plus `plaintext` and `plaintext_refused`; `on_stat(name)`
    sees each count too. `detection_timeout`: a client that sends nothing (a server-first
    protocol) is treated as plaintext in PERMISSIVE, closed in STRICT; with `choose`,
    `continue_on_timeout` decides (Envoy's continue_on_listener_filters_timeout)."""

    def __init__(
        self,
        protocol_factory: Callable[[ConnectionSecurity], asyncio.Protocol] | None,
        store: CertificateStore | None,
        *,
        mode: str = "PERMISSIVE",
        detection_timeout: float | None = 1.0,
        choose: Chooser | None = None,
        inspect: bool | None = None,
        continue_on_timeout: bool = False,
        handshake_timeout: float | None = None,
        on_stat: Callable[[str], None] | None = None,
    ) -> None:
        if mode not in ("PERMISSIVE", "STRICT", "DISABLE"):
            raise TlsConfigError(f"mode: {mode!r} is not PERMISSIVE, STRICT or DISABLE")
        if choose is None and mode != "DISABLE" and store is None:
            raise TlsConfigError(f"mode {mode} needs a TLS context")
        self.protocol_factory = protocol_factory
        self.store = store
        self.mode = mode
        self.detection_timeout = detection_timeout or None  # 0: wait for the first bytes forever
        vc = store.tls.common_tls_context.validation_context if store is not None else None
        self.matchers = vc.match_typed_subject_alt_names if vc is not None else ()
        self.choose: Chooser = choose or self._by_mode
        self.inspect = inspect if inspect is not None else (choose is not None or mode != "DISABLE")
        self.continue_on_timeout = continue_on_timeout if choose is not None else mode == "PERMISSIVE"
        self.handshake_timeout = handshake_timeout
        self.on_stat = on_stat
        self.stats: Counter[str] = Counter()
        self.sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._peeking: dict[int, _Peek] = {}  # fd -> its watcher, until the first bytes decide
        self._loop: asyncio.AbstractEventLoop | None = None

    def _by_mode(self, hello: ClientHello) -> ChainChoice | str:
        assert self.protocol_factory is not None
        if hello.tls and self.mode != "DISABLE":
            return ChainChoice(self.protocol_factory, self.store, self.matchers)
        if self.mode == "STRICT":
            return "plaintext_refused"
        return ChainChoice(self.protocol_factory)

    async def start(self, host: str, port: int, *, backlog: int = 1024, reuse_port: bool = False) -> TlsSniffingServer:
        """Listen on host:port (port 0: any; see `.port`). `reuse_port` lets several worker
        processes share the port (SO_REUSEPORT)."""
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sockets.append(sock)
        self._loop.add_reader(sock.fileno(), self._accept, sock)
        return self

    @property
    def port(self) -> int:
        return self.sockets[0].getsockname()[1]

    def count(self, stat: str) -> None:
        self.stats[stat] += 1
        if self.on_stat is not None:
            self.on_stat(stat)

    def reject(self, peer: str, stat: str, reason: str) -> None:
        self.count(stat)
        log.info("connection from %s refused: %s", peer, reason)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(64):  # a burst of connections per wakeup, then yield to the loop
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("accept: %s", e)
                    return
                raise
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = f"{addr[0]}:{addr[1]}"
            if self.inspect:
                _Peek(self, conn, peer)
            else:
                self._dispatch(conn, peer, b"", timed_out=False)

    def _dispatch(self, conn: socket.socket, peer: str, first: bytes, *, timed_out: bool) -> None:
        """Decide from the peeked bytes (timed_out: nothing came within detection_timeout)."""
        if timed_out and not self.continue_on_timeout:
            stat = "plaintext_refused" if self.mode == "STRICT" and self.protocol_factory else \
                "downstream_pre_cx_timeout"
            self.reject(peer, stat, "no data within the listener filters' timeout")
            conn.close()
            return
        if self.inspect and looks_like_tls(first):
            hello = parse_client_hello(first)
        else:
            hello = ClientHello()
        choice = self.choose(hello)
        if isinstance(choice, str):
            self.reject(peer, choice, f"no filter chain for {hello}")
            conn.close()
        elif choice.store is not None:
            self._spawn(self._start_tls(conn, peer, choice))
        else:
            self.count("plaintext")
            self._spawn(self._start_plaintext(conn, choice))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_plaintext(self, conn: socket.socket, choice: ChainChoice) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(lambda: choice.protocol_factory(PLAINTEXT), conn)
        except OSError:
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise

    async def _start_tls(self, conn: socket.socket, peer: str, choice: ChainChoice) -> None:
        assert self._loop is not None and choice.store is not None
        try:
            await self._loop.connect_accepted_socket(
                lambda: _Verifier(self, peer, choice), conn, ssl=choice.store.context(),  # type: ignore[union-attr]
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except ssl.SSLError as e:
            no_cert = "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(e) or "certificate required" in str(e)
            self.reject(peer, "ssl.fail_verify_no_cert" if no_cert else "ssl.connection_error", str(e))
            conn.close()
        except (OSError, TimeoutError) as e:  # reset or handshake timeout
            self.reject(peer, "ssl.connection_error", str(e) or type(e).__name__)
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise

    def close(self) -> None:
        """Stop accepting; established connections are left alone (drain is the caller's)."""
        for sock in self.sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()
        for peek in list(self._peeking.values()):
            peek.abandon()
        for task in list(self._tasks):
            task.cancel()


class _Peek:
    """Watches one accepted socket, in loop callbacks (no task), until its first bytes
    tell TLS from plaintext (for TLS: until the first record, the ClientHello, is there),
    the detection timeout passes, or it closes."""

    __slots__ = ("server", "conn", "peer", "fd", "timer", "loop")

    def __init__(self, server: TlsSniffingServer, conn: socket.socket, peer: str) -> None:
        assert server._loop is not None
        self.server, self.conn, self.peer, self.fd = server, conn, peer, conn.fileno()
        self.loop = server._loop
        timeout = server.detection_timeout
        self.timer = self.loop.call_later(timeout, self._timeout) if timeout else None
        server._peeking[self.fd] = self
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = self.conn.recv(MAX_HELLO, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # closed before saying anything
            self.abandon()
            return
        tls = looks_like_tls(data)
        need = record_length(data) if tls else 0
        if tls is None or need is None or len(data) < min(need, MAX_HELLO):
            # A partial header or ClientHello: the level-triggered reader would spin, so
            # look again in a millisecond (the detection timer still bounds the wait).
            self.loop.remove_reader(self.fd)
            self.loop.call_later(0.001, self._rearm)
            return
        self._finish(data, False)

    def _rearm(self) -> None:
        if self.server._peeking.get(self.fd) is self:
            self.loop.add_reader(self.fd, self._readable)

    def _stop(self) -> None:
        self.loop.remove_reader(self.fd)
        if self.timer is not None:
            self.timer.cancel()
        if self.server._peeking.get(self.fd) is self:
            del self.server._peeking[self.fd]

    def _timeout(self) -> None:
        try:  # what came so far (a partial ClientHello still says TLS)
            data = self.conn.recv(MAX_HELLO, socket.MSG_PEEK)
        except OSError:
            data = b""
        self._finish(data, not data)

    def _finish(self, first: bytes, timed_out: bool) -> None:
        if self.server._peeking.get(self.fd) is not self:
            return
        self._stop()
        self.server._dispatch(self.conn, self.peer, first, timed_out=timed_out)

    def abandon(self) -> None:
        self._stop()
        self.conn.close()


# --- from the bootstrap model (proxy.engine.config.core), duck-typed ------------------


class _Materializer:
    """DataSources as files: `filename` as is; inline_string/inline_bytes/
    environment_variable written once into a private (0700) temporary directory, since
    OpenSSL loads certificate chains and keys from files only."""

    def __init__(self) -> None:
        self._dir: str | None = None

    def path(self, source: Any, where: str) -> str:
        if source.filename is not None:
            return str(source.filename)
        if source.inline_string is not None:
            data = source.inline_string.encode()
        elif source.inline_bytes is not None:
            data = base64.b64decode(source.inline_bytes)
        elif source.environment_variable is not None:
            value = os.environ.get(source.environment_variable)
            if value is None:
                raise TlsConfigError(f"{where}.environment_variable: {source.environment_variable} is not set")
            data = value.encode()
        else:
            raise TlsConfigError(f"{where}: a DataSource needs one of filename, inline_string, inline_bytes")
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="mkp-tls-")
        # Named by content: a config reloaded many times reuses its files instead of adding more.
        path = os.path.join(self._dir, hashlib.sha256(data).hexdigest()[:32] + ".pem")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return path


_MATERIALIZER = _Materializer()


def _common_from_config(c: Any, where: str) -> CommonTlsContext:
    certs = tuple(
        TlsCertificate(_MATERIALIZER.path(t.certificate_chain, f"{where}.tls_certificates[{i}].certificate_chain"),
                       _MATERIALIZER.path(t.private_key, f"{where}.tls_certificates[{i}].private_key"))
        for i, t in enumerate(c.tls_certificates)
    )
    vc = None
    if c.validation_context is not None:
        v = c.validation_context
        if getattr(v, "trust_chain_verification", "VERIFY_TRUST_CHAIN") != "VERIFY_TRUST_CHAIN":
            raise TlsConfigError(f"{where}.validation_context.trust_chain_verification: only VERIFY_TRUST_CHAIN "
                                 "is supported")
        ca = _MATERIALIZER.path(v.trusted_ca, f"{where}.validation_context.trusted_ca") if v.trusted_ca else None
        matchers = []
        for i, m in enumerate(v.match_typed_subject_alt_names):
            sm = m.matcher
            try:
                matchers.append(SubjectAltNameMatcher(
                    m.san_type, sm.exact, sm.prefix, sm.suffix, sm.contains,
                    sm.safe_regex.regex if sm.safe_regex is not None else None, sm.ignore_case))
            except TlsConfigError as e:
                raise TlsConfigError(f"{where}.validation_context.{e}".replace(
                    "match_typed_subject_alt_names", f"match_typed_subject_alt_names[{i}]", 1)) from e
        vc = CertificateValidationContext(ca, tuple(matchers))
    p = c.tls_params
    params = TlsParameters() if p is None else TlsParameters(
        p.tls_minimum_protocol_version, p.tls_maximum_protocol_version, tuple(p.cipher_suites), tuple(p.ecdh_curves))
    return CommonTlsContext(certs, vc, tuple(c.alpn_protocols), params)


def from_config(cfg: Any, where: str) -> DownstreamTlsContext | UpstreamTlsContext:
    """This module's context from a parsed `DownstreamTlsContext`/`UpstreamTlsContext` of
    proxy.engine.config.core (a transport_socket's typed_config); `where` is its path in
    the bootstrap, used in error messages. Build a CertificateStore from the result."""
    common = _common_from_config(cfg.common_tls_context, f"{where}.common_tls_context")
    if hasattr(cfg, "require_client_certificate"):
        ctx: DownstreamTlsContext | UpstreamTlsContext = DownstreamTlsContext(
            common, cfg.require_client_certificate, getattr(cfg, "require_sni", False))
        server_context(ctx, where)  # fail now, with the path, rather than at the first connection
    else:
        if getattr(cfg, "allow_renegotiation", False):
            raise TlsConfigError(f"{where}.allow_renegotiation: not supported")
        ctx = UpstreamTlsContext(common, cfg.sni)
        client_context(ctx, where)
    return ctx


class UpstreamTls:
    """A cluster's TLS: the rotating context, the SNI to send, and the server check.

        transport, proto = await loop.create_connection(factory, host, port,
            ssl=up.context(), server_hostname=up.server_hostname(host))
        security = up.verify(transport)   # raises PeerVerificationError; then abort
    """

    def __init__(self, tls: UpstreamTlsContext, *, check_interval: float = 1.0,
                 on_stat: Callable[[str], None] | None = None) -> None:
        self.tls = tls
        self.store = CertificateStore(tls, check_interval=check_interval)
        vc = tls.common_tls_context.validation_context
        self.matchers = vc.match_typed_subject_alt_names if vc is not None else ()
        self.stats: Counter[str] = Counter()
        self.on_stat = on_stat

    def count(self, stat: str) -> None:
        """An Envoy `ssl.*` stat of the cluster (ssl.handshake, ssl.fail_verify_san ...)."""
        self.stats[stat] += 1
        if self.on_stat is not None:
            self.on_stat(stat)

    def context(self) -> ssl.SSLContext:
        return self.store.context()

    def server_hostname(self, host: str) -> str:
        """`sni` when set, else the host (Python's ssl sends no SNI for an IP address)."""
        return self.tls.sni or host

    def verify(self, transport: asyncio.BaseTransport) -> ConnectionSecurity:
        sec = connection_security(transport.get_extra_info("ssl_object"))
        try:
            verify_peer(sec, self.matchers)
        except PeerVerificationError:
            self.count("ssl.fail_verify_san")
            raise
        self.count("ssl.handshake")
        return sec


def socket_context(ts: Any, path: str) -> DownstreamTlsContext | UpstreamTlsContext:
    """A transport_socket's TLS context (from_config), its errors as the bootstrap's
    ConfigError naming the field ("<field path>: why" -> ConfigError(path, why))."""
    where = f"{path}.transport_socket.typed_config"
    try:
        return from_config(ts.typed_config, where)
    except TlsConfigError as e:
        field, sep, reason = str(e).partition(": ")
        raise (ConfigError(field, reason) if sep and field.startswith(where) else ConfigError(where, str(e))) \
            from None


def cluster_tls(cfg: Any, store: Any, path: str) -> UpstreamTls | None:
    """A cluster's `transport_socket` (config.cluster.Cluster) as its UpstreamTls, or None
    (plaintext: none, or raw_buffer); `ssl.*` stats go to `cluster.<name>.ssl.*` of the
    StatsStore `store`. A context that cannot be built is a ConfigError at `path`."""
    ts = cfg.transport_socket
    if ts is None or not hasattr(ts.typed_config, "sni"):
        return None
    ctx = socket_context(ts, path)
    assert isinstance(ctx, UpstreamTlsContext)
    return UpstreamTls(ctx, on_stat=lambda stat: store.counter("cluster", cfg.name, stat).inc())
