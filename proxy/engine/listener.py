"""A listener at run time: its bound socket and how each new connection finds its filter
chain, its transport (plaintext or TLS) and its application protocol.

A listener with one plaintext filter chain and no listener filters is a plain
`loop.create_server` (the fast path). Any other (TLS, the tls_inspector, several
chains) goes through `tls.TlsSniffingServer`, whose chooser here is Envoy's: the
tls_inspector's findings (TLS or raw_buffer, SNI, ALPN; without the inspector a
connection is raw_buffer with no names) and the local port go to
`config.listener.select_filter_chain`; the chosen chain's DownstreamTlsContext (if
any) is the handshake; no chain: the connection is closed and
`listener.<address>.no_filter_chain_match` counted. That one mechanism gives Istio's
PERMISSIVE inbound listener (a "tls" chain and a "raw_buffer" chain, one port) and
STRICT (only the "tls" chain: plaintext finds no chain).

Certificate rotation: each TLS chain has a `tls.CertificateStore`, which re-reads its
files when they change (checked at most every `check_interval` s, at a handshake), so
new handshakes use the new certificate while established connections keep theirs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.engine.config.core import DownstreamTlsContext as DownstreamTlsConfig
from proxy.engine.config.listener import (
    FilterChain,
    HttpConnectionManager,
    Listener,
    TlsInspector,
    select_filter_chain,
)
from proxy.engine.http1 import DownstreamConnection
from proxy.engine.telemetry.stats import StatsStore
from proxy.engine.tls import (
    PLAINTEXT,
    CertificateStore,
    ChainChoice,
    ConnectionSecurity,
    DownstreamTlsContext,
    SubjectAltNameMatcher,
    TlsSniffingServer,
    socket_context,
)
from proxy.engine.tls_inspector import ClientHello

ProtocolFactory = Callable[[ConnectionSecurity], asyncio.Protocol]
_LISTENER_STATS = ("ssl.", "no_filter_chain_match", "downstream_pre_cx_timeout")


@dataclass
class ChainRuntime:
    """One filter chain: its TLS (None: plaintext) and the protocol of its connections."""

    config: FilterChain
    store: CertificateStore | None
    factory: ProtocolFactory
    network_filter: object = None  # its HttpConnectionManagerHandler or tcp.TcpProxyFilter

    @property
    def matchers(self) -> tuple[SubjectAltNameMatcher, ...]:
        if self.store is None:
            return ()
        vc = self.store.tls.common_tls_context.validation_context
        return vc.match_typed_subject_alt_names if vc is not None else ()


def chain_store(chain: FilterChain, path: str, *, http: bool, check_interval: float) -> CertificateStore | None:
    """The chain's DownstreamTlsContext as a rotating CertificateStore, or None (plaintext).
    An HTTP chain offers only the configured ALPN protocols its codec speaks: h2 and
    http/1.1 for codec_type AUTO or HTTP2, http/1.1 alone for HTTP1, never h3 (as Envoy,
    an empty alpn_protocols negotiates no ALPN: AUTO then tells the codec by the preface)."""
    ts = chain.transport_socket
    if ts is None or not isinstance(ts.typed_config, DownstreamTlsConfig):
        return None
    ctx = socket_context(ts, path)
    assert isinstance(ctx, DownstreamTlsContext)
    if http and ctx.common_tls_context.alpn_protocols:
        cfg = chain.filters[0].typed_config if chain.filters else None
        unspoken = ("h2", "h3") if isinstance(cfg, HttpConnectionManager) and cfg.codec_type == "HTTP1" else ("h3",)
        alpn = tuple(p for p in ctx.common_tls_context.alpn_protocols if p not in unspoken)
        ctx = dataclasses.replace(ctx, common_tls_context=dataclasses.replace(ctx.common_tls_context,
                                                                               alpn_protocols=alpn))
    return CertificateStore(ctx, check_interval=check_interval)


def http_protocol(handler: Any, security: ConnectionSecurity, *, on_close: Callable[[Any], None],
                  track: Callable[[Any], None]) -> asyncio.Protocol:
    """The protocol of a new connection of an http_connection_manager chain, by Envoy's
    codec choice: codec_type HTTP1 or HTTP2 is that codec; AUTO takes ALPN's word when
    the TLS handshake negotiated one, else the HTTP/2 preface in the first bytes.
    `track(conn)` sees each connection's protocol object once it is known (drain, stop);
    `on_close(conn)` its end. `handler` is the chain's HttpConnectionManagerHandler."""
    st = handler.stats
    secure = security is not PLAINTEXT

    def opened(make: Callable[..., Any], total: Any, active: Any) -> Any:
        total.value += 1
        active.value += 1

        def closed(conn: Any) -> None:
            active.value -= 1
            on_close(conn)

        conn = make(handler, on_close=closed)
        if secure:
            conn.security = security
        track(conn)
        return conn

    def http1() -> DownstreamConnection:
        return opened(DownstreamConnection, st.downstream_cx_http1_total, st.downstream_cx_http1_active)

    def http2() -> Any:
        from proxy.engine.http2 import Http2Connection  # h2 is loaded with the first HTTP/2 connection

        return opened(Http2Connection, st.downstream_cx_http2_total, st.downstream_cx_http2_active)

    codec = handler.config.codec_type
    if codec == "HTTP1" or (codec == "AUTO" and security.alpn and security.alpn != "h2"):
        return http1()
    if codec == "HTTP2" or security.alpn == "h2":
        return http2()
    detector = PrefaceDetector(http1, http2, on_close=on_close)
    track(detector)  # until the first bytes tell: drain and stop close it
    return detector


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # the HTTP/2 connection preface


