"""Request mirroring (route request_mirror_policies; Istio's `mirror` and
`mirrorPercentage`): a copy of the request goes to another cluster, fire and forget.

As Envoy: the copy's authority gets `-shadow` appended (`reviews` -> `reviews-shadow`,
`host:8080` -> `host-shadow:8080`), its response is read and dropped, and nothing about
it (failure, slowness) reaches the client. The copy is one `Exchange` over the mirror
cluster's pool, carried by a `ShadowStream`: the part of a downstream Stream an
Exchange uses, with the whole request body given up front.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from proxy.engine.headers import Headers
from proxy.engine.http1 import RequestHead
from proxy.engine.upstream import Exchange, ExchangeReport, Pool


def shadow_authority(authority: str) -> str:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and not host.endswith("]"):
        return f"{host}-shadow:{port}"
    return f"{authority}-shadow"


class _ShadowConn:
    __slots__ = ("loop", "closed", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closed = False
        self.transport = None

    def abort(self) -> None:
        self.closed = True


class ShadowStream:
    """Enough of http1.Stream for an Exchange: the request is known in full, the
    response is counted and dropped."""

    def __init__(self, head: RequestHead, body: list[bytes], loop: asyncio.AbstractEventLoop,
                 done: Callable[[int], None] | None = None) -> None:
        self.head = head
        self.conn = _ShadowConn(loop)
        self.body = body
        self.received = sum(len(b) for b in body)
        self.body_complete = True
        self.retryable = True
        self.done = False
        self.status = 0
        self.bytes_sent = 0
        self.response_started = False
        self._done = done

    def attach(self, sink: object) -> None:
        for chunk in self.body:
            sink.body_data(chunk)  # type: ignore[attr-defined]
        if self.head.has_body:
            sink.body_end()  # type: ignore[attr-defined]

    def detach(self) -> None:
        pass

    def pause_body(self) -> None:
        pass

    def resume_body(self) -> None:
        pass

    def respond_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                     **_: object) -> None:
        self.status = status
        self.response_started = True

    def respond_data(self, data: bytes) -> None:
        self.bytes_sent += len(data)

    def respond_end(self) -> None:
        self._finish()

    def local_reply(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        self.status = status
        self._finish()

    def reset(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            if self._done is not None:
                self._done(self.status)


def send_shadow(pool: Pool, head: RequestHead, headers: Headers, path: bytes, body: list[bytes],
                done: Callable[[int], None] | None = None) -> None:
    """Send a copy of a request (its upstream `headers`, already rewritten) through `pool`."""
    authority = next((v for n, v in headers if n == b"host"), b"").decode("latin-1")
    shadow_host = shadow_authority(authority).encode("latin-1")
    hs = [(n, shadow_host if n == b"host" else v) for n, v in headers]
    loop = asyncio.get_event_loop()
    stream = ShadowStream(head, body, loop, done)

    def failed(report: ExchangeReport) -> None:
        stream.local_reply(report.status or 503)

    ex = Exchange(stream, pool, hs, method=head.method, path=path, on_error=failed)  # type: ignore[arg-type]
    ex.start()
