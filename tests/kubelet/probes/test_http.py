"""httpGet probes against real loopback servers: what is sent, how answers are judged,
and the exact failure messages the kubelet writes."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time

import pytest
from aiohttp import web

from kubelet.probes.http import build_request, http_probe
from kubelet.probes.spec import FAILURE, SUCCESS, WARNING, Outcome, ProbeError
from tests.kubelet.probes.conftest import free_port


def app_with(routes: dict[str, web.RequestHandler], seen: list[web.Request] | None = None) -> web.Application:
    app = web.Application()
    for path, handler in routes.items():
        async def wrapped(request: web.Request, handler=handler) -> web.StreamResponse:
            if seen is not None:
                seen.append(request)
            return await handler(request)
        app.router.add_get(path, wrapped)
    return app


async def probe(action: dict, timeout: float = 1, container: dict | None = None) -> Outcome:
    return await http_probe(build_request(action, container or {}, "127.0.0.1"), timeout)


async def test_success_sends_what_the_kubelet_sends(serve):
    seen: list[web.Request] = []
    port = await serve(app_with({"/healthz": lambda r: _text("ok")}, seen))
    outcome = await probe({"path": "/healthz?full=1", "port": port})
    assert outcome == Outcome(SUCCESS, "ok")
    request = seen[0]
    assert request.path_qs == "/healthz?full=1"
    assert request.headers["Host"] == f"127.0.0.1:{port}"
    assert request.headers["User-Agent"] == "kube-probe/1.32"
    assert request.headers["Accept"] == "*/*"
    assert request.headers["Connection"] == "close"
    assert "Accept-Encoding" not in request.headers


async def test_status_codes_are_judged_as_the_kubelet_does(serve):
    port = await serve(app_with({
        "/ok": lambda r: _text("fine", status=204), "/boom": lambda r: _text("secret", status=500),
        "/missing": lambda r: _text("no", status=404), "/moved": lambda r: _text("see other", status=302),
    }))
    assert (await probe({"path": "/ok", "port": port})).result == SUCCESS
    assert await probe({"path": "/boom", "port": port}) == Outcome(FAILURE, "HTTP probe failed with statuscode: 500")
    assert await probe({"path": "/missing", "port": port}) == Outcome(FAILURE, "HTTP probe failed with statuscode: 404")
    # A 3xx the client did not follow (no Location) succeeds with a warning.
    assert await probe({"path": "/moved", "port": port}) == Outcome(
        WARNING, "Probe terminated redirects, Response body: see other")


async def test_connection_refused_message():
    port = free_port()
    outcome = await http_probe(build_request({"path": "/healthz", "port": port}, {}, "127.0.0.1"), 1)
    assert outcome == Outcome(
        FAILURE, f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused')


async def test_timeout_message_and_it_takes_the_timeout(serve):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return _text("late")
    port = await serve(app_with({"/slow": slow}))
    started = time.monotonic()
    outcome = await probe({"path": "/slow", "port": port}, timeout=1)
    assert 0.9 < time.monotonic() - started < 2.5
    assert outcome == Outcome(FAILURE, f'Get "http://127.0.0.1:{port}/slow": context deadline exceeded '
                                       "(Client.Timeout exceeded while awaiting headers)")


async def test_headers_host_override_and_user_agent(serve):
    seen: list[web.Request] = []
    port = await serve(app_with({"/": lambda r: _text("ok")}, seen))
    outcome = await probe({"port": port, "httpHeaders": [
        {"name": "x-custom-header", "value": "a"}, {"name": "X-Custom-Header", "value": "b"},
        {"name": "Host", "value": "example.test"}, {"name": "user-agent", "value": "mine/1"},
        {"name": "Accept", "value": ""}]})
    assert outcome.result == SUCCESS
    request = seen[0]
    assert request.headers.getall("X-Custom-Header") == ["a", "b"]
    assert request.headers["Host"] == "example.test"
    assert request.headers["User-Agent"] == "mine/1"
    assert "Accept" not in request.headers  # an empty Accept removes it


async def test_named_port_and_default_host_is_the_pod_ip(serve):
    port = await serve(app_with({"/readyz": lambda r: _text("ready")}))
    container = {"ports": [{"name": "http", "containerPort": port}]}
    request = build_request({"path": "readyz", "port": "http", "scheme": "HTTP"}, container, "127.0.0.1")
    assert request.url == f"http://127.0.0.1:{port}/readyz"
    assert (await http_probe(request, 1)).result == SUCCESS
    with pytest.raises(ProbeError, match='parsing "metrics": invalid syntax'):
        build_request({"port": "metrics"}, container, "127.0.0.1")


async def test_redirects_followed_only_on_the_same_host(serve):
    seen: list[web.Request] = []
    port = await serve(app_with({
        "/start": lambda r: _redirect("/next"),
        "/next": lambda r: _redirect(f"http://127.0.0.1:{r.url.port}/final"),
        "/final": lambda r: _text("arrived"),
        "/away": lambda r: _redirect(f"http://localhost:{r.url.port}/final", body="leaving"),
        "/loop": lambda r: _redirect("/loop"),
    }, seen))
    assert await probe({"path": "/start", "port": port}) == Outcome(SUCCESS, "arrived")
    assert [r.path for r in seen] == ["/start", "/next", "/final"]
    assert seen[2].headers["User-Agent"] == "kube-probe/1.32"
    # Another host name ends the chain: a success with a warning, the target is not asked.
    assert await probe({"path": "/away", "port": port}) == Outcome(
        WARNING, "Probe terminated redirects, Response body: leaving")
    assert seen[-1].path == "/away"
    seen.clear()
    assert await probe({"path": "/loop", "port": port}) == Outcome(
        FAILURE, f'Get "http://127.0.0.1:{port}/loop": stopped after 10 redirects')
    assert len(seen) == 10


async def test_at_most_10_kib_of_the_body_is_read(serve):
    port = await serve(app_with({"/big": lambda r: _text("x" * 1_000_000)}))
    outcome = await probe({"path": "/big", "port": port})
    assert outcome.result == SUCCESS and len(outcome.output) == 10 * 1024


async def test_server_that_hangs_up_without_answering():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await probe({"path": "/", "port": port})
    finally:
        server.close()
        await server.wait_closed()
    assert outcome == Outcome(FAILURE, f'Get "http://127.0.0.1:{port}/": EOF')


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (Debian package openssl)")
async def test_https_without_certificate_verification(serve, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=probe-test"], check=True,
                   capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls_port = await serve(app_with({"/healthz": lambda r: _text("secure")}), ssl_context=context)
    assert await probe({"path": "/healthz", "port": tls_port, "scheme": "HTTPS"}) == Outcome(SUCCESS, "secure")
    plain_port = await serve(app_with({"/healthz": lambda r: _text("plain")}))
    assert await probe({"path": "/healthz", "port": plain_port, "scheme": "HTTPS"}) == Outcome(
        FAILURE, f'Get "https://127.0.0.1:{plain_port}/healthz": http: server gave HTTP response to HTTPS client')


async def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status)


async def _redirect(location: str, body: str = "") -> web.Response:
    return web.Response(status=302, headers={"Location": location}, text=body)


async def test_chunked_and_unterminated_bodies():
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if b"GET /chunked " in request:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        elif b"GET /short " in request:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        else:
            writer.write(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy")
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await probe({"path": "/chunked", "port": port}) == Outcome(SUCCESS, "hello world")
        assert await probe({"path": "/short", "port": port}) == Outcome(FAILURE, "", "unexpected EOF")
        assert await probe({"path": "/old", "port": port}) == Outcome(
            FAILURE, "HTTP probe failed with statuscode: 503")
    finally:
        server.close()
        await server.wait_closed()
