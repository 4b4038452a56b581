"""The HTTP filters through a running ProxyServer on loopback: fault injection (abort and
delay percentages, header faults, per-route overrides, a client that leaves during a
delay), local rate limiting (per listener, per route, enabled/enforced fractions) and
CORS (preflight, simple requests, other origins). Backends are real aiohttp servers."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from proxy.engine.config import ConfigError, from_dict
from proxy.engine.server import ProxyServer
from tests.proxy.engine.test_server import Backend as BaseBackend

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
FAULT_T = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RL_T = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
CORS_T = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY_T = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
FAULT, RL, CORS = "envoy.filters.http.fault", "envoy.filters.http.local_ratelimit", "envoy.filters.http.cors"
FULL = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "k"}


def pct(n: int) -> dict:
    return {"numerator": n, "denominator": "HUNDRED"}


def fault(**kw: Any) -> dict:
    return {"@type": FAULT_T, **kw}


def ratelimit(max_tokens: int, fill: str = "1s", per_fill: int | None = None, *, enabled: bool = True,
              enforced: bool = True, **kw: Any) -> dict:
    cfg: dict = {"@type": RL_T, "stat_prefix": "http_local_rate_limiter",
                 "token_bucket": {"max_tokens": max_tokens, "tokens_per_fill": per_fill or max_tokens,
                                  "fill_interval": fill},
                 "response_headers_to_add": [{"append": False, "header": {"key": "x-local-rate-limit",
                                                                          "value": "true"}}], **kw}
    if enabled:
        cfg["filter_enabled"] = FULL
    if enforced:
        cfg["filter_enforced"] = FULL
    return cfg


def bootstrap(port: int, filters: list[dict], routes: list[dict] | None = None, **vh: Any) -> dict:
    routes = routes or [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    hcm = {"@type": HCM, "stat_prefix": "ingress", "http_filters": [*filters, ROUTER],
           "route_config": {"name": "local", "virtual_hosts": [
               {"name": "all", "domains": ["*"], "routes": routes, **vh}]}}
    return {"static_resources": {
        "listeners": [{"name": "http", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": hcm}]}]}],
        "clusters": [{"name": "backend", "connect_timeout": "1s", "load_assignment": {
            "cluster_name": "backend", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}],
    }}


class Backend(BaseBackend):
    """An aiohttp server answering "ok <path>", keeping each request's headers."""

    def __init__(self) -> None:
        super().__init__("backend")
        self.requests: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(text=f"ok {request.path}", headers={"access-control-allow-origin": "upstream"})


class Proxy:
    """A started ProxyServer and the (status, flags) of every finished flow."""

    def __init__(self, cfg: dict) -> None:
        self.server = ProxyServer(from_dict(cfg))
        self.flows: list[tuple[int, list[str]]] = []
        self.server.current.handlers[0][1].observers.append(lambda f: self.flows.append((f.status, list(f.flags))))
        self.url = ""

    async def __aenter__(self) -> Proxy:
        await self.server.start()
        host, port = self.server.addresses()[0]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    def stat(self, name: str) -> int:
        return self.server.stats.value(name)


def within(count: int, n: int, p: float, sds: float = 4.5) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


async def test_fault_abort_30_percent_answers_configured_status_with_fi():
    n = 600
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": fault(
            abort={"http_status": 503, "percentage": pct(30)})}])) as p:
        statuses = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as s:
            async def one() -> None:
                async with s.get(p.url + "/x") as r:
                    body = await r.read()
                    statuses.append(r.status)
                    if r.status == 503:
                        assert body == b"fault filter abort"
            await asyncio.gather(*(one() for _ in range(n)))
        aborted = statuses.count(503)
        assert aborted + statuses.count(200) == n
        assert within(aborted, n, 0.3), aborted
        assert len(b.requests) == n - aborted
        assert sorted(f for st, f in p.flows if st == 503) == [["FI"]] * aborted
        assert p.stat("http.ingress.fault.aborts_injected") == aborted
        assert p.stat("http.ingress.fault.delays_injected") == 0
        assert p.stat("http.ingress.fault.active_faults") == 0


