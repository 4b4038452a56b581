"""HTTP/2 downstream (h2c with prior knowledge, h2 over TLS by ALPN) through ProxyServer
to HTTP/1.1 aiohttp backends on loopback, driven by a real HTTP/2 client: the `h2`
package's client side over an asyncio socket (and curl, which speaks HTTP/2 with
nghttp2), so flow control, concurrent streams and GOAWAY are the wire's."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from pathlib import Path

import aiohttp
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from aiohttp import web

from proxy.engine.config import from_dict
from proxy.engine.http2 import Http2Connection
from proxy.engine.pki import CertificateAuthority
from proxy.engine.server import ProxyServer
from tests.proxy.engine.test_server import Backend, bootstrap

DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


class H2Client:
    """A minimal HTTP/2 client: one connection, any number of concurrent requests.
    `window`: the stream window it grants the server; `auto_ack=False` leaves received
    data unacknowledged until `ack()` (a client that reads slowly)."""

    def __init__(self, *, window: int = 65535, auto_ack: bool = True) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window, h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.auto_ack = auto_ack
        self.responses: dict[int, dict] = {}
        self.done: dict[int, asyncio.Future] = {}
        self.window_open = asyncio.Event()
        self.goaway: tuple[int, int] | None = None  # (last_stream_id, error_code)
        self.unacked: list[tuple[int, int]] = []
        self.sent: dict[int, int] = {}  # request body bytes sent, by stream

    async def connect(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None = None) -> H2Client:
        self.reader, self.writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
        self.conn.initiate_connection()
        self._send()
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    def _send(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def _read(self) -> None:
        buf = b""
        while True:
            data = await self.reader.read(65536)
            if not data:
                break
            buf, data = self._without_goaway(buf + data)
            for ev in self.conn.receive_data(data):
                self._event(ev)
            self._send()
        for fut in self.done.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))

    def _without_goaway(self, buf: bytes) -> tuple[bytes, bytes]:
        """(the incomplete last frame, the complete frames but GOAWAY). A GOAWAY is noted
        here: h2's client state machine refuses the frames of open streams after one,
        which a graceful drain still sends."""
        out, at = [], 0
        while len(buf) - at >= 9:
            size = int.from_bytes(buf[at:at + 3], "big") + 9
            if len(buf) - at < size:
                break
            frame = buf[at:at + size]
            if frame[3] == 0x7:
                self.goaway = (int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF, int.from_bytes(frame[13:17], "big"))
            else:
                out.append(frame)
            at += size
        return buf[at:], b"".join(out)

    def _event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.ResponseReceived):
            self.responses[ev.stream_id]["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.responses[ev.stream_id]["body"].append(ev.data)
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            else:
                self.unacked.append((ev.flow_controlled_length, ev.stream_id))
        elif isinstance(ev, h2.events.StreamEnded):
            self.done[ev.stream_id].set_result(None)
        elif isinstance(ev, h2.events.StreamReset):
            self.done[ev.stream_id].set_exception(ConnectionResetError(f"reset {ev.error_code!r}"))
        elif isinstance(ev, h2.events.WindowUpdated):
            self.window_open.set()

    def ack(self) -> None:
        self.auto_ack = True
        for n, sid in self.unacked:
            self.conn.acknowledge_received_data(n, sid)
        self.unacked.clear()
        self._send()

    def start(self, method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
              authority: str = "example.com") -> int:
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority)]
        hs += headers or []
        self.responses[sid] = {"body": []}
        self.done[sid] = asyncio.get_running_loop().create_future()
        self.conn.send_headers(sid, [(n.encode(), v.encode()) for n, v in hs], end_stream=not body)
        self._send()
        if body:
            asyncio.get_running_loop().create_task(self._send_body(sid, body))
        return sid

    async def _send_body(self, sid: int, body: bytes) -> None:
        while body:
            n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, len(body))
            if n <= 0:
                self.window_open.clear()
                await self.window_open.wait()
                continue
            self.conn.send_data(sid, body[:n])
            self.sent[sid] = self.sent.get(sid, 0) + n
            body = body[n:]
            self._send()
            await self.writer.drain()
        self.conn.end_stream(sid)
        self._send()

    async def result(self, sid: int, timeout: float = 10.0) -> tuple[int, dict, bytes]:
        await asyncio.wait_for(self.done[sid], timeout)
        r = self.responses[sid]
        return int(r["headers"][b":status"]), r["headers"], b"".join(r["body"])

    async def request(self, method: str, path: str, body: bytes = b"", **kw: object) -> tuple[int, dict, bytes]:
        return await self.result(self.start(method, path, body, **kw))  # type: ignore[arg-type]

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()


class EchoBackend(Backend):
    """Answers with the request body's length and digest (or `size` bytes for /big)."""

    def __init__(self, name: str, *, status: int = 200, size: int = 0) -> None:
        super().__init__(name, status=status)
        self.size = size
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        body = await request.read()
        self.bodies.append(body)
        if request.path == "/big":
            resp = web.StreamResponse(headers={"content-length": str(self.size)})
            await resp.prepare(request)
            chunk = bytes(range(256)) * 256
            left = self.size
            while left:
                await resp.write(chunk[:left])
                left -= min(left, len(chunk))
            return resp
        return web.Response(status=self.status, text=f"{self.name} {request.method} {request.path} {len(body)} "
                                                     f"{hashlib.sha256(body).hexdigest()[:16]}")


