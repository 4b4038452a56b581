"""TLS and mTLS in the running proxy (ProxyServer) on loopback: SIMPLE and MUTUAL
listeners, SPIFFE SAN checks, PERMISSIVE and STRICT inbound listeners (filter chains by
the tls_inspector), upstream mTLS between two proxies (sidecar to sidecar), and
certificate rotation without dropping connections. Certificates come from
proxy.engine.pki, written to files as Istio mounts them."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import web

from proxy.engine.config import ConfigError, from_dict
from proxy.engine.pki import CertificateAuthority, spiffe_id
from proxy.engine.server import ProxyServer
from tests.proxy.engine.test_server import Backend

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
TLS_INSPECTOR = {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}
FRONTEND = spiffe_id("commerce", "frontend")
ORDERS = spiffe_id("commerce", "order-service")


class Pki:
    """A CA and workload certificates in files: `workload(sa)` -> (chain, key) paths."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = CertificateAuthority.create()
        self.root, _ = self.ca.write(directory)

    def workload(self, sa: str, name: str | None = None) -> tuple[str, str]:
        chain, key = self.ca.issue_workload("commerce", sa).write(self.dir / (name or sa))
        return str(chain), str(key)

    def client_context(self, sa: str | None, *, alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # SPIFFE certificates carry no host name
        ctx.load_verify_locations(str(self.root))
        if sa is not None:
            ctx.load_cert_chain(*self.workload(sa, f"client-{sa}"))
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def common_tls(cert: tuple[str, str], ca: Path | None, sans: list[dict] | None = None) -> dict:
    out: dict = {"tls_certificates": [{"certificate_chain": {"filename": cert[0]},
                                       "private_key": {"filename": cert[1]}}]}
    if ca is not None:
        out["validation_context"] = {"trusted_ca": {"filename": str(ca)}}
        if sans:
            out["validation_context"]["match_typed_subject_alt_names"] = sans
    return out


def downstream_tls(cert: tuple[str, str], ca: Path | None = None, *, san: str | None = None) -> dict:
    sans = [{"san_type": "URI", "matcher": {"exact": san}}] if san else None
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": DOWNSTREAM_TLS, "require_client_certificate": ca is not None,
        "common_tls_context": common_tls(cert, ca, sans)}}


def hcm(cluster: str, prefix: str = "ingress") -> dict:
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": HCM, "stat_prefix": prefix,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}}


def tcp_proxy(cluster: str, prefix: str = "tcp", **extra: object) -> dict:
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": TCP_PROXY, "stat_prefix": prefix, "cluster": cluster, **extra}}


def listener(chains: list[dict], *, inspector: bool = False, name: str = "l") -> dict:
    out: dict = {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                 "filter_chains": chains}
    if inspector:
        out["listener_filters"] = [TLS_INSPECTOR]
    return out


def cluster(name: str, ports: list[int], *, transport_socket: dict | None = None, **extra: object) -> dict:
    out: dict = {"name": name, "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
                 "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                     {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
                     for p in ports]}]}, **extra}
    if transport_socket is not None:
        out["transport_socket"] = transport_socket
    return out


def boot(listeners: list[dict], clusters: list[dict]) -> dict:
    return {"static_resources": {"listeners": listeners, "clusters": clusters}}


class EchoHeaders(Backend):
    """An aiohttp backend answering `<name> <x-forwarded-proto>`."""

    def __init__(self, name: str = "backend") -> None:
        super().__init__(name)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(text=f"{self.name} {request.headers.get('x-forwarded-proto', '-')}")