async def test_fault_delay_1s_to_half_of_requests():
    n = 40
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": fault(
            delay={"fixed_delay": "1s", "percentage": pct(50)})}])) as p:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as s:
            async def one() -> None:
                t0 = loop.time()
                async with s.get(p.url + "/") as r:
                    assert r.status == 200
                    await r.read()
                times.append(loop.time() - t0)
            await asyncio.gather(*(one() for _ in range(n)))
        delayed = [t for t in times if t >= 0.95]
        assert all(t < 0.6 for t in times if t < 0.95), times  # the others were not held
        assert within(len(delayed), n, 0.5), times
        assert max(times) < 1.9
        assert len(b.requests) == n
        assert sum(f == ["DI"] for _, f in p.flows) == len(delayed)
        assert p.stat("http.ingress.fault.delays_injected") == len(delayed)


async def test_fault_upstream_cluster_and_headers_restrict_the_fault():
    async with Backend() as b:
        cfg = fault(abort={"http_status": 500, "percentage": pct(100)},
                    headers=[{"name": "x-chaos", "exact_match": "on"}])
        async with Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": cfg}])) as p:
            async with aiohttp.ClientSession() as s:
                async with s.get(p.url + "/") as r:
                    assert r.status == 200
                async with s.get(p.url + "/", headers={"x-chaos": "on"}) as r:
                    assert r.status == 500
        other = fault(abort={"http_status": 500, "percentage": pct(100)}, upstream_cluster="elsewhere")
        async with Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": other}])) as p:
            async with aiohttp.ClientSession() as s:
                async with s.get(p.url + "/") as r:
                    assert r.status == 200


async def test_header_controlled_abort_and_percentage_header():
    cfg = fault(abort={"header_abort": {}, "percentage": pct(100)})
    async with Backend() as b:
        boot = bootstrap(b.port, [{"name": FAULT, "typed_config": cfg}])
        async with Proxy(boot) as p, aiohttp.ClientSession() as s:
            async with s.get(p.url + "/") as r:
                assert r.status == 200  # no header: no fault
            async with s.get(p.url + "/", headers={"x-envoy-fault-abort-request": "418"}) as r:
                assert r.status == 418
            async with s.get(p.url + "/", headers={"x-envoy-fault-abort-request": "418",
                                                    "x-envoy-fault-abort-request-percentage": "0"}) as r:
                assert r.status == 200


async def test_per_route_fault_overrides_the_listener_config():
    routes = [{"match": {"prefix": "/teapot"}, "route": {"cluster": "backend"},
               "typed_per_filter_config": {FAULT: fault(abort={"http_status": 418, "percentage": pct(100)})}},
              {"match": {"prefix": "/calm"}, "route": {"cluster": "backend"},
               "typed_per_filter_config": {FAULT: fault(abort={"http_status": 500, "percentage": pct(0)})}},
              {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": fault(
            abort={"http_status": 503, "percentage": pct(100)})}], routes)) as p:
        async with aiohttp.ClientSession() as s:
            for path, want in (("/teapot", 418), ("/calm", 200), ("/", 503)):
                async with s.get(p.url + path) as r:
                    assert r.status == want, path
        assert len(b.requests) == 1


async def test_client_leaving_during_fault_delay_sends_nothing_upstream():
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": fault(
            delay={"fixed_delay": "0.5s", "percentage": pct(100)})}])) as p:
        host, port = p.server.addresses()[0]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /gone HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await asyncio.sleep(0.7)
        assert b.requests == []
        assert p.flows == [(0, ["DI", "DC"])]
        async with aiohttp.ClientSession() as s, s.get(p.url + "/stay") as r:
            assert r.status == 200  # a client that waits is delayed, then served
        assert len(b.requests) == 1


