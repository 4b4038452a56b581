"""The downstream HTTP/1.1 protocol on real loopback sockets, with handlers that answer
locally (no upstream): ordering, framing, limits and errors. Helpers here are shared by
test_upstream.py and test_forward.py."""

from __future__ import annotations

import asyncio

import httptools

from proxy.engine.http1 import DownstreamConnection, Stream


class Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.done = False

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


class ResponseReader:
    """Parses responses from a StreamReader one after another (keep-alive aware)."""

    def __init__(self, reader: asyncio.StreamReader, *, head: bool = False) -> None:
        self.reader = reader
        self.done: list[Response] = []
        self.current = Response()
        self.parser = httptools.HttpResponseParser(self)
        self.head = head

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.current.status = self.parser.get_status_code()
        if self.head:
            self.done.append(self.current)
            self.current = Response()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        if self.current.status < 200 and self.current.status != 101 and self.current.status:
            self.done.append(self.current)  # 100 Continue is a response too
        elif not self.head:
            self.done.append(self.current)
        self.current = Response()

    async def read(self, count: int = 1, timeout: float = 5.0) -> list[Response]:
        async def loop() -> None:
            while len(self.done) < count:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError(f"closed after {len(self.done)} responses")
                try:
                    self.parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    return
        await asyncio.wait_for(loop(), timeout)
        out, self.done = self.done[:count], self.done[count:]
        return out


async def serve(handler, **kwargs) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DownstreamConnection(handler, **kwargs), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def exchange(port: int, raw: bytes, count: int = 1, *, head: bool = False) -> list[Response]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        return await ResponseReader(reader, head=head).read(count)
    finally:
        writer.close()


def echo_handler(stream: Stream) -> None:
    """Answers with the method, path and the whole request body once it has arrived."""
    chunks: list[bytes] = []

    class Sink:
        def body_data(self, data: bytes) -> None:
            chunks.append(data)

        def body_end(self) -> None:
            reply()

        def downstream_blocked(self, blocked: bool) -> None:
            pass

        def downstream_reset(self) -> None:
            pass

    def reply() -> None:
        head = stream.head
        stream.local_reply(200, head.method + b" " + head.path + b" " + b"".join(chunks))

    stream.attach(Sink())
    if not stream.head.has_body:
        reply()


async def test_keep_alive_serves_several_requests_on_one_connection():
    server, port = await serve(echo_handler)
    async with server:
        rs = await exchange(port, b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n" * 3, 3)
        assert [r.body for r in rs] == [b"GET /a "] * 3
        assert all(r.header(b"connection") is None for r in rs)


async def test_pipelined_requests_are_answered_in_order_even_when_the_first_is_slow():
    order: list[bytes] = []

    def handler(stream: Stream) -> None:
        path = stream.head.path
        order.append(path)
        delay = 0.2 if path == b"/slow" else 0.0
        asyncio.get_running_loop().call_later(delay, stream.local_reply, 200, path)

    server, port = await serve(handler)
    async with server:
        raw = b"".join(b"GET /%s HTTP/1.1\r\nhost: x\r\n\r\n" % p for p in (b"slow", b"b", b"c"))
        rs = await exchange(port, raw, 3)
    assert [r.body for r in rs] == [b"/slow", b"/b", b"/c"]
    assert order == [b"/slow", b"/b", b"/c"]


async def test_chunked_request_body_reaches_the_handler_in_pieces():
    server, port = await serve(echo_handler)
    async with server:
        raw = (b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        [r] = await exchange(port, raw)
    assert r.body == b"POST /up hello world"


async def test_malformed_request_gets_400_and_the_connection_closes():
    server, port = await serve(echo_handler)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        rr = ResponseReader(reader)
        rs = await rr.read(2)
        assert [r.status for r in rs] == [200, 400]
        assert rs[1].body == b"Bad Request"
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()


async def test_headers_over_the_limit_get_431():
    server, port = await serve(echo_handler, max_request_headers_kb=1)
    async with server:
        raw = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 2000 + b"\r\n\r\n"
        [r] = await exchange(port, raw)
        assert r.status == 431
        [ok] = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\nx-small: " + b"a" * 500 + b"\r\n\r\n")
        assert ok.status == 200


async def test_default_header_limit_is_60_kib():
    server, port = await serve(echo_handler)
    async with server:
        [big] = await exchange(port, b"GET / HTTP/1.1\r\nx-a: " + b"a" * 62000 + b"\r\n\r\n")
        [ok] = await exchange(port, b"GET / HTTP/1.1\r\nx-a: " + b"a" * 60000 + b"\r\n\r\n")
    assert (big.status, ok.status) == (431, 200)


async def test_head_response_has_length_but_no_body():
    def handler(stream: Stream) -> None:
        stream.respond_head(200, [], content_length=5)
        stream.respond_data(b"hello")
        stream.respond_end()

    server, port = await serve(handler)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await asyncio.sleep(0.2)
        data = await asyncio.wait_for(reader.read(65536), 2)
        writer.close()
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 5" in first
    assert rest.startswith(b"HTTP/1.1 200")  # no body bytes between the two responses
    assert rest.endswith(b"hello")


async def test_expect_100_continue_is_answered_before_the_body_is_sent():
    server, port = await serve(echo_handler)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PUT /x HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        rr = ResponseReader(reader)
        [cont] = await rr.read(1)
        assert cont.status == 100
        writer.write(b"data")
        [r] = await rr.read(1)
        assert (r.status, r.body) == (200, b"PUT /x data")
        writer.close()


async def test_http10_without_keep_alive_closes_after_the_response():
    server, port = await serve(echo_handler)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)  # EOF: the server closed
        writer.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data


async def test_connection_close_request_closes_after_its_response():
    server, port = await serve(echo_handler)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
    assert data.count(b"HTTP/1.1 200") == 1


async def test_streaming_response_is_chunked_for_http11():
    def handler(stream: Stream) -> None:
        stream.respond_head(200, [])
        stream.respond_data(b"ab")
        stream.respond_data(b"cd")
        stream.respond_end()

    server, port = await serve(handler)
    async with server:
        [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
    assert r.header(b"transfer-encoding") == b"chunked" and r.body == b"abcd"


async def test_a_body_over_the_buffer_limit_is_not_retryable():
    seen: list[bool] = []

    def handler(stream: Stream) -> None:
        class Sink:
            def body_data(self, data: bytes) -> None:
                pass

            def body_end(self) -> None:
                seen.append(stream.retryable)
                stream.local_reply(200, b"ok")

            def downstream_blocked(self, blocked: bool) -> None:
                pass

            def downstream_reset(self) -> None:
                pass

        stream.attach(Sink())

    server, port = await serve(handler, buffer_limit=1000)
    async with server:
        for size in (999, 1001):
            await exchange(port, b"POST / HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size)
    assert seen == [True, False]


async def test_a_response_before_the_request_body_ended_closes_the_connection():
    server, port = await serve(lambda stream: stream.local_reply(429, b"slow down"))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100)
        data = await asyncio.wait_for(reader.read(), 2)  # EOF after the 429
        writer.close()
    assert data.startswith(b"HTTP/1.1 429") and b"connection: close" in data


async def test_drain_finishes_the_response_under_way_then_closes():
    conns: list[DownstreamConnection] = []
    pending: list[Stream] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: conns.append(DownstreamConnection(pending.append)) or conns[-1],
                                      "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        while not pending:
            await asyncio.sleep(0.01)
        conns[0].drain()
        pending[0].local_reply(200, b"last")
        data = await asyncio.wait_for(reader.read(), 2)
        writer.close()
    assert data.endswith(b"last") and b"connection: close" in data
