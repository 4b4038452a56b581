"""Upstream pools and exchanges against real loopback backends: reuse, limits, idle
timeout, failures and what each exchange reports."""

from __future__ import annotations

import asyncio

from proxy.engine.headers import request_headers
from proxy.engine.http1 import Stream
from proxy.engine.upstream import DefaultLimits, Exchange, ExchangeReport, Pool
from tests.proxy.engine.test_forward import backend
from tests.proxy.engine.test_http1 import exchange, serve


class Recorder:
    """A handler sending every request to `pools[0]` (then, on error, `pools[1]` if any)
    and recording each exchange's report."""

    def __init__(self, *pools: Pool, retry_on_status=None) -> None:
        self.pools = pools
        self.reports: list[tuple[str, ExchangeReport]] = []
        self.retry_on_status = retry_on_status

    def __call__(self, stream: Stream, attempt: int = 0) -> None:
        head = stream.head
        headers = request_headers(head.headers, remote_address=stream.remote_address)

        def on_error(report: ExchangeReport) -> None:
            self.reports.append(("error", report))
            if attempt + 1 < len(self.pools):
                self(stream, attempt + 1)  # a retry on the same stream, another pool
            else:
                stream.local_reply(503, report.outcome.encode())

        def on_complete(report: ExchangeReport) -> None:
            self.reports.append(("complete", report))

        Exchange(stream, self.pools[attempt], headers, on_error=on_error, on_complete=on_complete,
                 retry_on_status=self.retry_on_status if attempt == 0 else None).start()


async def proxy(recorder: Recorder) -> tuple[asyncio.Server, int]:
    return await serve(recorder)


async def test_second_exchange_reuses_the_connection_and_reports_it():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport))
    rec = Recorder(pool)
    s, port = await proxy(rec)
    async with b, s:
        rs = await exchange(port, b"GET / HTTP/1.1\r\n\r\n" * 2, 2)
    assert rs[0].body == rs[1].body and pool.connects == 1
    (_, first), (_, second) = rec.reports
    assert (first.outcome, first.reused, second.reused) == ("ok", False, True)
    assert first.status == 200
    assert first.start_time <= first.connect_time <= first.first_byte_time <= first.end_time


async def test_max_requests_per_connection_opens_a_new_connection():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport), max_requests_per_connection=1)
    s, port = await proxy(Recorder(pool))
    async with b, s:
        rs = await exchange(port, b"GET / HTTP/1.1\r\n\r\n" * 3, 3)
    assert len({r.body for r in rs}) == 3 and pool.connects == 3


async def test_idle_connections_close_after_the_idle_timeout():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport), idle_timeout=0.1)
    s, port = await proxy(Recorder(pool))
    async with b, s:
        await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
        assert len(pool.idle) == 1
        await asyncio.sleep(0.4)
        assert pool.idle == [] and pool.connections == set()
        await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
    assert pool.connects == 2


async def test_connect_failure_is_reported_to_on_error():
    pool = Pool(("127.0.0.1", 1), connect_timeout=1.0)
    rec = Recorder(pool)
    s, port = await proxy(rec)
    async with s:
        [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
    assert (r.status, r.body) == (503, b"connect_failure")
    assert [(kind, rep.outcome) for kind, rep in rec.reports] == [("error", "connect_failure")]
    assert pool.connect_failures == 1


async def test_reset_before_headers_is_reported_and_a_retry_reaches_another_pool():
    b, bport = await backend()
    b2, bport2 = await backend()
    rec = Recorder(Pool(("127.0.0.1", bport)), Pool(("127.0.0.1", bport2)))
    s, port = await proxy(rec)
    async with b, b2, s:
        [r] = await exchange(port, b"GET /reset HTTP/1.1\r\n\r\n")
        [r2] = await exchange(port, b"POST /echo HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello")
    assert r.status == 503  # the second backend resets too
    assert [rep.outcome for _, rep in rec.reports[:2]] == ["reset", "reset"]
    assert (r2.status, r2.body) == (200, b"hello")


async def test_a_status_claimed_for_retry_is_not_sent_downstream_and_the_next_attempt_answers():
    b, bport = await backend()
    b2, bport2 = await backend()
    rec = Recorder(Pool(("127.0.0.1", bport)), Pool(("127.0.0.1", bport2)), retry_on_status=lambda s: s == 503)
    s, port = await proxy(rec)
    async with b, b2, s:
        [r] = await exchange(port, b"GET /503 HTTP/1.1\r\n\r\n")
    assert (r.status, r.body) == (503, b"busy")  # the first pool's 503 was claimed, the second's went out
    assert [(k, rep.outcome, rep.status) for k, rep in rec.reports] == [("error", "status", 503),
                                                                         ("complete", "ok", 503)]


async def test_a_reused_connection_closed_by_the_upstream_is_retried_once_on_a_fresh_one():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport))
    rec = Recorder(pool)
    s, port = await proxy(rec)
    async with b, s:
        [first] = await exchange(port, b"GET /drop-next HTTP/1.1\r\n\r\n")
        [second] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
    assert first.status == second.status == 200
    assert first.body != second.body  # answered on another connection
    report = rec.reports[-1][1]
    assert report.stale_retried and report.outcome == "ok" and pool.connects == 2


async def test_overflow_when_connections_and_pending_queue_are_full():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport), limits=DefaultLimits(max_connections=1, max_pending_requests=0))
    rec = Recorder(pool)
    s, port = await proxy(rec)
    async with b, s:
        slow = asyncio.create_task(exchange(port, b"GET /slow HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0.05)
        [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
        [ok] = await slow
    assert (r.status, r.body, ok.status) == (503, b"overflow", 200)


async def test_pending_requests_wait_for_the_one_connection():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport), limits=DefaultLimits(max_connections=1, max_pending_requests=8))
    s, port = await proxy(Recorder(pool))
    async with b, s:
        rs = await asyncio.gather(*(exchange(port, b"GET /slow HTTP/1.1\r\n\r\n") for _ in range(3)))
    assert [r[0].status for r in rs] == [200] * 3
    assert len({r[0].body for r in rs}) == 1 and pool.connects == 1


async def test_default_503_for_overflow_carries_x_envoy_overloaded():
    b, bport = await backend()
    pool = Pool(("127.0.0.1", bport), limits=DefaultLimits(max_connections=0, max_pending_requests=0))

    def handler(stream: Stream) -> None:
        Exchange(stream, pool, list(stream.head.headers)).start()

    s, port = await serve(handler)
    async with b, s:
        [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
    assert r.status == 503 and r.header(b"x-envoy-overloaded") == b"true"
    assert r.body.endswith(b"reset reason: overflow")


async def test_connect_timeout_fails_the_exchange_as_a_connect_failure():
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once the queue is full, SYNs go unanswered
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(listener.getsockname())
        fillers.append(s)
    pool = Pool(listener.getsockname(), connect_timeout=0.3)
    rec = Recorder(pool)
    s, port = await proxy(rec)
    try:
        async with s:
            started = time.monotonic()
            [r] = await exchange(port, b"GET / HTTP/1.1\r\n\r\n")
            elapsed = time.monotonic() - started
    finally:
        for f in fillers:
            f.close()
        listener.close()
    assert (r.status, r.body) == (503, b"connect_failure")
    assert 0.25 < elapsed < 2.0