async def test_local_rate_limit_10_per_second_then_429_and_refill():
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": ratelimit(10)}])) as p:
        async with aiohttp.ClientSession() as s:
            async def burst(k: int) -> list[int]:
                out = []
                for _ in range(k):
                    async with s.get(p.url + "/") as r:
                        out.append(r.status)
                        if r.status == 429:
                            assert r.headers["x-local-rate-limit"] == "true"
                            assert r.headers["x-envoy-ratelimited"] == "true"
                            assert await r.read() == b"local_rate_limited"
                return out
            assert await burst(15) == [200] * 10 + [429] * 5
            await asyncio.sleep(1.05)
            assert await burst(12) == [200] * 10 + [429] * 2
        assert len(b.requests) == 20
        assert [f for st, f in p.flows if st == 429] == [["RL"]] * 7
        prefix = "http_local_rate_limiter.http_local_rate_limit."
        assert [p.stat(prefix + k) for k in ("enabled", "ok", "rate_limited", "enforced")] == [27, 20, 7, 7]


async def test_per_route_bucket_is_separate_from_the_listener_bucket():
    routes = [{"match": {"prefix": "/r"}, "route": {"cluster": "backend"},
               "typed_per_filter_config": {RL: ratelimit(3, "10s")}},
              {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": ratelimit(2, "10s")}],
                                               routes)) as p:
        async with aiohttp.ClientSession() as s:
            got = {}
            for path in ("/r", "/"):
                got[path] = []
                for _ in range(5):
                    async with s.get(p.url + path) as r:
                        got[path].append(r.status)
        assert got == {"/r": [200] * 3 + [429] * 2, "/": [200] * 2 + [429] * 3}


async def test_rate_limit_without_filter_enabled_does_nothing():
    cfg = ratelimit(1, "10s", enabled=False)
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": cfg}])) as p:
        async with aiohttp.ClientSession() as s:
            for _ in range(5):
                async with s.get(p.url + "/") as r:
                    assert r.status == 200
        assert p.stat("http_local_rate_limiter.http_local_rate_limit.enabled") == 0
        assert len(b.requests) == 5


async def test_rate_limit_not_enforced_forwards_with_request_headers():
    cfg = ratelimit(1, "10s", enforced=False, request_headers_to_add_when_not_enforced=[
        {"header": {"key": "x-over-limit", "value": "yes"}}])
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": cfg}])) as p:
        async with aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.get(p.url + "/") as r:
                    assert r.status == 200
        assert [h.get("x-over-limit") for h in b.requests] == [None, "yes", "yes"]
        assert p.stat("http_local_rate_limiter.http_local_rate_limit.rate_limited") == 2
        assert p.stat("http_local_rate_limiter.http_local_rate_limit.enforced") == 0


async def test_rate_limit_per_downstream_connection_gives_each_connection_a_bucket():
    cfg = ratelimit(2, "10s", local_rate_limit_per_downstream_connection=True)
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": cfg}])) as p:
        for _ in range(2):  # two sessions: two connections
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
                statuses = []
                for _ in range(3):
                    async with s.get(p.url + "/") as r:
                        statuses.append(r.status)
                assert statuses == [200, 200, 429]


async def test_disabled_filter_runs_only_where_a_route_configures_it():
    routes = [{"match": {"prefix": "/limited"}, "route": {"cluster": "backend"},
               "typed_per_filter_config": {RL: ratelimit(1, "10s")}},
              {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    listener_cfg = {"@type": RL_T, "stat_prefix": "http_local_rate_limiter"}  # no bucket
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": RL, "typed_config": listener_cfg,
                                                         "disabled": True}], routes)) as p:
        async with aiohttp.ClientSession() as s:
            for path, want in (("/", 200), ("/", 200), ("/limited", 200), ("/limited", 429)):
                async with s.get(p.url + path) as r:
                    assert r.status == want, path


