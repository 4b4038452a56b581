"""tcp_proxy in the running proxy on loopback: relaying an echo server's bytes (and a
large transfer, with half-close), connect failures, connect attempts on another host,
weighted clusters, idle timeout, the observer hook, and tcp_proxy behind TLS (the
examples/envoy/mtls.json inbound listener, PERMISSIVE)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import ssl
from pathlib import Path

import pytest

from proxy.engine.config import from_dict
from proxy.engine.server import ProxyServer
from proxy.engine.tcp import TcpProxyFilter, TcpProxySession
from tests.proxy.engine.test_server_tls import FRONTEND, Pki, boot, cluster, listener, start, tcp_proxy


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "envoy" / "mtls.json"


class Echo:
    """A TCP server: sends `banner` on connect, echoes every byte, closes after EOF."""

    def __init__(self, banner: bytes = b"") -> None:
        self.banner, self.port, self.connections = banner, 0, 0
        self.server: asyncio.Server | None = None

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.banner:
            w.write(self.banner)
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    async def __aenter__(self) -> Echo:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_boot(clusters: list[dict], **proxy: object) -> dict:
    cfg = tcp_proxy(clusters[0]["name"], "echo", **proxy)
    if "weighted_clusters" in proxy:
        del cfg["typed_config"]["cluster"]
    return boot([listener([{"filters": [cfg]}])], clusters)


async def test_relays_bytes_both_ways_with_a_large_transfer_and_half_close():
    async with Echo() as echo:
        server, port = await start(tcp_boot([cluster("echo", [echo.port])]))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"hello")
            assert await asyncio.wait_for(r.readexactly(5), 5) == b"hello"
            payload = random.Random(1).randbytes(8 * 1024 * 1024)
            w.write(payload)
            w.write_eof()  # half-close: the echo answers everything, then closes
            got = await asyncio.wait_for(r.read(-1), 20)
            assert got == payload
            w.close()
            await asyncio.sleep(0.05)
            total = 5 + len(payload)
            assert server.stats.value("tcp.echo.downstream_cx_total") == 1
            assert server.stats.value("tcp.echo.downstream_cx_rx_bytes_total") == total
            assert server.stats.value("tcp.echo.downstream_cx_tx_bytes_total") == total
            assert server.stats.value("cluster.echo.upstream_cx_total") == 1
        finally:
            await server.stop(drain_timeout=0.5)


async def test_connect_failure_closes_the_client():
    server, port = await start(tcp_boot([cluster("dead", [free_port(), free_port()])], max_connect_attempts=2))
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed without a byte
        w.close()
        assert server.stats.value("cluster.dead.upstream_cx_connect_fail") == 2
        assert server.stats.value("cluster.dead.upstream_cx_connect_attempts_exceeded") == 1
    finally:
        await server.stop(drain_timeout=0.5)


async def test_a_failed_connect_attempt_tries_another_host():
    async with Echo(b"up") as echo:
        server, port = await start(tcp_boot([cluster("mixed", [free_port(), echo.port])], max_connect_attempts=2))
        try:
            for _ in range(4):  # round robin: connections also start on the dead host
                r, w = await asyncio.open_connection("127.0.0.1", port)
                assert await asyncio.wait_for(r.readexactly(2), 5) == b"up"
                w.close()
            assert echo.connections == 4
            assert server.stats.value("cluster.mixed.upstream_cx_connect_fail") >= 1  # and each was retried
            assert server.stats.value("cluster.mixed.upstream_cx_connect_attempts_exceeded") == 0
        finally:
            await server.stop(drain_timeout=0.5)


async def test_weighted_clusters_split_connections_by_weight():
    async with Echo(b"A") as a, Echo(b"B") as b:
        weighted = {"clusters": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}]}
        server, port = await start(tcp_boot([cluster("a", [a.port]), cluster("b", [b.port])],
                                            weighted_clusters=weighted))
        try:
            n, seen = 200, {b"A": 0, b"B": 0}
            for _ in range(n):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                seen[await asyncio.wait_for(r.readexactly(1), 5)] += 1
                w.close()
            sd = math.sqrt(n * 0.25 * 0.75)
            assert abs(seen[b"B"] - n * 0.25) < 4.5 * sd, seen
        finally:
            await server.stop(drain_timeout=0.5)


async def test_idle_timeout_closes_a_quiet_connection():
    async with Echo() as echo:
        server, port = await start(tcp_boot([cluster("echo", [echo.port])], idle_timeout="0.2s"))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):  # activity keeps it open past the timeout
                w.write(b"x")
                assert await asyncio.wait_for(r.readexactly(1), 5) == b"x"
                await asyncio.sleep(0.1)
            assert await asyncio.wait_for(r.read(), 2) == b""
            assert server.stats.value("tcp.echo.idle_timeout") == 1
            w.close()
        finally:
            await server.stop(drain_timeout=0.5)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def opened(self, s: TcpProxySession) -> None:
        self.events.append(("opened", 0, 0))

    def data(self, s: TcpProxySession, received: int, sent: int) -> None:
        self.events.append(("data", received, sent))

    def closed(self, s: TcpProxySession) -> None:
        self.events.append(("closed", s.bytes_received, s.bytes_sent))


async def test_observers_see_open_bytes_and_close():
    async with Echo() as echo:
        server, port = await start(tcp_boot([cluster("echo", [echo.port])]))
        rec = Recorder()
        for lst in server.current.listeners:  # the hook the telemetry wiring uses
            for chain in lst.chains.values():
                f = chain.network_filter
                assert isinstance(f, TcpProxyFilter)
                f.observers.append(rec)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"abcdef")
            assert await asyncio.wait_for(r.readexactly(6), 5) == b"abcdef"
            w.close()
            for _ in range(100):
                if rec.events and rec.events[-1][0] == "closed":
                    break
                await asyncio.sleep(0.01)
            assert rec.events[0] == ("opened", 0, 0) and rec.events[-1] == ("closed", 6, 6)
            assert sum(e[1] for e in rec.events if e[0] == "data") == 6
            assert sum(e[2] for e in rec.events if e[0] == "data") == 6
        finally:
            await server.stop(drain_timeout=0.5)


def example_config(pki: Pki, backend_port: int) -> dict:
    """examples/envoy/mtls.json with the certificate files and ports of this test."""
    text = EXAMPLE.read_text()
    chain, key = pki.workload("order-service")
    text = (text.replace("/etc/certs/cert-chain.pem", chain).replace("/etc/certs/key.pem", key)
            .replace("/etc/certs/root-cert.pem", str(pki.root)))
    cfg = json.loads(text)
    cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = 0
    inbound = cfg["static_resources"]["clusters"][0]
    inbound["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"][
        "portValue"] = backend_port
    return cfg


async def test_example_mtls_inbound_listener_is_permissive_tcp_proxy(pki: Pki):
    async with Echo() as echo:
        server = ProxyServer(from_dict(example_config(pki, echo.port)))
        await server.start()
        port = server.addresses()[0][1]
        try:
            # mTLS with Istio's ALPN: the "inbound_mtls" chain, TLS terminated, plaintext upstream
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=pki.client_context("frontend", alpn=["istio"]))
            w.write(b"over mtls")
            assert await asyncio.wait_for(r.readexactly(9), 5) == b"over mtls"
            sessions = [s for s in server.current.tcp_sessions if not s.closed]
            assert [s.security.peer_principal for s in sessions] == [FRONTEND]
            w.close()
            # plaintext on the same port: the raw_buffer chain
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"plain")
            assert await asyncio.wait_for(r.readexactly(5), 5) == b"plain"
            w.close()
            # TLS without Istio's ALPN matches no chain: closed
            with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=pki.client_context("frontend"))
                w.write(b"x")
                await asyncio.wait_for(r.readexactly(1), 5)
            await asyncio.sleep(0.05)
            assert server.stats.value("tcp.inbound_tcp.downstream_cx_total") == 1
            assert server.stats.value("tcp.inbound_tcp_plain.downstream_cx_total") == 1
            assert server.stats.value(f"listener.127.0.0.1_{port}.no_filter_chain_match") == 1
        finally:
            await server.stop(drain_timeout=0.5)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s series whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_istio_tcp_metrics_count_connections_and_bytes(pki: Pki):
    async with Echo() as echo:
        server = ProxyServer(from_dict(example_config(pki, echo.port)))
        await server.start()
        port = server.addresses()[0][1]
        try:
            for ctx, payload in ((pki.client_context("frontend", alpn=["istio"]), b"secure"), (None, b"plain-text")):
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
                w.write(payload)
                assert await asyncio.wait_for(r.readexactly(len(payload)), 5) == payload
                w.close()
            await asyncio.sleep(0.1)
            text = server.telemetry.render_prometheus()
            mtls = {"connection_security_policy": "mutual_tls", "source_principal": FRONTEND}
            assert metric(text, "istio_tcp_connections_opened_total", **mtls) == 1
            assert metric(text, "istio_tcp_connections_closed_total", **mtls) == 1
            assert metric(text, "istio_tcp_received_bytes_total", **mtls) == 6
            assert metric(text, "istio_tcp_sent_bytes_total", **mtls) == 6
            assert metric(text, "istio_tcp_received_bytes_total", connection_security_policy="none") == 10
        finally:
            await server.stop(drain_timeout=0.5)


async def test_access_log_writes_one_json_line_per_connection(tmp_path: Path):
    log = tmp_path / "tcp.log"
    fmt = {"flags": "%RESPONSE_FLAGS%", "rx": "%BYTES_RECEIVED%", "tx": "%BYTES_SENT%",
           "cluster": "%UPSTREAM_CLUSTER%", "upstream": "%UPSTREAM_HOST%", "protocol": "%PROTOCOL%"}
    access_log = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(log), "log_format": {"json_format": fmt}}}]
    async with Echo() as echo:
        dead = free_port()
        server, port = await start(tcp_boot([cluster("echo", [echo.port])], access_log=access_log))
        bad, bad_port = await start(tcp_boot([cluster("dead", [dead])], access_log=access_log))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"ping!")
            assert await asyncio.wait_for(r.readexactly(5), 5) == b"ping!"
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", bad_port)
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()
            await asyncio.sleep(0.2)
        finally:
            await server.stop(drain_timeout=0.5)
            await bad.stop(drain_timeout=0.5)
        lines = sorted((json.loads(x) for x in log.read_text().splitlines()), key=lambda d: d["cluster"])
        assert lines == [
            {"flags": "UF", "rx": 0, "tx": 0, "cluster": "dead", "upstream": f"127.0.0.1:{dead}", "protocol": None},
            {"flags": "-", "rx": 5, "tx": 5, "cluster": "echo", "upstream": f"127.0.0.1:{echo.port}",
             "protocol": None}]