class Client:
    """One keep-alive HTTP/1.1 connection (TLS when `ctx`); `get()` -> (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext | None = None) -> Client:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        return cls(r, w)

    def peer_cert(self) -> bytes:
        return self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)

    async def get(self, path: str = "/") -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode().split("\r\n")
        length = next(int(v) for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-length")
        return int(lines[0].split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def refused(port: int, ctx: ssl.SSLContext | None) -> bool:
    """True when the proxy closes the connection without an HTTP answer."""
    try:
        c = await Client.open(port, ctx)
        await c.get()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
        return True
    await c.close()
    return False


async def start(cfg: dict, **kw: object) -> tuple[ProxyServer, int]:
    server = ProxyServer(from_dict(cfg), **kw)  # type: ignore[arg-type]
    await server.start()
    return server, server.addresses()[0][1]


def listener_stat(server: ProxyServer, port: int, stat: str) -> int:
    return server.stats.value(f"listener.127.0.0.1_{port}.{stat}")


async def test_simple_tls_listener_serves_https(pki: Pki):
    async with EchoHeaders() as be:
        cfg = boot([listener([{"filters": [hcm("be")], "transport_socket": downstream_tls(pki.workload("web"))}])],
                   [cluster("be", [be.port])])
        server, port = await start(cfg)
        try:
            c = await Client.open(port, pki.client_context(None))
            assert await c.get() == (200, b"backend https")  # the handler's scheme is https
            await c.close()
            assert await refused(port, None)  # plaintext on a TLS-only chain: the handshake fails
            assert listener_stat(server, port, "ssl.connection_error") == 1
            assert listener_stat(server, port, "ssl.handshake") == 1
        finally:
            await server.stop()


async def strict(pki: Pki, be_port: int) -> dict:
    chain = {"filter_chain_match": {"transport_protocol": "tls"}, "filters": [hcm("be")],
             "transport_socket": downstream_tls(pki.workload("order-service"), pki.root, san=FRONTEND)}
    return boot([listener([chain], inspector=True)], [cluster("be", [be_port])])


async def test_strict_refuses_plaintext_and_accepts_the_right_spiffe_client(pki: Pki):
    async with EchoHeaders() as be:
        server, port = await start(await strict(pki, be.port))
        try:
            assert await refused(port, None)
            assert listener_stat(server, port, "no_filter_chain_match") == 1
            c = await Client.open(port, pki.client_context("frontend"))
            assert await c.get() == (200, b"backend https")
            conns = [x for x in server.current.connections if not x.closed]
            assert [x.security.peer_principal for x in conns] == [FRONTEND]
            assert conns[0].security.connection_security_policy == "mutual_tls"
            await c.close()
        finally:
            await server.stop()


async def test_client_certificate_with_a_wrong_san_or_none_is_refused(pki: Pki):
    async with EchoHeaders() as be:
        server, port = await start(await strict(pki, be.port))
        try:
            assert await refused(port, pki.client_context("intruder"))
            assert listener_stat(server, port, "ssl.fail_verify_san") == 1
            assert await refused(port, pki.client_context(None))  # no certificate at all
            assert listener_stat(server, port, "ssl.fail_verify_no_cert") + \
                listener_stat(server, port, "ssl.connection_error") == 1
            assert listener_stat(server, port, "ssl.handshake") == 0
        finally:
            await server.stop()


async def test_permissive_accepts_tls_and_plaintext_on_one_port(pki: Pki):
    async with EchoHeaders("tls") as tls_be, EchoHeaders("plain") as plain_be:
        chains = [{"filter_chain_match": {"transport_protocol": "tls"}, "filters": [hcm("tls_be", "in_tls")],
                   "transport_socket": downstream_tls(pki.workload("order-service"), pki.root)},
                  {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm("plain_be", "in")]}]
        cfg = boot([listener(chains, inspector=True)], [cluster("tls_be", [tls_be.port]),
                                                        cluster("plain_be", [plain_be.port])])
        server, port = await start(cfg)
        try:
            mtls = await Client.open(port, pki.client_context("frontend"))
            plain = await Client.open(port)
            for _ in range(3):  # interleaved on one port, keep-alive on both
                assert await mtls.get() == (200, b"tls https")
                assert await plain.get() == (200, b"plain http")
            await mtls.close()
            await plain.close()
            assert server.stats.value("http.in_tls.downstream_cx_ssl_total") == 1
            assert server.stats.value("http.in.downstream_cx_total") == 1
            assert server.stats.value("http.in.downstream_cx_ssl_total") == 0
        finally:
            await server.stop()


async def sidecars(pki: Pki, be_port: int, expect_server_san: str) -> tuple[ProxyServer, ProxyServer, int]:
    """inbound: STRICT mTLS listener -> plain backend; outbound: plain listener -> cluster
    whose transport socket is mTLS to the inbound proxy (Istio's ISTIO_MUTUAL)."""
    inbound, in_port = await start(await strict(pki, be_port))
    upstream = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": UPSTREAM_TLS, "sni": "outbound_.8080_._.order-service.commerce.svc.cluster.local",
        "common_tls_context": common_tls(pki.workload("frontend"), pki.root,
                                         [{"san_type": "URI", "matcher": {"exact": expect_server_san}}])}}
    out_cfg = boot([listener([{"filters": [hcm("orders", "outbound")]}])],
                   [cluster("orders", [in_port], transport_socket=upstream)])
    outbound, out_port = await start(out_cfg)
    return inbound, outbound, out_port