def test_per_route_rate_limit_without_token_bucket_is_a_config_error():
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"},
               "typed_per_filter_config": {RL: {"@type": RL_T, "stat_prefix": "r", "filter_enabled": FULL}}}]
    with pytest.raises(ConfigError, match=r"routes\[0\]\.typed_per_filter_config\..*token_bucket"):
        ProxyServer(from_dict(bootstrap(1, [{"name": RL, "typed_config": ratelimit(1)}], routes)))


async def test_cors_preflight_simple_request_and_other_origin():
    policy = {"@type": CORS_POLICY_T, "allow_origin_string_match": [{"exact": "https://shop.example"}],
              "allow_methods": "GET,POST", "allow_headers": "content-type,x-token", "max_age": "600",
              "expose_headers": "x-trace", "allow_credentials": True}
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": CORS, "typed_config": {"@type": CORS_T}}],
                                               typed_per_filter_config={CORS: policy})) as p:
        async with aiohttp.ClientSession() as s:
            pre = {"origin": "https://shop.example", "access-control-request-method": "POST"}
            async with s.options(p.url + "/api", headers=pre) as r:
                assert r.status == 200
                assert r.headers["access-control-allow-origin"] == "https://shop.example"
                assert r.headers["access-control-allow-methods"] == "GET,POST"
                assert r.headers["access-control-allow-headers"] == "content-type,x-token"
                assert r.headers["access-control-max-age"] == "600"
                assert r.headers["access-control-allow-credentials"] == "true"
            assert b.requests == []  # answered by the proxy
            async with s.get(p.url + "/api", headers={"origin": "https://shop.example"}) as r:
                assert r.status == 200
                assert r.headers.getall("access-control-allow-origin") == ["https://shop.example"]
                assert r.headers["access-control-expose-headers"] == "x-trace"
                assert r.headers["access-control-allow-credentials"] == "true"
            async with s.options(p.url + "/api", headers={**pre, "origin": "https://evil.example"}) as r:
                assert r.status == 200  # the backend's answer to a preflight it got
                assert r.headers["access-control-allow-origin"] == "upstream"
            async with s.get(p.url + "/api", headers={"origin": "https://evil.example"}) as r:
                assert r.headers["access-control-allow-origin"] == "upstream"
                assert "access-control-expose-headers" not in r.headers
        assert len(b.requests) == 3
        assert p.stat("http.ingress.cors.origin_valid") == 2
        assert p.stat("http.ingress.cors.origin_invalid") == 2


async def test_grpc_status_abort_is_a_trailers_only_grpc_error():
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": fault(
            abort={"grpc_status": 14, "percentage": pct(100)})}])) as p:
        async with aiohttp.ClientSession() as s, s.post(p.url + "/pkg.Svc/Call", data=b"",
                                                        headers={"content-type": "application/grpc"}) as r:
            assert r.status == 200
            assert (r.headers["content-type"], r.headers["grpc-status"]) == ("application/grpc", "14")
        assert b.requests == []
        assert p.flows == [(200, ["FI"])]


async def test_max_active_faults_lets_the_overflow_through_undelayed():
    cfg = fault(delay={"fixed_delay": "0.5s", "percentage": pct(100)}, max_active_faults=2)
    async with Backend() as b, Proxy(bootstrap(b.port, [{"name": FAULT, "typed_config": cfg}])) as p:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        async with aiohttp.ClientSession() as s:
            async def one(after: float) -> None:
                await asyncio.sleep(after)
                t0 = loop.time()
                async with s.get(p.url + "/") as r:
                    assert r.status == 200
                times.append(loop.time() - t0)
            await asyncio.gather(one(0), one(0), one(0.1), one(0.1))
            assert sorted(t >= 0.45 for t in times) == [False, False, True, True]
            assert p.stat("http.ingress.fault.faults_overflow") == 2
            assert p.stat("http.ingress.fault.active_faults") == 0
            async with s.get(p.url + "/") as r:  # the delays are over: a fault again
                assert r.status == 200
            assert p.stat("http.ingress.fault.delays_injected") == 3
