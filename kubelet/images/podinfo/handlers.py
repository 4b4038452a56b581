"""podinfo's HTTP API: routes, middlewares (metrics, logging, version, random delay,
random error, in podinfo's order) and handlers with podinfo's JSON shapes (indented
two spaces, map keys sorted as Go's encoder does)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import time
from typing import Any

from aiohttp import web

from .logger import Logger
from .metrics import Metrics, url_to_label

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def canonical(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey: x-forwarded-for -> X-Forwarded-For."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None, *,
                  sort: bool = True) -> web.Response:
    """Maps are sorted (Go's encoder sorts map keys); structs (sort=False) keep field order."""
    body = json.dumps(data, indent=2, sort_keys=sort, ensure_ascii=False)
    return web.Response(body=body.encode(), status=status, headers={**JSON_HEADERS, **(headers or {})})


class State:
    """What the handlers share: config, identity, health flags, metrics, logger."""

    def __init__(self, config: Any, version: str, revision: str, hostname: str, logger: Logger) -> None:
        self.config, self.version, self.revision = config, version, revision
        self.hostname, self.logger = hostname, logger
        self.healthy = self.ready = False
        self.metrics = Metrics()
        self.labels: dict[Any, str] = {}  # route resource -> metrics path label


def build_app(state: State) -> web.Application:
    app = web.Application(middlewares=_middlewares(state))
    h = Handlers(state)
    routes = [("GET", "/", h.info, None), ("GET", "/api/info", h.info, None),
              ("GET", "/version", h.version, None), ("GET", "/metrics", h.metrics, None),
              ("*", "/echo", h.echo, None), ("*", "/echo/{tail:.*}", h.echo, "/echo/"),
              ("*", "/api/echo", h.echo, None), ("*", "/api/echo/{tail:.*}", h.echo, "/api/echo/"),
              ("GET", "/env", h.env, None), ("POST", "/env", h.env, None),
              ("GET", "/headers", h.headers, None), ("POST", "/headers", h.headers, None),
              ("GET", "/delay/{wait:[0-9]+}", h.delay, "delay"),
              ("GET", "/healthz", h.healthz, None), ("GET", "/readyz", h.readyz, None),
              ("POST", "/readyz/enable", h.ready_enable, None), ("POST", "/readyz/disable", h.ready_disable, None),
              ("GET", "/panic", h.panic, None),
              *[(m, "/status/{code:[0-9]+}", h.status, "status") for m in ("GET", "POST", "PUT")],
              ("*", "/chunked", h.chunked, None), ("*", "/chunked/{wait:[0-9]+}", h.chunked, None)]
    for method, path, handler, label in routes:
        route = app.router.add_route(method, path, handler)
        template = label or path.replace("{tail:.*}", "")
        state.labels.setdefault(route.resource, url_to_label(template))
    return app


def _route_label(state: State, request: web.Request) -> str | None:
    if request.match_info.http_exception is not None:
        return None  # gorilla/mux runs middlewares only for matched routes
    return state.labels.get(request.match_info.route.resource)


def _middlewares(state: State) -> list[Any]:
    config = state.config

    @web.middleware
    async def not_found(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            if request.match_info.http_exception.status == 405:
                return web.Response(status=405)
            return web.Response(text="404 page not found\n", status=404, content_type="text/plain")
        return await handler(request)

    @web.middleware
    async def prometheus(request: web.Request, handler: Any) -> web.StreamResponse:
        label = _route_label(state, request)
        begin = time.monotonic()
        response = await handler(request)
        if label is not None:
            state.metrics.observe(request.method, label, response.status, time.monotonic() - begin)
        return response

    @web.middleware
    async def logging(request: web.Request, handler: Any) -> web.StreamResponse:
        request["logger"] = state.logger.with_fields(
            proto=f"HTTP/{request.version.major}.{request.version.minor}", uri=request.path_qs,
            method=request.method, remote=f"{request.remote}:{_peer_port(request)}",
            **{"user-agent": request.headers.get("User-Agent", "")})
        request["logger"].debug("request started")
        return await handler(request)

    @web.middleware
    async def random_delay(request: web.Request, handler: Any) -> web.StreamResponse:
        low, high = config["random-delay-min"], config["random-delay-max"]
        unit = 0.001 if config["random-delay-unit"] == "ms" else 1.0
        await asyncio.sleep((random.randrange(low, high) if high > low else low) * unit)
        return await handler(request)

    @web.middleware
    async def random_error(request: web.Request, handler: Any) -> web.StreamResponse:
        if random.randrange(3) == 0:
            request["logger"].error("random error occurred")
            return web.Response(status=random.choice((500, 400, 409)))
        return await handler(request)

    chain = [not_found, prometheus, logging]
    if config["random-delay"]:
        chain.append(random_delay)
    if config["random-error"]:
        chain.append(random_error)
    return chain


def _peer_port(request: web.Request) -> int:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer[1] if peer else 0


class Handlers:
    def __init__(self, state: State) -> None:
        self.s = state

    def _api_headers(self) -> dict[str, str]:
        return {"X-Api-Version": self.s.version, "X-Api-Revision": self.s.revision}

    async def info(self, request: web.Request) -> web.Response:
        c = self.s.config
        data = {"hostname": self.s.hostname, "version": self.s.version, "revision": self.s.revision,
                "color": c["ui-color"], "logo": c["ui-logo"], "message": c["ui-message"],
                "goos": "linux", "goarch": _arch(), "runtime": f"python{platform.python_version()}",
                "num_goroutine": str(len(asyncio.all_tasks())), "num_cpu": str(os.cpu_count() or 1)}
        if request.path == "/" and request.headers.get("User-Agent", "").startswith("Mozilla"):
            return web.Response(text=_html(data), content_type="text/html")
        return json_response(data, sort=False)

    async def version(self, request: web.Request) -> web.Response:
        return json_response({"commit": self.s.revision, "version": self.s.version})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.s.metrics.render().encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        backends = self.s.config["backend-url"]
        color = {"X-Color": self.s.config["ui-color"]}
        if not backends:
            return web.Response(body=body, status=202, headers={**color, "Content-Type": "text/plain; charset=utf-8"})
        results = await asyncio.gather(*(self._call_backend(url, body, request) for url in backends))
        return json_response(list(results), headers=color)

    async def _call_backend(self, url: str, body: bytes, request: web.Request) -> str:
        import aiohttp  # only echo with --backend-url needs the client side

        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-b3-", "x-request-id",
                                                                                      "x-ot-span-context"))}
        headers.update(self._api_headers())
        timeout = aiohttp.ClientTimeout(total=self.s.config["http-client-timeout"] or None)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(url, data=body, headers=headers) as response:
                text = await response.text()
                if response.status >= 400:
                    self.s.logger.error("backend call failed", status=response.status, url=url)
                    return f"backend {url} response status code {response.status}"
                return text
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.s.logger.error("backend call failed", error=str(exc), url=url)
            return f"backend {url} call failed {exc}"

    async def env(self, request: web.Request) -> web.Response:
        return json_response([f"{k}={v}" for k, v in os.environ.items()])

    async def headers(self, request: web.Request) -> web.Response:
        found: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            if name.lower() != "host":
                found.setdefault(canonical(name), []).append(value)
        for name, value in self._api_headers().items():
            found[name] = [value]
        return json_response(found)

    async def delay(self, request: web.Request) -> web.Response:
        wait = int(request.match_info["wait"])
        await asyncio.sleep(wait)
        return json_response({"delay": wait})

    async def healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "OK"}) if self.s.healthy else web.Response(status=503)

    async def readyz(self, request: web.Request) -> web.Response:
        return json_response({"status": "OK"}) if self.s.ready else web.Response(status=503)

    async def ready_enable(self, request: web.Request) -> web.Response:
        self.s.ready = True
        return web.Response(status=202)

    async def ready_disable(self, request: web.Request) -> web.Response:
        self.s.ready = False
        return web.Response(status=202)

    async def panic(self, request: web.Request) -> web.Response:
        self.s.logger.info("Panic command received")
        os._exit(255)

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if not 100 <= code <= 999:
            raise ConnectionResetError("invalid WriteHeader code")  # Go's server aborts the connection too
        return json_response({"status": code}, status=code)

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        wait = request.match_info.get("wait")
        delay = int(wait) if wait is not None else random.randrange(10, max(int(self.s.config["http-server-timeout"]), 12))
        response = web.StreamResponse(headers={"Connection": "Keep-Alive", "X-Content-Type-Options": "nosniff",
                                               "Content-Type": "application/json; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await asyncio.sleep(delay)
        await response.write(json.dumps({"delay": delay}, indent=2).encode())
        await response.write_eof()
        return response


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _html(data: dict[str, str]) -> str:
    from html import escape

    return (f"<!DOCTYPE html><html><head><title>podinfo</title></head>"
            f'<body style="background:{escape(data["color"])};color:#fff;font-family:sans-serif;text-align:center">'
            f'<img src="{escape(data["logo"])}" alt="" style="max-height:200px"><h1>{escape(data["message"])}</h1>'
            f"<p>{escape(data['hostname'])} &middot; v{escape(data['version'])}</p></body></html>")