def route(cluster: str = "a", **extra: object) -> list[dict]:
    return [{"match": {"prefix": "/"}, "route": {"cluster": cluster, **extra}}]


async def start(cfg: dict) -> tuple[ProxyServer, int]:
    server = ProxyServer(from_dict(cfg))
    await server.start()
    return server, server.addresses()[0][1]


async def test_h2c_get_and_post_reach_an_http1_backend_and_count_http2():
    async with EchoBackend("a") as a:
        server, port = await start(bootstrap(route(), {"a": [a.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            status, headers, body = await c.request("GET", "/hello?x=1")
            assert (status, body.split()[:3]) == (200, [b"a", b"GET", b"/hello"])
            assert headers[b"server"] == b"envoy" and b"x-envoy-upstream-service-time" in headers
            payload = b"p" * 100_000
            status, _, body = await c.request("POST", "/upload", payload)
            assert status == 200
            assert body.split()[3:] == [b"100000", hashlib.sha256(payload).hexdigest()[:16].encode()]
            assert a.bodies[-1] == payload
            st = server.stats
            assert st.value("http.ingress.downstream_cx_http2_total") == 1
            assert st.value("http.ingress.downstream_rq_total") == 2
        finally:
            await c.close()
            await server.stop()


async def test_h2c_with_curl_prior_knowledge_and_cookies_joined_for_http1():
    seen: list[str] = []

    class Cookies(Backend):
        async def handle(self, request: web.Request) -> web.Response:
            seen.append(request.headers.get("cookie", ""))
            return web.Response(text=f"host={request.host}")

    async with Cookies("a") as a:
        server, port = await start(bootstrap(route(), {"a": [a.port]}))
        try:
            p = await asyncio.create_subprocess_exec(
                "curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}", "-H", "cookie: a=1",
                "-H", "cookie: b=2", f"http://127.0.0.1:{port}/c", stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(p.communicate(), 10)
            assert out.decode() == f"host=127.0.0.1:{port} 2"
            assert seen == ["a=1; b=2"]
        finally:
            await server.stop()


async def test_many_concurrent_streams_on_one_connection():
    async with Backend("a", delay=0.05) as a:
        server, port = await start(bootstrap(route(), {"a": [a.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            sids = [c.start("GET", f"/s{i}") for i in range(60)]
            results = await asyncio.gather(*(c.result(s) for s in sids))
            assert [(st, b) for st, _, b in results] == [(200, f"a /s{i}".encode()) for i in range(60)]
            assert a.hits == 60
            assert server.stats.value("http.ingress.downstream_cx_total") == 1
        finally:
            await c.close()
            await server.stop()


async def test_large_response_respects_the_client_window_and_pauses_the_upstream():
    size = 8 * 1024 * 1024
    async with EchoBackend("a", size=size) as a:
        server, port = await start(bootstrap(route(), {"a": [a.port]}))
        c = await H2Client(auto_ack=False).connect("127.0.0.1", port)
        try:
            sid = c.start("GET", "/big")
            stream = None
            for _ in range(100):  # the client acknowledges nothing: the proxy must hold the rest
                await asyncio.sleep(0.05)
                conn = next((x for x in server.current.connections if isinstance(x, Http2Connection)), None)
                stream = conn.streams.get(sid) if conn is not None else None
                if stream is not None and stream._blocked:
                    break
            # buffered per stream up to the buffer limit, then the upstream stops being read
            assert stream is not None and stream._blocked
            await asyncio.sleep(0.2)
            assert 1024 * 1024 < stream._out_bytes < 3 * 1024 * 1024
            assert sum(len(b) for b in c.responses[sid]["body"]) == 65535  # only the client's window went out
            c.ack()
            status, headers, body = await c.result(sid, timeout=20)
            assert status == 200 and headers[b"content-length"] == str(size).encode()
            expect = (bytes(range(256)) * 256) * (size // 65536)
            assert len(body) == size and body == expect
        finally:
            await c.close()
            await server.stop()


async def test_local_reply_404_nr_and_503_from_a_dead_upstream():
    dead = 1  # nothing listens on port 1 of loopback
    routes = [{"match": {"prefix": "/dead"}, "route": {"cluster": "dead"}}]
    server, port = await start(bootstrap(routes, {"dead": [dead]}))
    c = await H2Client().connect("127.0.0.1", port)
    try:
        status, headers, body = await c.request("GET", "/nothing")
        assert (status, body, headers[b"server"]) == (404, b"", b"envoy")
        status, _, body = await c.request("POST", "/dead", b"x" * 1000)
        assert status == 503 and body.startswith(b"upstream connect error or disconnect/reset before headers")
        assert server.stats.value("http.ingress.no_route") == 1
        assert server.stats.value("http.ingress.downstream_rq_5xx") == 1
    finally:
        await c.close()
        await server.stop()


async def test_retry_replays_the_h2_request_body_to_another_host():
    async with EchoBackend("bad", status=503) as bad, EchoBackend("good") as good:
        routes = route("c", retry_policy={"retry_on": "5xx", "num_retries": 2, "retry_host_predicate": [
            {"name": "envoy.retry_host_predicates.previous_hosts"}]})
        server, port = await start(bootstrap(routes, {"c": [bad.port, good.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            payload = bytes(range(256)) * 200
            for _ in range(4):  # round robin starts on either host: both orders happen
                status, _, body = await c.request("PUT", "/doc", payload)
                assert status == 200 and body.split()[0] == b"good"
            assert bad.hits >= 1 and all(b == payload for b in bad.bodies + good.bodies)
            assert server.stats.value("cluster.c.upstream_rq_retry") == bad.hits
        finally:
            await c.close()
            await server.stop()


async def test_http1_still_served_on_the_same_auto_listener():
    async with Backend("a") as a:
        server, port = await start(bootstrap(route(), {"a": [a.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{port}/one") as r:
                    assert (r.status, r.version.major, await r.text()) == (200, 1, "a /one")
            assert (await c.request("GET", "/two"))[2] == b"a /two"
            st = server.stats
            assert st.value("http.ingress.downstream_cx_http1_total") == 1
            assert st.value("http.ingress.downstream_cx_http2_total") == 1
        finally:
            await c.close()
            await server.stop()


async def test_codec_http1_refuses_the_h2_preface_and_codec_http2_serves_it():
    async with Backend("a") as a:
        cfg = bootstrap(route(), {"a": [a.port]})
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["codec_type"] = "HTTP1"
        server, port = await start(cfg)
        try:
            c = await H2Client().connect("127.0.0.1", port)
            with pytest.raises((ConnectionError, asyncio.TimeoutError)):  # an HTTP/1.1 400 comes back
                await c.result(c.start("GET", "/x"), timeout=1)
            await c.close()
        finally:
            await server.stop()
        hcm["codec_type"] = "HTTP2"
        server, port = await start(cfg)
        try:
            c = await H2Client().connect("127.0.0.1", port)
            assert (await c.request("GET", "/x"))[2] == b"a /x"
            await c.close()
        finally:
            await server.stop()


def tls_bootstrap(cfg: dict, tmp_path: Path, alpn: list[str]) -> dict:
    ca = CertificateAuthority.create()
    chain, key = ca.issue_workload("commerce", "gateway").write(tmp_path / "gw")
    ca.write(tmp_path)
    chain_cfg = cfg["static_resources"]["listeners"][0]["filter_chains"][0]
    chain_cfg["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": DOWNSTREAM_TLS, "common_tls_context": {
            "alpn_protocols": alpn,
            "tls_certificates": [{"certificate_chain": {"filename": str(chain)},
                                  "private_key": {"filename": str(key)}}]}}}
    return cfg


def client_tls(alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    return ctx


async def test_alpn_h2_over_a_simple_tls_listener(tmp_path: Path):
    async with EchoBackend("a") as a:
        server, port = await start(tls_bootstrap(bootstrap(route(), {"a": [a.port]}), tmp_path, ["h2", "http/1.1"]))
        c = await H2Client().connect("127.0.0.1", port, client_tls(["h2", "http/1.1"]))
        try:
            assert c.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
            status, _, body = await c.request("POST", "/tls", b"secret")
            assert status == 200 and body.split()[:4] == [b"a", b"POST", b"/tls", b"6"]
            p = await asyncio.create_subprocess_exec(
                "curl", "-sk", "--http2", "-w", " %{http_version}", f"https://127.0.0.1:{port}/curl",
                stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(p.communicate(), 10)
            assert out.decode().split()[-1] == "2"
            async with aiohttp.ClientSession() as s:  # a client offering http/1.1 alone still gets it
                async with s.get(f"https://127.0.0.1:{port}/h1", ssl=client_tls(["http/1.1"])) as r:
                    assert (r.status, r.version.major) == (200, 1)
            st = server.stats
            assert st.value("http.ingress.downstream_cx_ssl_total") == 3
            assert st.value("http.ingress.downstream_cx_http2_total") == 2
        finally:
            await c.close()
            await server.stop()


async def test_alpn_keeps_h2_off_for_codec_http1(tmp_path: Path):
    async with Backend("a") as a:
        cfg = bootstrap(route(), {"a": [a.port]})
        cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["codec_type"] = \
            "HTTP1"
        server, port = await start(tls_bootstrap(cfg, tmp_path, ["h2", "http/1.1"]))
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls(["h2", "http/1.1"]))
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
            writer.close()
        finally:
            await server.stop()


async def test_config_swap_drains_an_h2_connection_with_goaway_and_finishes_its_streams():
    async with Backend("slow", delay=0.6) as slow, Backend("new") as new:
        server, port = await start(bootstrap(route(), {"a": [slow.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            sids = [c.start("GET", f"/s{i}") for i in range(3)]
            await asyncio.sleep(0.2)  # the three are at the backend
            cfg2 = bootstrap(route(), {"a": [new.port]})
            cfg2["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
            await server.swap(from_dict(cfg2))
            await asyncio.sleep(0.1)
            assert c.goaway == (sids[-1], 0)  # NO_ERROR, and every stream sent so far is taken
            late = c.start("GET", "/late")  # crossed the GOAWAY: refused, so a client may retry it
            with pytest.raises(ConnectionResetError, match="REFUSED_STREAM"):
                await c.result(late)
            results = await asyncio.gather(*(c.result(s) for s in sids))
            assert [(st, b) for st, _, b in results] == [(200, f"slow /s{i}".encode()) for i in range(3)]
            await asyncio.wait_for(c.task, 2)  # then the proxy closes the connection
            c2 = await H2Client().connect("127.0.0.1", port)
            assert (await c2.request("GET", "/after"))[2] == b"new /after"
            await c2.close()
        finally:
            await c.close()
            await server.stop()


async def test_tls_without_alpn_tells_h2_by_the_preface(tmp_path: Path):
    async with Backend("a") as a:
        server, port = await start(tls_bootstrap(bootstrap(route(), {"a": [a.port]}), tmp_path, []))
        c = await H2Client().connect("127.0.0.1", port, client_tls(["h2"]))
        try:
            assert c.writer.get_extra_info("ssl_object").selected_alpn_protocol() is None  # none offered
            assert (await c.request("GET", "/x"))[:3:2] == (200, b"a /x")
        finally:
            await c.close()
            await server.stop()


async def test_access_log_says_http2_and_counts_body_bytes(tmp_path: Path):
    log = tmp_path / "access.json"
    async with EchoBackend("a") as a:
        cfg = bootstrap(route(), {"a": [a.port]})
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log),
            "log_format": {"json_format": {"protocol": "%PROTOCOL%", "code": "%RESPONSE_CODE%",
                                           "received": "%BYTES_RECEIVED%", "sent": "%BYTES_SENT%",
                                           "authority": "%REQ(:AUTHORITY)%"}}}}]
        server, port = await start(cfg)
        c = await H2Client().connect("127.0.0.1", port)
        try:
            status, _, body = await c.request("POST", "/log", b"z" * 1234, authority="shop.example")
            assert status == 200
        finally:
            await c.close()
            await server.stop(1)
            await server.telemetry.aclose()
    line = json.loads(log.read_text().splitlines()[0])
    assert line == {"protocol": "HTTP/2", "code": 200, "received": 1234, "sent": len(body), "authority": "shop.example"}


async def test_large_upload_head_request_and_a_client_reset_leave_the_connection_usable():
    async with EchoBackend("a") as a, Backend("slow", delay=1.0) as slow:
        routes = [{"match": {"prefix": "/slow"}, "route": {"cluster": "slow"}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]
        server, port = await start(bootstrap(routes, {"a": [a.port], "slow": [slow.port]}))
        c = await H2Client().connect("127.0.0.1", port)
        try:
            payload = bytes(range(251)) * 4000  # ~1 MB (aiohttp's limit), many 16 KiB frames
            status, _, body = await c.request("POST", "/up", payload)
            assert status == 200 and body.split()[3] == str(len(payload)).encode() and a.bodies[-1] == payload
            status, headers, body = await c.request("HEAD", "/head")
            assert (status, body) == (200, b"") and int(headers[b"content-length"]) > 0
            sid = c.start("GET", "/slow")
            await asyncio.sleep(0.2)  # at the backend
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c._send()
            await asyncio.sleep(0.1)
            conn = next(x for x in server.current.connections if isinstance(x, Http2Connection))
            assert sid not in conn.streams
            assert server.clusters["slow"].active_requests == 0  # the flow saw the reset (DC), let the host go
            assert (await c.request("GET", "/after"))[2] == b"a GET /after 0 " + \
                hashlib.sha256(b"").hexdigest()[:16].encode()
        finally:
            await c.close()
            await server.stop()


async def test_upload_to_a_stalled_upstream_closes_the_client_window(monkeypatch: pytest.MonkeyPatch):
    """Request DATA is acknowledged only as the upstream takes it: with the backend not
    reading, the client's window runs out instead of the proxy buffering the body."""
    import functools

    from proxy.engine import http2  # the listener imports Http2Connection from it at each HTTP/2 connection
    monkeypatch.setattr(http2, "Http2Connection", functools.partial(
        Http2Connection, initial_stream_window_size=65535, initial_connection_window_size=65535))
    go = asyncio.Event()

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await go.wait()
        size = 0
        while True:  # the chunked body
            n = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(n + 2)
            size += n
            if n == 0:
                break
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%d" % (len(str(size)), size))
        await writer.drain()

    upstream = await asyncio.start_server(backend, "127.0.0.1", 0)
    server, port = await start(bootstrap(route(), {"a": [upstream.sockets[0].getsockname()[1]]}))
    c = await H2Client().connect("127.0.0.1", port)
    try:
        total = 32 * 1024 * 1024
        sid = c.start("POST", "/up", b"u" * total)
        last = -1
        for _ in range(100):  # until the client stops being able to send
            await asyncio.sleep(0.05)
            if c.sent.get(sid, 0) == last:
                break
            last = c.sent.get(sid, 0)
        assert 0 < c.sent[sid] < total
        assert c.conn.local_flow_control_window(sid) == 0 or c.conn.outbound_flow_control_window == 0
        go.set()
        status, _, body = await c.result(sid, timeout=30)
        assert (status, body) == (200, str(total).encode())
    finally:
        await c.close()
        await server.stop()
        upstream.close()


async def test_connect_is_refused_with_403():
    server, port = await start(bootstrap(route(), {"a": [1]}))
    c = await H2Client().connect("127.0.0.1", port)
    try:
        sid = c.conn.get_next_available_stream_id()
        c.responses[sid] = {"body": []}
        c.done[sid] = asyncio.get_running_loop().create_future()
        c.conn.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", b"db.internal:5432")])
        c._send()
        status, _, body = await c.result(sid)
        assert status == 403 and b"CONNECT" in body
    finally:
        await c.close()
        await server.stop()
