"""The forwarding proxy (http1 + upstream + headers) end to end, against asyncio backends
started in the test, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools

import httptools

from proxy.engine.forward import start
from tests.proxy.engine.test_http1 import ResponseReader, exchange

_ids = itertools.count(1)


class Backend(asyncio.Protocol):
    """Answers by path: /echo streams the body back chunked as it arrives, /ws switches
    to a raw echo after 101, /reset closes without answering, /head has a 5-byte body,
    /nolength answers without length and closes, /headers returns the request headers,
    /503 answers 503, /slow answers after 0.2 s, /drop-next answers but closes without
    answering the connection's next request (a keep-alive race), anything else its
    connection's id."""

    requests: list[tuple[bytes, list[tuple[bytes, bytes]]]] = []

    def connection_made(self, transport):
        self.transport = transport
        self.conn_id = next(_ids)
        self.parser = httptools.HttpRequestParser(self)
        self.raw = False

    def data_received(self, data):
        if self.raw:
            self.transport.write(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.raw = True
            rest = data[exc.args[0]:]
            if rest:
                self.transport.write(rest)

    def on_message_begin(self):
        self.url, self.headers = b"", []

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name.lower(), value))

    def on_headers_complete(self):
        Backend.requests.append((self.url, self.headers))
        if getattr(self, "drop_next", False):
            self.transport.close()
            return
        if self.url == b"/echo":
            self.transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        elif self.url == b"/ws":
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
        elif self.url == b"/reset":
            self.transport.abort()

    def on_body(self, body):
        if self.url == b"/echo":
            self.transport.write(b"%x\r\n%s\r\n" % (len(body), body))

    def on_message_complete(self):
        url = self.url
        if url == b"/echo":
            self.transport.write(b"0\r\n\r\n")
        elif url == b"/head":
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
            if self.parser.get_method() != b"HEAD":
                self.transport.write(b"hello")
        elif url == b"/nolength":
            self.transport.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil close")
            self.transport.close()
        elif url == b"/nocontent":
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif url == b"/headers":
            body = b"\n".join(b"%s: %s" % h for h in self.headers)
            self.transport.write(b"HTTP/1.1 200 OK\r\nserver: backend\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        elif url == b"/503":
            self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
        elif url == b"/slow":
            body = b"%d" % self.conn_id
            asyncio.get_running_loop().call_later(
                0.2, self.transport.write, b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        elif url not in (b"/ws", b"/reset"):
            self.drop_next = url == b"/drop-next"
            body = b"%d" % self.conn_id
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


async def backend() -> tuple[asyncio.Server, int]:
    server = await asyncio.get_running_loop().create_server(Backend, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def proxy_to(*ports: int) -> tuple[asyncio.Server, int]:
    server, _ = await start(("127.0.0.1", 0), [("127.0.0.1", p) for p in ports], connect_timeout=1.0)
    return server, server.sockets[0].getsockname()[1]


async def test_keep_alive_connections_to_the_upstream_are_reused():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        first = await exchange(pport, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n" * 3, 3)
        second = await exchange(pport, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert len({r.body for r in first + second}) == 1  # one upstream connection served all


async def test_round_robin_over_two_upstreams():
    b1, port1 = await backend()
    b2, port2 = await backend()
    p, pport = await proxy_to(port1, port2)
    async with b1, b2, p:
        rs = await exchange(pport, b"GET / HTTP/1.1\r\n\r\n" * 4, 4)
    assert len({r.body for r in rs}) == 2


async def test_request_headers_are_rewritten_for_the_upstream():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        [r] = await exchange(pport, b"GET /headers HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.0.0.1\r\n"
                                    b"x-envoy-retry-on: 5xx\r\nkeep-alive: 5\r\nconnection: keep-alive, x-hop\r\n"
                                    b"x-hop: 1\r\nte: trailers\r\n\r\n")
    sent = dict(line.split(b": ", 1) for line in r.body.split(b"\n"))
    assert sent[b"x-forwarded-for"] == b"10.0.0.1, 127.0.0.1"
    assert sent[b"x-forwarded-proto"] == b"http"
    assert len(sent[b"x-request-id"]) == 36
    assert b"x-envoy-retry-on" not in sent and b"keep-alive" not in sent and b"x-hop" not in sent
    assert sent[b"te"] == b"trailers"
    assert r.header(b"server") == b"envoy"
    assert int(r.header(b"x-envoy-upstream-service-time")) >= 0


async def test_pipelined_requests_through_the_proxy_keep_their_order():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        raw = (b"GET /headers HTTP/1.1\r\nx-n: 1\r\n\r\nPOST /echo HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"
               b"GET /head HTTP/1.1\r\n\r\n")
        rs = await exchange(pport, raw, 3)
    assert b"x-n: 1" in rs[0].body and rs[1].body == b"abc" and rs[2].body == b"hello"


async def test_chunked_request_and_response_bodies_are_streamed_both_ways():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", pport)
        writer.write(b"POST /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        first = await asyncio.wait_for(reader.read(65536), 2)  # before the request ended
        assert first.startswith(b"HTTP/1.1 200") and b"first" in first
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += await asyncio.wait_for(reader.read(65536), 2)
        assert b"second" in rest
        writer.close()


async def test_a_10_mb_upload_streams_through_without_being_buffered():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    size, piece = 10 * 1024 * 1024, b"x" * 65536
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", pport)
        writer.write(b"POST /echo HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % size)
        received = 0
        sent = 0
        first_seen_at = None

        async def drain_responses():
            nonlocal received, first_seen_at
            while received < size:
                data = await reader.read(1 << 20)
                assert data
                if first_seen_at is None:
                    first_seen_at = sent
                received += len(data)

        task = asyncio.create_task(drain_responses())
        while sent < size:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
        await asyncio.wait_for(task, 20)
        writer.close()
    assert first_seen_at is not None and first_seen_at < size  # echoed before the upload ended


async def test_websocket_upgrade_relays_raw_bytes_both_ways():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", pport)
        writer.write(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nearly")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 101") and b"upgrade: websocket" in head.lower()
        assert await asyncio.wait_for(reader.readexactly(5), 2) == b"early"
        writer.write(b"\x81\x05hello")
        assert await asyncio.wait_for(reader.readexactly(7), 2) == b"\x81\x05hello"
        sent_headers = dict(Backend.requests[-1][1])
        assert sent_headers[b"upgrade"] == b"websocket" and sent_headers[b"connection"] == b"upgrade"
        writer.close()


async def test_connect_failure_answers_503_with_envoys_text():
    p, pport = await proxy_to(1)  # nothing listens on port 1
    async with p:
        [r] = await exchange(pport, b"GET / HTTP/1.1\r\n\r\n")
    assert r.status == 503
    assert r.body == b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"


async def test_upstream_reset_before_headers_answers_503():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        [r] = await exchange(pport, b"GET /reset HTTP/1.1\r\n\r\n")
    assert r.status == 503 and r.body.endswith(b"connection termination")


async def test_head_204_and_read_until_close_responses():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", pport)
        writer.write(b"HEAD /head HTTP/1.1\r\n\r\nGET /nocontent HTTP/1.1\r\n\r\n")
        data = b""
        while data.count(b"\r\n\r\n") < 2:
            data += await asyncio.wait_for(reader.read(65536), 2)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5" in head
        assert rest.startswith(b"HTTP/1.1 204") and rest.endswith(b"\r\n\r\n")  # no body bytes anywhere
        writer.write(b"GET /head HTTP/1.1\r\n\r\nGET /nolength HTTP/1.1\r\n\r\nGET /head HTTP/1.1\r\n\r\n")
        rs = await ResponseReader(reader).read(3)
        writer.close()
    assert [(r.status, r.body) for r in rs] == [(200, b"hello"), (200, b"until close"), (200, b"hello")]
    assert rs[1].header(b"transfer-encoding") == b"chunked"  # re-framed, the downstream stays open


async def test_a_client_that_does_not_read_stops_the_proxy_reading_the_upstream():
    from proxy.engine.forward import ForwardHandler
    from proxy.engine.http1 import DownstreamConnection
    from proxy.engine.upstream import Pool

    big = 32 * 1024 * 1024

    async def flood(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % big)
        try:
            for _ in range(big // 65536):
                writer.write(b"y" * 65536)
                await writer.drain()
        except ConnectionError:
            pass

    b = await asyncio.start_server(flood, "127.0.0.1", 0)
    pool = Pool(("127.0.0.1", b.sockets[0].getsockname()[1]))
    conns: list[DownstreamConnection] = []

    def factory():
        conns.append(DownstreamConnection(ForwardHandler([pool])))
        return conns[-1]

    p = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.sockets[0].getsockname()[1], limit=1024)
        writer.transport.pause_reading()  # the client reads nothing
        writer.write(b"GET /big HTTP/1.1\r\n\r\n")
        await asyncio.sleep(1.0)
        buffered = conns[0].transport.get_write_buffer_size()
        assert 0 < buffered < 4 * 1024 * 1024  # bounded: the upstream was paused, not read into memory
        writer.transport.resume_reading()
        received = 0
        while received < big:
            data = await asyncio.wait_for(reader.read(1 << 20), 5)
            assert data
            received += len(data)
        writer.close()


async def test_a_refused_upgrade_answers_normally_and_closes():
    b, bport = await backend()
    p, pport = await proxy_to(bport)
    async with b, p:
        reader, writer = await asyncio.open_connection("127.0.0.1", pport)
        writer.write(b"GET /plain HTTP/1.1\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)  # EOF after the answer
        writer.close()
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data


def test_bad_addresses_are_rejected_naming_the_flag():
    import pytest

    from proxy.engine.forward import ForwardHandler, parse_address

    assert parse_address("127.0.0.1:80", "--listen") == ("127.0.0.1", 80)
    for bad in ("127.0.0.1", "127.0.0.1:x", ":80", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="--upstream"):
            parse_address(bad, "--upstream")
    with pytest.raises(ValueError, match="upstream"):
        ForwardHandler([])


async def test_the_forward_command_serves_until_sigterm(tmp_path):
    import signal
    import socket
    import sys

    b, bport = await backend()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.engine.forward", "--listen", f"127.0.0.1:{port}",
        "--upstream", f"127.0.0.1:{bport}", stdout=asyncio.subprocess.PIPE)
    try:
        assert b"forwarding" in await asyncio.wait_for(proc.stdout.readline(), 10)
        async with b:
            [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
        assert r.status == 200 and r.header(b"server") == b"envoy"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_header_rules_for_internal_and_external_clients():
    from proxy.engine.headers import is_internal, request_headers, response_headers

    assert [is_internal(a) for a in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "127.0.0.1", "::1", "fd00::1",
                                     "8.8.8.8", "172.32.0.1", "2001:db8::1", "not-an-ip")] == [
        True, True, True, True, True, True, False, False, False, False]
    incoming = [(b"host", b"h"), (b"x-envoy-retry-on", b"5xx"), (b"x-envoy-internal", b"true"),
                (b"x-request-id", b"abc"), (b"x-forwarded-proto", b"https")]
    external = dict(request_headers(incoming, remote_address="8.8.8.8", edge=True))
    internal = dict(request_headers(incoming, remote_address="10.0.0.1", edge=False))
    assert b"x-envoy-retry-on" not in external and external[b"x-envoy-external-address"] == b"8.8.8.8"
    assert b"x-envoy-internal" not in external
    assert internal[b"x-envoy-retry-on"] == b"5xx" and internal[b"x-envoy-internal"] == b"true"
    assert external[b"x-request-id"] == internal[b"x-request-id"] == b"abc"  # kept when present
    assert external[b"x-forwarded-proto"] == b"http"  # overwritten with the downstream's scheme
    upgraded = request_headers([(b"connection", b"Upgrade"), (b"upgrade", b"websocket")],
                               remote_address="1.2.3.4", upgrade=True)
    assert (b"upgrade", b"websocket") in upgraded and (b"connection", b"upgrade") in upgraded
    out = response_headers([(b"server", b"nginx"), (b"content-length", b"3"), (b"connection", b"close, x-a"),
                            (b"x-a", b"1"), (b"x-b", b"2"), (b"transfer-encoding", b"chunked")], service_time_ms=7)
    assert out == [(b"x-b", b"2"), (b"server", b"envoy"), (b"x-envoy-upstream-service-time", b"7")]


def test_generated_request_ids_are_uuid4():
    import uuid

    from proxy.engine.headers import request_id

    ids = {request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i.decode()).version == 4 and uuid.UUID(i.decode()).variant == uuid.RFC_4122 for i in ids)