class PrefaceDetector(asyncio.Protocol):
    """Codec AUTO on a connection without ALPN: the first bytes decide, as Envoy's
    connection manager does: the HTTP/2 connection preface means HTTP/2, anything else
    HTTP/1.1. The chosen protocol then takes over the transport."""

    def __init__(self, make_http1: Callable[[], asyncio.Protocol], make_http2: Callable[[], asyncio.Protocol],
                 on_close: Callable[[PrefaceDetector], None] | None = None) -> None:
        self.make_http1 = make_http1
        self.make_http2 = make_http2
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.streams: tuple[()] = ()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer = self.buffer + data
        if len(buf) < len(PREFACE) and PREFACE.startswith(buf):
            return  # could still be the preface
        proto = self.make_http2() if buf.startswith(PREFACE) else self.make_http1()
        transport = self.transport
        assert transport is not None
        self.buffer = b""
        transport.set_protocol(proto)
        proto.connection_made(transport)
        proto.data_received(buf)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)

    def drain(self) -> None:
        """Nothing was asked yet: close."""
        if self.transport is not None and not self.closed:
            self.transport.close()


class ListenerRuntime:
    """One listener's socket and filter chains (`chains`: by id() of the chain's config)."""

    def __init__(self, cfg: Listener, chains: dict[int, ChainRuntime], store: StatsStore) -> None:
        self.config = cfg
        self.chains = chains
        self.store = store
        self.inspect = any(isinstance(f.typed_config, TlsInspector) for f in cfg.listener_filters)
        only = list(chains.values())[0] if len(chains) == 1 else None
        self.plain = only is not None and only.store is None and not self.inspect
        self.server: asyncio.Server | None = None
        self.sniffer: TlsSniffingServer | None = None
        self._stat_scope = ""
        self._port = 0  # the bound port: destination_port for select_filter_chain

    def address(self) -> tuple[str, int]:
        if self.server is not None:
            return self.server.sockets[0].getsockname()[:2]
        assert self.sniffer is not None and self.sniffer.sockets
        return self.sniffer.sockets[0].getsockname()[:2]

    def _count(self, stat: str) -> None:
        if stat.startswith(_LISTENER_STATS):
            self.store.counter("listener", self._stat_scope, stat).inc()

    def _choose(self, hello: ClientHello) -> ChainChoice | str:
        fc = select_filter_chain(self.config, server_name=hello.server_name,
                                 transport_protocol=hello.transport_protocol,
                                 application_protocols=hello.alpn, destination_port=self._port)
        rt = self.chains.get(id(fc)) if fc is not None else None
        if rt is None:
            return "no_filter_chain_match"
        return ChainChoice(rt.factory, rt.store, rt.matchers)

    async def bind(self) -> None:
        sa = self.config.address.socket_address
        loop = asyncio.get_running_loop()
        if self.plain:
            only = next(iter(self.chains.values()))
            self.server = await loop.create_server(lambda: only.factory(PLAINTEXT), sa.address, sa.port_value,
                                                   reuse_address=True, reuse_port=True, backlog=1024)
        else:
            cfg = self.config
            self.sniffer = TlsSniffingServer(
                None, None, choose=self._choose, inspect=self.inspect,
                detection_timeout=cfg.listener_filters_timeout,
                continue_on_timeout=cfg.continue_on_listener_filters_timeout,
                handshake_timeout=next((c.config.transport_socket_connect_timeout for c in self.chains.values()
                                        if c.config.transport_socket_connect_timeout), None),
                on_stat=self._count)
            await self.sniffer.start(sa.address, sa.port_value, reuse_port=True)
        host, self._port = self.address()
        self._stat_scope = f"{host}_{self._port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.sniffer is not None:
            self.sniffer.close()