async def test_sidecar_to_sidecar_mtls(pki: Pki):
    async with EchoHeaders() as be:
        inbound, outbound, port = await sidecars(pki, be.port, ORDERS)
        try:
            c = await Client.open(port)
            for _ in range(3):
                assert await c.get() == (200, b"backend https")
            await c.close()
            assert outbound.stats.value("cluster.orders.ssl.handshake") == 1  # one pooled mTLS connection
            in_port = inbound.addresses()[0][1]
            assert listener_stat(inbound, in_port, "ssl.handshake") == 1
        finally:
            await outbound.stop()
            await inbound.stop()


async def test_upstream_server_with_a_wrong_san_gives_503_uf(pki: Pki):
    async with EchoHeaders() as be:
        inbound, outbound, port = await sidecars(pki, be.port, spiffe_id("commerce", "payments"))
        try:
            c = await Client.open(port)
            status, body = await c.get()
            assert status == 503 and b"connection failure" in body
            await c.close()
            assert outbound.stats.value("cluster.orders.ssl.fail_verify_san") == 1
            assert outbound.stats.value("cluster.orders.upstream_cx_connect_fail") == 1
        finally:
            await outbound.stop()
            await inbound.stop()


async def test_rotated_certificate_serves_new_connections_and_keeps_open_ones(pki: Pki):
    async with EchoHeaders() as be:
        cert = pki.workload("web")
        cfg = boot([listener([{"filters": [hcm("be")], "transport_socket": downstream_tls(cert)}])],
                   [cluster("be", [be.port])])
        server, port = await start(cfg, certificate_check_interval=0.05)
        try:
            old = await Client.open(port, pki.client_context(None))
            assert await old.get() == (200, b"backend https")
            first = old.peer_cert()
            pki.workload("web")  # a new certificate and key, renamed over the same files
            await asyncio.sleep(0.1)
            new = await Client.open(port, pki.client_context(None))
            assert await new.get() == (200, b"backend https")
            assert new.peer_cert() != first
            assert await old.get() == (200, b"backend https")  # the open connection keeps going
            assert old.peer_cert() == first
            await old.close()
            await new.close()
        finally:
            await server.stop()


async def test_unloadable_certificate_is_a_config_error_naming_the_field(pki: Pki, tmp_path: Path):
    missing = (str(tmp_path / "nope.pem"), str(tmp_path / "nope-key.pem"))
    cfg = boot([listener([{"filters": [hcm("be")], "transport_socket": downstream_tls(missing)}])],
               [cluster("be", [1])])
    with pytest.raises(ConfigError) as e:
        ProxyServer(from_dict(cfg))
    assert e.value.path.startswith("static_resources.listeners[0].filter_chains[0].transport_socket.typed_config"
                                   ".common_tls_context.tls_certificates[0]")
    bad_upstream = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": UPSTREAM_TLS, "common_tls_context": {"validation_context": {
            "trusted_ca": {"filename": missing[0]}}}}}
    cfg = boot([listener([{"filters": [hcm("be")]}])], [cluster("be", [1], transport_socket=bad_upstream)])
    with pytest.raises(ConfigError) as e:
        ProxyServer(from_dict(cfg))
    assert e.value.path.startswith("static_resources.clusters[0].transport_socket.typed_config")
