"""TLS/mTLS with real sockets on 127.0.0.1: SPIFFE checks, PERMISSIVE/STRICT, rotation; and
the test CA (proxy.engine.pki). The listener tests run on asyncio's loop and on uvloop
(the engine's loop, which reads new connections early: the reason for MSG_PEEK)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import ssl
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.engine import pki
from proxy.engine.tls import (
    PLAINTEXT,
    CertificateStore,
    CertificateValidationContext,
    CommonTlsContext,
    ConnectionSecurity,
    DownstreamTlsContext,
    PeerVerificationError,
    SubjectAltNameMatcher,
    TlsCertificate,
    TlsConfigError,
    TlsParameters,
    TlsSniffingServer,
    UpstreamTls,
    UpstreamTlsContext,
    client_context,
    connection_security,
    from_config,
    looks_like_tls,
    server_context,
    verify_peer,
)

ORDER = pki.spiffe_id("commerce", "order-service")
CART = pki.spiffe_id("commerce", "cart")
ROGUE = pki.spiffe_id("evil", "order-service")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("pki")
    ca = pki.CertificateAuthority.create()
    root, _ = ca.write(d)
    out: dict[str, Any] = {"ca": ca, "root": str(root), "dir": d}
    for name, (ns, sa) in {"server": ("commerce", "cart"), "client": ("commerce", "order-service"),
                           "rogue": ("evil", "order-service")}.items():
        chain, key = ca.issue_workload(ns, sa, dns_names=["cart.commerce.svc.cluster.local"]).write(
            d, prefix=f"{name}-")
        out[name] = TlsCertificate(str(chain), str(key))
    other = pki.CertificateAuthority.create()
    chain, key = other.issue_workload("commerce", "order-service").write(d, prefix="foreign-")
    out["foreign"] = TlsCertificate(str(chain), str(key))
    return out


def mutual_listener(certs: dict[str, Any], *, sans: tuple[SubjectAltNameMatcher, ...] = (),
                    cert: TlsCertificate | None = None) -> DownstreamTlsContext:
    return DownstreamTlsContext(
        CommonTlsContext(
            tls_certificates=(cert or certs["server"],),
            validation_context=CertificateValidationContext(certs["root"], sans),
            alpn_protocols=("h2", "http/1.1"),
        ),
        require_client_certificate=True,
    )


def client_ctx(certs: dict[str, Any], cert: str | None = "client", *,
               sans: tuple[SubjectAltNameMatcher, ...] = ()) -> ssl.SSLContext:
    common = CommonTlsContext(
        tls_certificates=(certs[cert],) if cert else (),
        validation_context=CertificateValidationContext(certs["root"], sans),
        alpn_protocols=("http/1.1",),
    )
    return client_context(UpstreamTlsContext(common, sni="cart.commerce.svc.cluster.local"))


class Greeter(asyncio.Protocol):
    """Says who the peer is, then echoes."""

    def __init__(self, sec: ConnectionSecurity) -> None:
        self.sec = sec

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(f"hello {self.sec.peer_principal or '-'} {self.sec.connection_security_policy} "  # type: ignore[attr-defined]
                        f"{self.sec.tls_version or '-'} {self.sec.sni or '-'}\n".encode())

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    runner = asyncio.run if request.param == "asyncio" else uvloop.run
    return lambda coro: runner(asyncio.wait_for(coro, 10))


async def serve(store: CertificateStore | None, mode: str) -> TlsSniffingServer:
    return await TlsSniffingServer(Greeter, store, mode=mode, detection_timeout=0.5).start("127.0.0.1", 0)


async def greet(port: int, ctx: ssl.SSLContext | None) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    hostname = "cart.commerce.svc.cluster.local" if ctx else None
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=hostname)
    try:
        line = (await r.readline()).decode()
    except (ConnectionResetError, ssl.SSLError):
        line = ""
    return line, r, w


def test_workload_certificate_has_spiffe_uri_san_ec_p256_and_24h(certs: dict[str, Any]) -> None:
    issued = certs["ca"].issue_workload("commerce", "order-service", dns_names=["order.commerce"])
    san = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ORDER]
    assert san.get_values_for_type(x509.DNSName) == ["order.commerce"]
    assert isinstance(issued.key, ec.EllipticCurvePrivateKey) and issued.key.curve.name == "secp256r1"
    life = issued.cert.not_valid_after_utc - issued.cert.not_valid_before_utc
    assert datetime.timedelta(hours=24) <= life <= datetime.timedelta(hours=24, minutes=10)
    issued.cert.verify_directly_issued_by(certs["ca"].cert)
    assert stat.S_IMODE(os.stat(certs["client"].private_key).st_mode) == 0o600
    rsa = certs["ca"].issue_workload("a", "b", key_type="rsa")
    assert rsa.key.key_size == 2048


def test_pki_rejects_bad_names_and_ca_round_trips(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="namespace"):
        pki.spiffe_id("", "sa")
    with pytest.raises(ValueError, match="key_type"):
        pki.new_private_key("dsa")
    ca = pki.CertificateAuthority.create()
    again = pki.CertificateAuthority.load(*ca.write(tmp_path))
    again.issue_workload("ns", "sa").cert.verify_directly_issued_by(ca.cert)


@pytest.mark.parametrize("data,expected", [
    pytest.param(b"\x16\x03\x01\x02\x00", True, id="tls1.0-record-client-hello"),
    pytest.param(b"\x16\x03\x03", True, id="tls1.2-record"),
    pytest.param(b"\x16", None, id="one-byte-undecided"),
    pytest.param(b"\x16\x03", None, id="two-bytes-undecided"),
    pytest.param(b"", None, id="nothing-yet"),
    pytest.param(b"GET / HTTP/1.1\r\n", False, id="http"),
    pytest.param(b"\x16\x02\x00", False, id="not-tls-major"),
    pytest.param(b"\x16\x03\x09", False, id="unknown-minor"),
    pytest.param(b"PRI * HTTP/2.0", False, id="h2c-preface"),
])
def test_looks_like_tls(data: bytes, expected: bool | None) -> None:
    assert looks_like_tls(data) is expected


def test_strict_mutual_accepts_the_right_spiffe_id(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    async def main() -> None:
        store = CertificateStore(mutual_listener(certs, sans=(SubjectAltNameMatcher(exact=ORDER),)))
        server = await serve(store, "STRICT")
        line, r, w = await greet(server.port, client_ctx(certs))
        assert line == f"hello {ORDER} mutual_tls TLSv1.3 cart.commerce.svc.cluster.local\n"
        w.write(b"ping")
        assert await r.readexactly(4) == b"ping"
        sec = connection_security(w.get_extra_info("ssl_object"))
        assert sec.peer_principal == CART and sec.alpn == "http/1.1"
        verify_peer(sec, (SubjectAltNameMatcher(prefix="spiffe://cluster.local/ns/commerce/"),))
        with pytest.raises(PeerVerificationError, match="match none of"):
            verify_peer(sec, (SubjectAltNameMatcher(exact=ORDER),))
        w.close()
        server.close()
        assert server.stats["ssl.handshake"] == 1
    run(main())


def test_wrong_san_no_cert_and_foreign_ca_are_refused(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    async def main() -> None:
        store = CertificateStore(mutual_listener(certs, sans=(SubjectAltNameMatcher(exact=ORDER),)))
        server = await serve(store, "STRICT")
        for cert in ("rogue", None, "foreign"):
            try:
                line, _, w = await greet(server.port, client_ctx(certs, cert))
                w.close()
            except (ssl.SSLError, ConnectionResetError):
                line = ""
            assert line == "", cert
        await asyncio.sleep(0.1)
        server.close()
        assert server.stats["ssl.fail_verify_san"] == 1
        assert server.stats["ssl.fail_verify_no_cert"] + server.stats["ssl.connection_error"] == 2
        assert server.stats["ssl.handshake"] == 0
    run(main())


def test_permissive_takes_tls_and_plaintext_on_one_port(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    async def main() -> None:
        server = await serve(CertificateStore(mutual_listener(certs)), "PERMISSIVE")
        line, _, w = await greet(server.port, client_ctx(certs))
        assert line.startswith(f"hello {ORDER} mutual_tls ")
        w.close()
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await r.readline() == b"hello - none - -\n"
        assert await r.readexactly(18) == b"GET / HTTP/1.1\r\n\r\n"  # the peeked bytes were not lost
        w.close()
        # A server-first client that says nothing is plaintext after the detection timeout.
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        assert await r.readline() == b"hello - none - -\n"
        w.close()
        server.close()
        assert server.stats["plaintext"] == 2 and server.stats["ssl.handshake"] == 1
    run(main())


def test_strict_refuses_plaintext(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    async def main() -> None:
        server = await serve(CertificateStore(mutual_listener(certs)), "STRICT")
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert await r.read() == b""
        except ConnectionResetError:
            pass
        server.close()
        assert server.stats["plaintext_refused"] == 1 and server.stats["plaintext"] == 0
    run(main())


def test_rotation_keeps_open_connections_and_new_ones_get_the_new_cert(
    certs: dict[str, Any], tmp_path: Path, run: Callable[..., Any]
) -> None:
    ca: pki.CertificateAuthority = certs["ca"]
    chain, key = ca.issue_workload("commerce", "cart").write(tmp_path)
    listener = mutual_listener(certs, cert=TlsCertificate(str(chain), str(key)))

    async def main() -> None:
        store = CertificateStore(listener, check_interval=0.0)
        server = await serve(store, "STRICT")
        line, r1, w1 = await greet(server.port, client_ctx(certs))
        assert line.startswith("hello ")
        first_der = w1.get_extra_info("ssl_object").getpeercert(binary_form=True)
        # Rotate to a certificate with another SAN; a bad half-rotation is ignored first.
        Path(chain).write_bytes(b"garbage")
        assert store.reload_if_changed() is False and "tls_certificates[0]" in (store.last_error or "")
        ca.issue_workload("commerce", "cart-v2").write(tmp_path)
        assert store.reload_if_changed() is True and store.generation == 1
        w1.write(b"still here")  # the old connection lives on with its old context
        assert await r1.readexactly(10) == b"still here"
        line, r2, w2 = await greet(server.port, client_ctx(certs))
        assert line.startswith("hello ")
        sec = connection_security(w2.get_extra_info("ssl_object"))
        assert sec.peer_principal == pki.spiffe_id("commerce", "cart-v2")
        assert w2.get_extra_info("ssl_object").getpeercert(binary_form=True) != first_der
        w1.close()
        w2.close()
        server.close()
    run(main())


def test_bad_tls_config_names_the_field(certs: dict[str, Any]) -> None:
    no_ca = DownstreamTlsContext(CommonTlsContext(tls_certificates=(certs["server"],)),
                                 require_client_certificate=True)
    with pytest.raises(TlsConfigError, match="require_client_certificate"):
        server_context(no_ca)
    with pytest.raises(TlsConfigError, match="tls_certificates: a listener needs"):
        server_context(DownstreamTlsContext(CommonTlsContext()))
    bad_version = CommonTlsContext(tls_certificates=(certs["server"],),
                                   tls_params=TlsParameters(tls_minimum_protocol_version="TLSv9"))
    with pytest.raises(TlsConfigError, match="tls_minimum_protocol_version"):
        server_context(DownstreamTlsContext(bad_version))
    missing = CommonTlsContext(tls_certificates=(TlsCertificate("/nonexistent.pem", "/nonexistent.key"),))
    with pytest.raises(TlsConfigError, match=r"tls_certificates\[0\]"):
        server_context(DownstreamTlsContext(missing))
    sans_only = CommonTlsContext(validation_context=CertificateValidationContext(
        None, (SubjectAltNameMatcher(exact=ORDER),)))
    with pytest.raises(TlsConfigError, match="match_typed_subject_alt_names: needs trusted_ca"):
        client_context(UpstreamTlsContext(sans_only))
    with pytest.raises(TlsConfigError, match="exactly one"):
        SubjectAltNameMatcher(exact="a", prefix="b")
    with pytest.raises(TlsConfigError, match="mode"):
        TlsSniffingServer(Greeter, None, mode="MUTUAL")


def test_defaults_are_envoys(certs: dict[str, Any]) -> None:
    ctx = server_context(DownstreamTlsContext(CommonTlsContext(tls_certificates=(certs["server"],))))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode == ssl.CERT_NONE  # SIMPLE: no client certificate asked for
    up = client_context(UpstreamTlsContext(CommonTlsContext()))
    assert up.verify_mode == ssl.CERT_NONE and not up.check_hostname  # no trusted_ca: unverified


@pytest.mark.parametrize("matcher,value,expected", [
    pytest.param(SubjectAltNameMatcher(exact=ORDER), ORDER, True, id="exact"),
    pytest.param(SubjectAltNameMatcher(exact=ORDER), ORDER.upper(), False, id="exact-case"),
    pytest.param(SubjectAltNameMatcher(exact=ORDER, ignore_case=True), ORDER.upper(), True, id="ignore-case"),
    pytest.param(SubjectAltNameMatcher(prefix="spiffe://cluster.local/ns/commerce/"), ORDER, True, id="prefix"),
    pytest.param(SubjectAltNameMatcher(suffix="/sa/order-service"), ROGUE, True, id="suffix"),
    pytest.param(SubjectAltNameMatcher(contains="/ns/evil/"), ORDER, False, id="contains-miss"),
    pytest.param(SubjectAltNameMatcher(safe_regex=r"spiffe://cluster\.local/ns/[a-z]+/sa/cart"), CART, True,
                 id="regex-full"),
    pytest.param(SubjectAltNameMatcher(safe_regex=r"spiffe://cluster\.local/ns/commerce"), CART, False,
                 id="regex-must-match-whole"),
])
def test_san_matchers(matcher: SubjectAltNameMatcher, value: str, expected: bool) -> None:
    assert matcher.matches(value) is expected


def test_from_config_builds_contexts_from_the_bootstrap_model(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    from proxy.engine.config import core, schema

    raw = {
        "common_tls_context": {
            "tls_certificates": [{"certificate_chain": {"filename": certs["server"].certificate_chain},
                                  "private_key": {"filename": certs["server"].private_key}}],
            "validation_context": {
                "trusted_ca": {"inline_string": Path(certs["root"]).read_text()},
                "match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"prefix": "SPIFFE://cluster.local/ns/commerce/",
                                                    "ignore_case": True}}],
            },
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_3"},
            "alpn_protocols": ["http/1.1"],
        },
        "require_client_certificate": True,
    }
    where = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config"
    down = from_config(schema.parse(core.DownstreamTlsContext, raw, where), where)
    assert isinstance(down, DownstreamTlsContext) and down.require_client_certificate
    ca_file = down.common_tls_context.validation_context.trusted_ca  # type: ignore[union-attr]
    assert ca_file and stat.S_IMODE(os.stat(ca_file).st_mode) == 0o600
    assert server_context(down).minimum_version == ssl.TLSVersion.TLSv1_3

    async def main() -> None:
        server = await serve(CertificateStore(down), "STRICT")
        line, _, w = await greet(server.port, client_ctx(certs))
        assert line.startswith(f"hello {ORDER} mutual_tls TLSv1.3")
        w.close()
        line, _, w = await greet(server.port, client_ctx(certs, "rogue"))
        assert line == ""
        server.close()
    run(main())

    raw["common_tls_context"]["tls_params"] = {"cipher_suites": ["NOT-A-CIPHER"]}  # type: ignore[index]
    with pytest.raises(TlsConfigError, match=rf"{re.escape(where)}\.common_tls_context\.tls_params\.cipher_suites"):
        from_config(schema.parse(core.DownstreamTlsContext, raw, where), where)
    raw["common_tls_context"]["validation_context"]["trust_chain_verification"] = "ACCEPT_UNTRUSTED"  # type: ignore[index]
    with pytest.raises(TlsConfigError, match="trust_chain_verification"):
        from_config(schema.parse(core.DownstreamTlsContext, raw, where), where)
    up_raw = {"sni": "cart.commerce.svc.cluster.local",
              "common_tls_context": {"validation_context": {"trusted_ca": {"filename": certs["root"]}}}}
    up = from_config(schema.parse(core.UpstreamTlsContext, up_raw, "c"), "c")
    assert isinstance(up, UpstreamTlsContext) and up.sni == "cart.commerce.svc.cluster.local"


def test_upstream_tls_checks_the_servers_spiffe_id(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    simple = DownstreamTlsContext(CommonTlsContext(tls_certificates=(certs["server"],)), require_sni=True)

    def upstream(matcher: str) -> UpstreamTls:
        return UpstreamTls(UpstreamTlsContext(CommonTlsContext(
            validation_context=CertificateValidationContext(certs["root"], (SubjectAltNameMatcher(exact=matcher),))),
            sni="cart.commerce.svc.cluster.local"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Greeter(PLAINTEXT), "127.0.0.1", 0, ssl=server_context(simple))
        port = server.sockets[0].getsockname()[1]
        for matcher, ok in ((CART, True), (ORDER, False)):
            up = upstream(matcher)
            transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=up.context(),
                                                        server_hostname=up.server_hostname("127.0.0.1"))
            if ok:
                sec = up.verify(transport)
                assert sec.peer_principal == CART and sec.mutual is not False
            else:
                with pytest.raises(PeerVerificationError, match="match none of"):
                    up.verify(transport)
            transport.close()
        # require_sni: a client sending no SNI (an IP address as the host) is refused.
        no_sni = client_context(UpstreamTlsContext(CommonTlsContext()))
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=no_sni)
        server.close()
        await server.wait_closed()
    run(main())


def test_partial_header_waits_and_silent_clients_time_out(certs: dict[str, Any], run: Callable[..., Any]) -> None:
    async def main() -> None:
        permissive = await serve(CertificateStore(mutual_listener(certs)), "PERMISSIVE")
        r, w = await asyncio.open_connection("127.0.0.1", permissive.port)
        w.write(b"\x16")  # could still be TLS: undecided until more comes
        await asyncio.sleep(0.05)
        assert permissive.stats["plaintext"] == 0 and len(permissive._peeking) == 1
        w.write(b"\x03\x09 not tls")
        assert await r.readline() == b"hello - none - -\n"
        assert await r.readexactly(11) == b"\x16\x03\x09 not tls"
        w.close()
        # A client that leaves before saying anything is forgotten (no watcher left behind).
        _, w = await asyncio.open_connection("127.0.0.1", permissive.port)
        w.close()
        await asyncio.sleep(0.05)
        assert permissive._peeking == {}
        permissive.close()
        strict = await serve(CertificateStore(mutual_listener(certs)), "STRICT")
        r, w = await asyncio.open_connection("127.0.0.1", strict.port)  # says nothing
        try:
            assert await asyncio.wait_for(r.read(), 2) == b""
        except ConnectionResetError:
            pass
        assert strict.stats["plaintext_refused"] == 1
        w.close()
        strict.close()
    run(main())


def test_disable_takes_plaintext_without_peeking(run: Callable[..., Any]) -> None:
    async def main() -> None:
        server = await TlsSniffingServer(Greeter, None, mode="DISABLE").start("127.0.0.1", 0, reuse_port=True)
        twin = await TlsSniffingServer(Greeter, None, mode="DISABLE").start("127.0.0.1", server.port,
                                                                            reuse_port=True)
        twin.close()
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        assert await r.readline() == b"hello - none - -\n"  # before the client sent anything
        w.write(b"\x16\x03\x01")
        assert await r.readexactly(3) == b"\x16\x03\x01"
        w.close()
        server.close()
    run(main())


def test_ca_signs_a_workloads_csr_only_for_its_own_identity(certs: dict[str, Any], tmp_path: Path) -> None:
    ca: pki.CertificateAuthority = certs["ca"]
    key = pki.new_private_key()
    csr = pki.new_csr(key, uris=[ORDER], dns_names=["order.commerce"])
    chain = ca.sign_csr(csr, identity=ORDER)
    leaf = x509.load_pem_x509_certificates(chain)[0]
    leaf.verify_directly_issued_by(ca.cert)
    assert leaf.public_key() == key.public_key()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ORDER]
    with pytest.raises(ValueError, match="the caller is"):
        ca.sign_csr(csr, identity=CART)
    with pytest.raises(ValueError, match="not a PEM certificate request"):
        ca.sign_csr(b"junk")


def test_pki_command_writes_a_ca_and_workload_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki.main(["--out", str(tmp_path), "--workload", "commerce/cart", "--dns", "localhost"])
    root = (tmp_path / "root-cert.pem").read_bytes()
    pki.main(["--out", str(tmp_path), "--workload", "commerce/order"])  # the same CA is reused
    assert (tmp_path / "root-cert.pem").read_bytes() == root
    chain = x509.load_pem_x509_certificates((tmp_path / "commerce.order-cert-chain.pem").read_bytes())
    chain[0].verify_directly_issued_by(x509.load_pem_x509_certificate(root))
    assert f"{CART}:" in capsys.readouterr().out


def test_openssl_client_interoperates(certs: dict[str, Any]) -> None:
    """Not only Python's ssl: OpenSSL's own client with the workload certificate gets in on
    a STRICT listener with a SAN check, and without a certificate does not."""
    import shutil

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")

    async def client(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            openssl, "s_client", "-quiet", "-CAfile", certs["root"], *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert proc.stdout is not None and proc.stdin is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 5)
        finally:
            proc.stdin.close()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        return line.decode()

    async def main() -> None:
        store = CertificateStore(mutual_listener(certs, sans=(SubjectAltNameMatcher(exact=ORDER),)))
        server = await serve(store, "STRICT")
        target = ("-connect", f"127.0.0.1:{server.port}", "-servername", "cart.commerce.svc.cluster.local")
        ok = await client(*target, "-cert", certs["client"].certificate_chain, "-key", certs["client"].private_key)
        assert ok == f"hello {ORDER} mutual_tls TLSv1.3 cart.commerce.svc.cluster.local\n"
        assert await client(*target) == ""
        assert await client(*target, "-cert", certs["rogue"].certificate_chain,
                            "-key", certs["rogue"].private_key) == ""
        server.close()
        assert server.stats["ssl.handshake"] == 1 and server.stats["ssl.fail_verify_san"] == 1
    uvloop.run(main())
